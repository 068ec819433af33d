"""The node's link to the other nodes through Redis: presence, wake-ups, pushes, one configuration.

Rules:
- Redis carries nothing the database cannot rebuild (DESIGN.md, "Many nodes"). When it is away
  the node keeps serving: other nodes' agents count as offline once their last heartbeat is
  presence_ttl_seconds old, wake-ups wait for the workers' own scans, pushes to agents on other
  nodes are lost (their clients sync). One warning when the link breaks, one when it is back.
- Presence: every heartbeat_seconds a node publishes all its agents' records on
  `{prefix}:presence` and writes them under `{prefix}:presence:{node}` with a time to live of
  presence_ttl_seconds (what a starting node reads); each change is published at once. One task
  publishes both, in order, so a heartbeat never overtakes a later change. A node not heard for
  presence_ttl_seconds is dead, and its agents offline (chat.workers.presence).
- Wake-ups: every topic woken here is published on `{prefix}:wake`; one heard from another node
  wakes the worker here only.
- Pushes: python-socketio's Redis manager on `{prefix}:socketio`, so a push to an agent's room
  reaches her tabs on every node.
- One configuration: a node joins only if its configuration hash (`config_hash`) equals the
  running cluster's, kept under `{prefix}:config` and renewed by every node at each heartbeat;
  it lapses presence_ttl_seconds after the last node is gone, at once when the last one stops
  cleanly. Otherwise the node is refused at start with a message saying what to do.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import redis.asyncio as aioredis
import socketio
import structlog
from aiohttp import web
from pydantic import SecretStr
from redis.exceptions import RedisError

from chat.config import ClusterConfig, Config
from chat.store.context import CONFIG
from chat.store.lease import holder_name
from chat.workers.hub import HUB
from chat.workers.presence import PRESENCE, Presence, Record
from chat.workers.rooms import IndexedRooms, LocalManager
from chat.workers.scenario_files import path_of
from chat.workers.tasks import cancel, forever, running
from chat.workers.wake import WAKE, Wake

log = structlog.get_logger()
CONNECT_SECONDS = 3.0  # connecting to Redis, and each command: a stalled Redis must not stall the node
SILENT_BEATS = 3  # heartbeats without a word on the subscription (ours included) before it is reopened
LINK_ERRORS = (RedisError, OSError, TimeoutError)
NODE_FIELDS: dict[str, Any] = {"host": True, "port": True, "cluster": {"node_name": True}}  # may differ between nodes
LEAVE = """
redis.call('zrem', KEYS[1], ARGV[1])
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[2])
if redis.call('zcard', KEYS[1]) == 0 then redis.call('del', KEYS[2]) end
"""  # the last node to leave takes the configuration's record with it


class Refused(SystemExit):
    """This node must not join the cluster; the process exits with the message."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")


def member(config: Config) -> str:
    """This run of this node, as the cluster tells it apart: its name and a fresh tag, so two nodes
    given one name, or a node restarted before its last heartbeat lapsed, never mix their agents."""
    return f"{holder_name(config.cluster.node_name)}/{secrets.token_hex(4)}"


def shown(url: str) -> str:
    """A Redis URL as logs and errors may show it: host and port only."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


class RedisManager(IndexedRooms, socketio.AsyncRedisManager):
    """python-socketio's Redis manager, without its walk of every payload looking for bytes, and
    without decoding its own pushes when they come back.

    What we push is JSON text (chat.app.TextPacket); for a burst of 1,000 messages that walk cost
    twice their JSON encoding (58 ms against 27 ms on this machine). A callback, bytes or
    ignore_queue go the library's way; the message is the one its AsyncPubSubManager.emit builds,
    with `host_id` first, so that every node's own pushes, which the channel hands back to it,
    are told by their first bytes and dropped undecoded (the library decodes each, then drops it)."""

    async def emit(self, event, data, namespace=None, room=None, skip_sid=None, callback=None, to=None, **kwargs):
        if callback is not None or kwargs.get("ignore_queue") or isinstance(data, (bytes, bytearray, tuple)):
            return await super().emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid,
                                      callback=callback, to=to, **kwargs)
        message = {"host_id": self.host_id, "method": "emit", "event": event, "data": [data], "binary": False,
                   "namespace": namespace or "/", "room": to or room, "skip_sid": skip_sid, "callback": None}
        await self._handle_emit(message)  # this node's sockets
        await self._publish(message)  # the other nodes'

    async def _handle_emit(self, message):
        """A push, delivered to this node's sockets (its own or another node's), and to its watchers here."""
        await super()._handle_emit(message)
        data = message.get("data")
        if not message.get("binary") and isinstance(data, list) and len(data) == 1:
            await self.copy_to_watchers(message.get("event"), data[0], message.get("namespace"), message.get("room"))

    async def _listen(self):
        own = self.json.dumps({"host_id": self.host_id})[:-1].encode()  # how our own messages begin
        async for data in super()._listen():
            if not (isinstance(data, bytes) and data.startswith(own)):
                yield data


def socket_manager(config: Config) -> socketio.AsyncManager:
    """The Redis manager when Redis is configured; the in-process one otherwise (both with indexed rooms)."""
    url = config.redis()
    if url is None:
        return LocalManager()
    return RedisManager(url, channel=f"{config.cluster.redis_prefix}:socketio",
                        redis_options={"socket_connect_timeout": CONNECT_SECONDS})


def config_hash(config: Config) -> Callable[[], str]:
    """The configuration's hash, as a function that reads the scenario files again each call.

    HMAC-SHA256 keyed by the secret key over the validated configuration (secrets included, so two
    nodes with different provider credentials or keys differ; node-specific fields excluded) and the
    contents of the scenario files its numbers name. Keyed, so the record in Redis gives away nothing
    of a short secret (an SMPP password has 8 characters at most)."""
    data = config.model_dump(exclude=NODE_FIELDS) | {"database": config.database(), "redis": config.redis()}
    fixed = json.dumps(data, sort_keys=True, default=_plain).encode()
    key = config.secret_key.get_secret_value().encode() if config.secret_key else b""
    paths = sorted({path for num in config.access_numbers if num.sms and (path := path_of(config, num.scenario))})

    def digest() -> str:
        mac = hmac.new(key, fixed, hashlib.sha256)
        for path in paths:
            mac.update(b"\0" + str(path).encode() + b"\0" + _contents(path))
        return mac.hexdigest()

    return digest


def _plain(value) -> object:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def _contents(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b"(missing)"


class Link:
    """This node's part of the cluster: it tells the others and listens to them."""

    def __init__(self, client: aioredis.Redis, subscriber: aioredis.Redis, settings: ClusterConfig, node: str,
                 presence: Presence, wake: Wake, digest: Callable[[], str]):
        self.redis, self.subscriber = client, subscriber
        self.settings, self.node = settings, node
        self.presence, self.wake, self.digest = presence, wake, digest
        prefix = settings.redis_prefix
        self.keys = {"config": f"{prefix}:config", "nodes": f"{prefix}:nodes", "mine": f"{prefix}:presence:{node}"}
        self.channels = {"presence": f"{prefix}:presence", "wake": f"{prefix}:wake"}
        self.subscribed = asyncio.Event()
        self._down: set[str] = set()  # what failed last time (each failure logged once until it passes)
        self._differing = 0  # heartbeats in a row that found another node's configuration hash

    @property
    def ttl_ms(self) -> int:
        return int(self.settings.presence_ttl_seconds * 1000)

    # -- joining and leaving ------------------------------------------------------------------

    async def join(self) -> None:
        """Take this node's place, or raise Refused when its configuration is not the cluster's."""
        mine = self.digest()
        if not await self.redis.set(self.keys["config"], mine, nx=True, px=self.ttl_ms):
            theirs = await self.redis.get(self.keys["config"])
            if theirs is not None and theirs != mine:
                raise Refused(self._differs())
        await self._beat()
        async with asyncio.timeout(CONNECT_SECONDS):
            await self.subscribed.wait()
        await self._read_nodes()
        log.info("cluster.joined", node=self.node, prefix=self.settings.redis_prefix)

    def _differs(self) -> str:
        ttl = self.settings.presence_ttl_seconds
        return (f"this node's configuration differs from the running cluster's (Redis prefix "
                f"{self.settings.redis_prefix!r}): every node must run the same configuration file and the same "
                "scenario files (only host, port and cluster.node_name may differ). Start this node with the "
                "cluster's files; to change the configuration, stop every node, then start them all with the "
                f"new files (the cluster's record lapses {ttl:g} s after the last node is gone, at once when it "
                "stops cleanly)")

    async def _read_nodes(self) -> None:
        """The agents of the nodes already running, as their last heartbeat wrote them."""
        prefix = self.settings.redis_prefix
        nodes = cast(list[tuple[str, float]],
                     await self.redis.zrangebyscore(self.keys["nodes"], time.time(), "+inf", withscores=True))
        for node, expires_at in nodes:
            if node != self.node and not self.presence.knows(node):
                stored = await self.redis.hgetall(f"{prefix}:presence:{node}")
                self.presence.heard(node, _records(stored), float(expires_at), full=True)

    async def leave(self) -> None:
        """Last word: this node's agents as they are now, then its place given up."""
        try:
            async with asyncio.timeout(CONNECT_SECONDS):
                await self._beat()
                await self.redis.eval(LEAVE, 2, self.keys["nodes"], self.keys["config"], self.node, time.time())
        except LINK_ERRORS as err:
            log.warning("cluster.leave_failed", node=self.node, error=type(err).__name__)

    # -- telling ------------------------------------------------------------------------------

    async def tell_presence(self) -> None:
        """Publish each presence change at once, and everything every heartbeat; one task, so in order."""
        beat_at = time.monotonic() + self.settings.heartbeat_seconds
        for _ in forever():
            changed = await self.presence.changes(max(0.0, beat_at - time.monotonic()))
            try:
                if time.monotonic() >= beat_at:
                    beat_at = time.monotonic() + self.settings.heartbeat_seconds
                    await self._beat()
                elif changed:
                    await self._tell(changed)
                self._passed("presence")
            except LINK_ERRORS as err:  # the next heartbeat tells everything again
                self._failed("presence", err)

    async def _beat(self) -> None:
        records = self.presence.records()
        now, mine = time.time(), self.digest()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys["mine"])
            if records:
                pipe.hset(self.keys["mine"], mapping=_wire(records))
                pipe.pexpire(self.keys["mine"], self.ttl_ms)
            pipe.zadd(self.keys["nodes"], {self.node: now + self.settings.presence_ttl_seconds})
            pipe.zremrangebyscore(self.keys["nodes"], "-inf", now)
            pipe.pexpire(self.keys["nodes"], self.ttl_ms)
            pipe.set(self.keys["config"], mine, px=self.ttl_ms, get=True)
            pipe.publish(self.channels["presence"], self._message(records, full=True))
            *_, before, _ = await pipe.execute()
        self._differing = self._differing + 1 if before is not None and before != mine else 0
        if self._differing == 2:  # twice in a row: not one node reading a scenario file just edited before the other
            log.error("cluster.config_differs", node=self.node,
                      hint="another running node has other configuration or scenario files: make them the same")

    async def _tell(self, changed: dict[int, Record]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys["mine"], mapping=_wire(changed))
            pipe.pexpire(self.keys["mine"], self.ttl_ms)
            pipe.publish(self.channels["presence"], self._message(changed, full=False))
            await pipe.execute()

    def _message(self, records: dict[int, Record], full: bool) -> str:
        return json.dumps({"node": self.node, "full": full, "users": _wire(records)})

    async def tell_wakes(self) -> None:
        """Publish every topic woken here (a burst of one topic once)."""
        for _ in forever():
            topics = await self.wake.outgoing()
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for topic in sorted(topics):
                        pipe.publish(self.channels["wake"], f"{self.node} {topic}")
                    await pipe.execute()
                self._passed("wake")
            except LINK_ERRORS as err:  # a hint: the other nodes' scans find the rows
                self._failed("wake", err)

    # -- listening ----------------------------------------------------------------------------

    async def listen(self) -> None:
        """Hear the other nodes; reopen the subscription when it breaks or goes silent."""
        pause = 0.5
        for _ in forever():
            pubsub = self.subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                async with asyncio.timeout(CONNECT_SECONDS):  # the subscriber has no read timeout: a subscription waits
                    await pubsub.subscribe(*self.channels.values())
                self.subscribed.set()
                self._passed("subscription")
                pause = 0.5
                await self._hear(pubsub)
            except LINK_ERRORS as err:
                self._failed("subscription", err)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)
            finally:
                with contextlib.suppress(*LINK_ERRORS):
                    async with asyncio.timeout(CONNECT_SECONDS):  # a stop never waits on a stalled Redis
                        await pubsub.aclose()

    async def _hear(self, pubsub) -> None:
        silent = self.settings.heartbeat_seconds * SILENT_BEATS + CONNECT_SECONDS  # our own heartbeats come back too
        heard_at = time.monotonic()
        for _ in forever():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                if time.monotonic() - heard_at > silent:
                    raise ConnectionError("the subscription went silent")
                continue
            heard_at = time.monotonic()
            try:
                self._heard(message["channel"], message["data"])
            except (ValueError, TypeError, KeyError, AttributeError) as err:
                log.warning("cluster.bad_message", channel=message.get("channel"), error=type(err).__name__)

    def _heard(self, channel: str, data: str) -> None:
        if channel == self.channels["wake"]:
            node, _, topic = data.rpartition(" ")
            if node != self.node and topic:
                self.wake.local(topic)
            return
        message = json.loads(data)
        if message["node"] != self.node:
            expires_at = time.time() + self.settings.presence_ttl_seconds
            self.presence.heard(message["node"], _records(message["users"]), expires_at, bool(message["full"]))

    def state(self) -> dict:
        """What /readyz tells of the cluster: this node, the others alive, and what of Redis fails now."""
        return {"node": self.node, "redis": "down" if self._down else "up", "failing": sorted(self._down),
                "other_nodes": self.presence.nodes()}

    # -- failures -----------------------------------------------------------------------------

    def _failed(self, what: str, err: BaseException) -> None:
        if what not in self._down:
            self._down.add(what)
            log.warning("cluster.redis_unavailable", part=what, error=type(err).__name__)

    def _passed(self, what: str) -> None:
        if what in self._down:
            self._down.discard(what)
            log.info("cluster.redis_back", part=what)


def _wire(records: dict[int, Record]) -> dict[Any, str]:
    return {str(uid): json.dumps(record.wire()) for uid, record in records.items()}


def _records(wired: dict) -> dict[int, Record]:
    return {int(uid): Record.of(json.loads(record)) for uid, record in wired.items()}


LINK = web.AppKey("cluster", Link)


async def cluster_context(app: web.Application):
    """With Redis configured: join the cluster (or refuse to start), keep the link, leave on stop."""
    config = app[CONFIG]
    url = config.redis()
    if url is None:
        yield
        return
    options = {"socket_connect_timeout": CONNECT_SECONDS, "decode_responses": True}
    client = aioredis.from_url(url, socket_timeout=CONNECT_SECONDS, **options)
    subscriber = aioredis.from_url(url, **options)  # no read timeout: a subscription waits
    link = app[LINK] = Link(client, subscriber, config.cluster, member(config), app[PRESENCE], app[WAKE],
                            config_hash(config))
    try:
        async with running(link.listen(), "cluster-listen"):
            await _join(link, url)
            _start_pushes(app)
            async with running(link.tell_presence(), "cluster-presence"), running(link.tell_wakes(), "cluster-wake"):
                yield
            await link.leave()
    finally:
        await _stop_pushes(app)
        await client.aclose()
        await subscriber.aclose()


async def _join(link: Link, url: str) -> None:
    try:
        await link.join()
    except LINK_ERRORS as err:
        raise Refused(f"redis_url: Redis at {shown(url)} cannot be reached ({type(err).__name__}): "
                      "start it, or correct redis_url (or DIDCHAT_REDIS_URL)") from None


def _start_pushes(app: web.Application) -> None:
    """Subscribe the Socket.IO manager now, not at the first agent: pushes from other nodes find her at once."""
    sio = app[HUB].sio
    if not sio.manager_initialized:
        sio.manager_initialized = True
        sio.manager.initialize()


async def _stop_pushes(app: web.Application) -> None:
    manager = app[HUB].sio.manager
    task = getattr(manager, "thread", None)
    if task is not None:
        await cancel([task])  # bounded: python-socketio's listener loops over redis-py too
    if getattr(manager, "redis", None) is not None:
        with contextlib.suppress(*LINK_ERRORS):
            await manager.redis.aclose()
