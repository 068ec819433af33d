"""The outbox worker: sends what agents wrote, in order per conversation, through outages, once across nodes.

Rules: a row leaves only from the node that claimed it (chat.domain.outbox: a conversation's head,
due and free), so no two nodes send one row and order per conversation holds across nodes; the
claim is renewed while its send runs, and a node that died lets go after `cluster.claim_seconds`.
Temporary errors (5xx, throttling, network) are retried with jittered exponential backoff (no
sooner than the provider's Retry-After) by whichever node claims the row when it falls due; permanent errors and exhausted retries fail the
message with the provider's words, which the agent sees. A connector's rows are claimed only
where `can_send(connector)` holds (an SMPP connector: on the node holding its bind). Rows live in
the database, so a restart resumes them. Sends are paced per sender number and per connector
(chat.domain.pacing: slots shared by every node), waiting in their chain, so order holds.
A message's attachments go to the provider as didchat's public URLs of its uploads (chat.domain.uploads),
read when it is sent; an upload gone by then fails the message, naming why.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import Protocol

import structlog
from aiohttp import web

from chat.config import ClusterConfig, OutboxConfig
from chat.domain.claims import Holding
from chat.domain.outbox import (
    claim_due,
    claim_head,
    claimed,
    next_due,
    outcome,
    record_failure,
    record_sent,
    release_claims,
    release_every_claim,
    renew_claims,
)
from chat.domain.pacing import reserve
from chat.domain.uploads import public_url, upload_tokens
from chat.metrics import METRICS, Metrics
from chat.store import Database, as_utc, utcnow
from chat.store.commit import GroupCommit
from chat.store.context import COMMIT, CONFIG, DB
from chat.store.lease import holder_name
from chat.workers.routing import ROUTER, Router
from chat.workers.tasks import STOPPING, cancel, wait_set
from chat.workers.wake import OUTBOX, WAKE, Wake
from gateway import OutboundSms, Sender, SendError, SendResult, count_segments

log = structlog.get_logger()
SCAN_RETRY_SECONDS = 1.0  # after a failed scan (the database is down): try again soon, not in a tight loop
MIN_PAUSE = 0.05  # due heads that another node is claiming this moment: look again soon, not in a tight loop


class Sending(Protocol):
    """The connectors this node sends through, as they are now (chat.connectors.live keeps them in step with the
    running configuration): a connector added or changed is sent through from its next row on."""

    senders: dict[str, Sender]
    callbacks: dict[str, str | None]  # where each connector's provider posts statuses

    def windows(self) -> dict[str, int]:
        """Each SMPP connector's window."""
        ...

    def can_send(self, name: str) -> bool:
        """Whether this node may send the connector's messages now (an SMPP connector's: while it holds the bind)."""
        ...

    def paces(self, name: str, sender: str) -> tuple[tuple[str, float], ...]:
        """The limits a send through the connector from `sender` falls under: (key, segments per second)."""
        ...


class Outbox:
    """Sends outbox rows: one chain per conversation (its rows one after another), many chains at once.

    A chain starts when an agent's message is the head of its conversation's outbox, or when the
    scan claims a due head (at start-up, when woken, when a retry falls due, when a lease lapses);
    each send's commit also claims the conversation's next head, so a busy conversation needs no
    extra query. Sends in flight are capped per connector (an SMPP connector's window x 2, the
    client keeps the window; `outbox.concurrency` for HTTP connectors), and a node claims no more
    heads than it has room for, so the other nodes take the rest.
    """

    def __init__(self, db: Database, commit: GroupCommit, router: Router, connectors: Sending,
                 config: OutboxConfig, metrics: Metrics | None = None, wake: Wake | None = None,
                 cluster: ClusterConfig | None = None, public_url: str = ""):
        self.db, self.commit, self.router, self.metrics = db, commit, router, metrics
        self.public_url = public_url  # attachments' URLs are below it (the provider fetches them)
        self.connectors, self.config = connectors, config
        cluster = cluster or ClusterConfig()
        self.holder = holder_name(cluster.node_name)
        self.holding = Holding(commit, renew_claims, cluster.claim_seconds, min(cluster.heartbeat_seconds, cluster.claim_seconds / 3))
        self._max_pause = cluster.heartbeat_seconds  # a row queued on one node behind a send ending on another waits no longer
        self._heartbeat = cluster.heartbeat_seconds
        self._can_send = connectors.can_send
        self._wakes = wake or Wake()
        self._wake = self._wakes.event(OUTBOX)
        self._chains: dict[int, asyncio.Task] = {}  # conversation -> its chain here
        self._again: set[int] = set()  # conversations offered a new head while their chain ran
        self._full = False  # the last scan claimed all it had room for: scan again when a chain ends
        self._slots: dict[str, tuple[int, asyncio.Semaphore]] = {}  # connector -> (its size, its sends in flight)
        self._default_slots = asyncio.Semaphore(config.concurrency)
        self._held: dict[str, float] = {}  # connector -> unix time before which this node sends nothing (Retry-After)

    def _sizes(self) -> dict[str, int]:
        windows = self.connectors.windows()
        return {name: max(self.config.concurrency, 2 * windows.get(name, 0)) for name in self.connectors.senders}

    @property
    def _room(self) -> int:
        """How many chains may run here at once: the connectors' room together."""
        return sum(self._sizes().values()) or self.config.concurrency

    def _slot(self, name: str) -> asyncio.Semaphore:
        """The connector's sends in flight (a connector whose window changed gets a new one for its next sends)."""
        size = self._sizes().get(name)
        if size is None:
            return self._default_slots
        held = self._slots.get(name)
        if held is None or held[0] != size:
            held = self._slots[name] = (size, asyncio.Semaphore(size))
        return held[1]

    def wake(self) -> None:
        """Something was queued: scan now rather than at the next due time (on every node)."""
        self._wakes(OUTBOX)

    def offer(self, head) -> None:
        """A conversation's head row, just committed: claim and send it now unless its chain runs here."""
        cid = head.conversation_id
        if cid in self._chains:
            self._again.add(cid)
        elif not self._can_send(head.connector):
            self.wake()  # the node that may send it claims it
        else:
            self._start(cid, None)

    async def run(self) -> None:
        while True:
            try:
                await self._scan()
            except Exception as err:  # noqa: BLE001 - a database outage must not end the worker
                log.warning("outbox.scan_failed", error=type(err).__name__)
                await self._sleep(SCAN_RETRY_SECONDS)

    async def _scan(self) -> None:
        """Look (a read) for a head that may be claimed now; claim as many as there is room for."""
        self._wake.clear()
        blocked = self._blocked()
        wait = await self._next_due(blocked)
        room = self._room - len(self._chains)
        self._full = room <= 0
        if wait is not None and wait <= 0 and room > 0:
            ids = await self.commit.run(partial(claim_due, claim=self.holding.claim(self.holder), limit=room, blocked=blocked))
            async with self.db.read() as conn:
                rows = await claimed(conn, ids)
            for row in rows:
                self._start(row.conversation_id, row)
            self._full = len(ids) == room
            if rows and not self._full:
                return  # look again at once: the next head may be due already
        if blocked:  # standby for a connector: look again soon, its bind may be this node's by then
            wait = min(wait, self._heartbeat) if wait is not None else self._heartbeat
        await self._sleep(None if self._full or wait is None else max(MIN_PAUSE, wait))

    async def stop(self, grace: float = 10.0) -> None:
        """Let sends in flight settle (a provider that took one must not get it again after a
        restart), then cancel what is left and release its claims: those rows go out after the
        restart, or from another node, without waiting for the leases to lapse."""
        chains = list(self._chains.values())
        if chains:
            await asyncio.wait(chains, timeout=grace)
        left = sorted(self.holding.tokens)
        for task in chains:
            task.cancel()
        await asyncio.gather(*chains, return_exceptions=True)
        if left:
            try:
                await self.commit.run(partial(release_claims, tokens=left))
            except Exception as err:  # noqa: BLE001 - they lapse after claim_seconds instead
                log.warning("outbox.release_failed", error=type(err).__name__, rows=len(left))

    def _start(self, conversation_id: int, row) -> None:
        task = asyncio.create_task(self._chain(conversation_id, row))
        self._chains[conversation_id] = task

    async def _chain(self, conversation_id: int, row) -> None:
        """Send the conversation's rows in order while its head is due and this node may claim it."""
        try:
            while True:
                if row is None:
                    # Also after each send that found no next head: a row queued meanwhile (by another
                    # transaction of this batch, or on another node) behind the one just sent was
                    # offered to nobody; this later commit sees it.
                    self._again.discard(conversation_id)
                    row = await self.commit.run(partial(claim_head, conversation_id=conversation_id,
                                                        claim=self.holding.claim(self.holder)))
                    if row is None and conversation_id not in self._again:
                        return
                    continue
                row = await self._deliver(row)
        except Exception:  # noqa: BLE001 - the rows stay; their claims lapse and a scan finds them
            log.exception("outbox.chain_failed", conversation_id=conversation_id)
            self._wake.set()
        finally:
            if self._chains.get(conversation_id) is asyncio.current_task():
                del self._chains[conversation_id]
                self._again.discard(conversation_id)
            if self._full and len(self._chains) < self._room:  # room again for what the scan left
                self._wake.set()

    def _blocked(self) -> tuple[str, ...]:
        """Connectors whose rows this node may not send now (another node holds their bind)."""
        return tuple(sorted(name for name in self.connectors.senders if not self._can_send(name)))

    async def _sleep(self, seconds: float | None) -> None:
        timeout = self._max_pause if seconds is None else min(seconds, self._max_pause)
        await wait_set(self._wake, timeout)

    async def _next_due(self, blocked: tuple[str, ...]) -> float | None:
        """Seconds until a head may be claimed (0 or less: now), or None when the outbox is empty."""
        async with self.db.read() as conn:
            when = await next_due(conn, blocked)
        return None if when is None else (as_utc(when) - utcnow()).total_seconds()

    async def _deliver(self, row):
        """Send one claimed row and record the outcome; the conversation's next head (claimed), or None."""
        if not self._can_send(row.connector):  # this node lost the connector's bind meanwhile
            await self.commit.run(partial(release_claims, tokens=[row.claim_token]))
            self.wake()
            return None
        self.holding.tokens.add(row.claim_token)
        try:
            await self._pace(row)
            async with self._slot(row.connector):
                result = await self._send(row)
            if isinstance(result, SendError) and result.retry_after:  # the provider asked every send to wait
                self._held[row.connector] = max(self._held.get(row.connector, 0.0), time.time() + result.retry_after)
            unit = partial(record_sent, row=row, result=result) if isinstance(result, SendResult) else \
                partial(record_failure, row=row, error=result, config=self.config)
            recorded = await self.commit.run(partial(unit, claim=self.holding.claim(self.holder)))
        finally:
            self.holding.tokens.discard(row.claim_token)
        what = outcome(result, row.attempts + 1, self.config)
        if self.metrics is not None:
            self.metrics.outbound(row.connector, what)
        if recorded is None:
            log.warning("outbox.claim_lost", message_id=row.message_id, connector=row.connector)
            return None
        if what == "retried":
            self._wake.set()  # the scan sleeps until the retry is due
        status, head = recorded
        await self.router.push_status(status)
        return head

    async def _pace(self, row) -> None:
        """Wait for the send's slot on every limit it falls under (chat.domain.pacing: shared by every node, so a
        number's sends are spaced whichever node sends them), and for a provider's Retry-After on this node."""
        held = self._held.get(row.connector, 0.0) - time.time()
        if held > 0:
            await asyncio.sleep(held)
        limits = self.connectors.paces(row.connector, row.sender)
        if not limits or (row.opted_out and not row.compliance):
            return
        segments = count_segments(row.text)[1] or 1
        start = await self.commit.run(partial(reserve, costs=tuple((key, segments / rate) for key, rate in limits),
                                              now=time.time()))
        wait = start - time.time()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _send(self, row) -> SendResult | SendError:
        if row.opted_out and not row.compliance:  # opt-out is enforced here, whoever queued the message
            return SendError("the customer opted out of SMS (they texted STOP); not sent", temporary=False, code="OPTED_OUT")
        sender = self.connectors.senders.get(row.connector)
        if sender is None:
            return SendError(f"connector {row.connector!r} is not configured", temporary=False)
        try:
            media = await self._media_urls(row.media) if row.media else ()
            sms = OutboundSms(row.connector, row.sender, row.recipient, row.text, str(row.message_id),
                              self.connectors.callbacks.get(row.connector), media)
            return await sender.send(sms)
        except SendError as err:
            log.warning("outbox.send_error", message_id=row.message_id, error=str(err), temporary=err.temporary)
            return err

    async def _media_urls(self, media: list) -> tuple[str, ...]:
        """The public URLs the provider fetches the message's attachments from, or a SendError (temporary while the
        store does not answer)."""
        ids = [int(item["upload_id"]) for item in media]
        try:
            async with self.db.read() as conn:
                tokens = await upload_tokens(conn, ids)
        except Exception as err:  # noqa: BLE001 - the store is down: the send waits for it, as for a provider's outage
            raise SendError(f"the attachments could not be read ({type(err).__name__}); retrying", temporary=True) from None
        if len(tokens) != len(set(ids)):
            raise SendError("an attached file was deleted before it was sent; send it again", temporary=False)
        return tuple(public_url(self.public_url, tokens[i], item["content_type"]) for i, item in zip(ids, media))


OUTBOX_WORKER = web.AppKey("outbox", Outbox)


def outbox_context(connectors: Callable[[web.Application], Sending]):
    """The outbox worker over `connectors(app)` (running once the connectors run). It stops first: sends in
    flight settle while the SMPP links are still bound, within the shutdown budget (the connectors close their
    senders after). On SQLite (one process) claims left by a previous run are freed at start: they died with it."""

    async def context(app: web.Application):
        config = app[CONFIG]
        outbox = app[OUTBOX_WORKER] = Outbox(app[DB], app[COMMIT], app[ROUTER], connectors(app), config.outbox,
                                             metrics=app[METRICS], wake=app[WAKE], cluster=config.cluster,
                                             public_url=config.public_url)
        if app[DB].is_sqlite:
            await app[COMMIT].run(release_every_claim)
        scan = asyncio.create_task(outbox.run(), name="outbox")
        keeping = asyncio.create_task(outbox.holding.keep(), name="outbox-claims")
        try:
            yield
        finally:
            stopping = app[STOPPING]
            stopping.begin()
            await cancel([scan])  # no new scans of the outbox
            await outbox.stop(grace=max(0.5, stopping.left()))
            await cancel([keeping])  # the claims of sends settling were renewed until they settled

    return context
