"""Several real `didchat run` processes on one fresh PostgreSQL database and the real Redis.

Rules:
- Every node is a real process started from ONE shared config file (as in production: the config
  hash check compares it across nodes); only its port differs, given with --port. `public_url` is
  the cluster's one address (`Cluster.public_port`, where a load balancer may listen), so webhooks
  signed for it verify on every node.
- The schema is there before any node starts (the database is a copy of this pytest process's template,
  migrated once as `didchat migrate` does: tests/databases.py): nodes never race on it.
- Each test gets its own PostgreSQL database (dropped afterwards) and its own `cluster.redis_prefix`
  (its keys deleted afterwards); a node that does not become ready fails the test with its log tail.
- Missing PostgreSQL or Redis: `unavailable(...)` (a skip on a laptop, a failure in CI).
- Every process started here is stopped here; waits are on conditions with timeouts.
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis

from chat.cli import signed_sms
from chat.config import Config, load_config
from tests.conftest import ALICE, CUSTOMER, PASSWORD, PG_ADMIN, AgentClient, config_text, free_port, unavailable
from tests.databases import asyncpg_url
from tests.fakes.twilio_api import FakeTwilioApi

REDIS_URL = os.environ.get("DIDCHAT_TEST_REDIS", "redis://127.0.0.1:6379/0")
REPO = Path(__file__).resolve().parents[2]
READY_SECONDS = 60.0  # a node's start-up on this loaded 2-core machine (imports, directory sync)
STOP_SECONDS = 15.0  # SIGTERM to exit; shutdown_seconds (8) and a margin
LOG_TAIL = 4000  # characters of a node's log shown when it fails to start
NGINX_TEMPLATE = REPO / "deploy" / "nginx.conf"  # the load balancer's site, with ${NAME} placeholders
PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")
# Short failover times, so tests of a dead node finish in seconds; each can be overridden.
TEST_CLUSTER = {"heartbeat_seconds": 0.5, "presence_ttl_seconds": 2, "claim_seconds": 3, "lease_seconds": 2}


CLUSTER_TIMEOUT = 300  # seconds a cluster test may take: several processes start on a loaded 2-core machine


def pytest_collection_modifyitems(items) -> None:
    """Tests on a cluster need PostgreSQL (marker `postgres`), and more time than one process does."""
    for item in items:
        if "cluster_database" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(CLUSTER_TIMEOUT))


async def get(url: str, timeout: float = 1.0) -> tuple[int, str] | None:
    """(status, body) of a GET, or None when nothing answers."""
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as answer:
                return answer.status, await answer.text()
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None


async def login(url: str, name: str, password: str = PASSWORD) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/login", json={"username": name, "password": password}) as answer:
            return answer.status, await answer.json()


def render(template: str, values: dict[str, str]) -> str:
    """The template with its ${NAME} placeholders filled, as envsubst (and the nginx image) fill them."""
    missing = set(PLACEHOLDER.findall(template)) - set(values)
    assert not missing, f"{NGINX_TEMPLATE} has placeholders nobody fills: {sorted(missing)}"
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


@dataclass
class Node:
    """One `didchat run` process of the cluster, on 127.0.0.1:port."""

    index: int
    port: int
    config_path: Path
    log_path: Path
    cwd: Path
    environ: dict[str, str] = field(default_factory=dict)  # added to the node's environment
    args: tuple[str, ...] = ()  # added to `didchat run`
    proc: asyncio.subprocess.Process | None = None
    clients: list[AgentClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-LOG_TAIL:]
        except OSError:
            return "(no log)"

    async def start(self, wait: bool = True) -> Node:
        """Start the process (again, after kill or stop) and wait for its /readyz."""
        assert not self.running, f"node {self.index} is already running"
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "chat", "run", "--config", str(self.config_path), "--port", str(self.port), *self.args,
                stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=self.cwd, env=_env() | self.environ)
        if wait:
            await self.ready()
        return self

    async def ready(self, timeout: float = READY_SECONDS) -> None:
        """Wait until /readyz answers 200; fail with the reason and the log tail otherwise."""
        answer = None
        try:
            async with asyncio.timeout(timeout):
                while (answer := await get(f"{self.url}/readyz")) is None or answer[0] != 200:
                    if not self.running:
                        break
                    await asyncio.sleep(0.1)
        except TimeoutError:
            pass
        if answer is None or answer[0] != 200:
            state = "exited" if not self.running else f"not ready after {timeout:.0f} s"
            pytest.fail(f"node {self.index} ({self.url}) {state}; /readyz: {answer}\n--- log tail ---\n{self.log_tail()}")

    async def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` (SIGKILL: the node dies without a word) and wait for the process to end.
        Its agents' clients are left as the death left them, for the test to look at."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)
            await self.proc.wait()

    async def stop(self) -> None:
        """SIGTERM (the node tells its agents, as in production), SIGKILL if it does not exit in time;
        then this node's clients are closed."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_SECONDS)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self._drop_clients()

    async def login(self, name: str, password: str = PASSWORD) -> tuple[int, dict]:
        return await login(self.url, name, password)

    async def connect(self, name: str, password: str = PASSWORD) -> AgentClient:
        """A real Socket.IO agent client logged in as `name` and connected to this node."""
        status, body = await self.login(name, password)
        assert status == 200, body
        client = AgentClient(self.url, body["token"])
        await client.connect()
        self.clients.append(client)
        return client

    async def _drop_clients(self) -> None:
        for client in self.clients:
            try:
                await asyncio.wait_for(client.disconnect(), 5)
            except (TimeoutError, OSError):
                pass
        self.clients.clear()


def _env() -> dict[str, str]:
    """The nodes' environment: ours, without database/Redis overrides that would bypass the shared file
    (a test that wants them gives them in `Node.environ`)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DIDCHAT_DATABASE_URL", "DIDCHAT_REDIS_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env["DIDCHAT_GC_TUNING"] = "on"  # as in production (tests/conftest.py turns it off for the apps of the test process)
    return env


@dataclass
class Cluster:
    """N nodes on one database and one Redis prefix, with one config file and one public address."""

    nodes: list[Node]
    config_path: Path
    config: Config
    database_url: str
    redis_url: str
    redis_prefix: str
    public_port: int
    twilio_api: FakeTwilioApi

    @property
    def public_url(self) -> str:
        return self.config.public_url

    async def simulate_sms(self, node: int = 0, sender: str = CUSTOMER, to: str = ALICE, text: str = "hello",
                           message_id: str | None = None, url: str | None = None) -> tuple[int, str]:
        """Post a Twilio webhook signed for the public URL to node `node` (or to `url`, e.g. a load balancer)."""
        conn = self.config.connector_of(to) or self.config.connectors[0]
        target, body, headers = signed_sms(self.config, conn, sender, to, text, message_id)
        base = url or self.nodes[node].url
        target = base.rstrip("/") + target[len(self.public_url.rstrip("/")):]
        async with aiohttp.ClientSession() as http:
            async with http.post(target, data=body, headers=headers) as answer:
                return answer.status, await answer.text()

    async def stop(self) -> None:
        await asyncio.gather(*(node.stop() for node in self.nodes))


def cluster_yaml(redis_url: str, prefix: str, options: dict) -> str:
    """The `redis_url` and `cluster:` keys of the shared file."""
    settings = {**TEST_CLUSTER, "redis_prefix": prefix, **options}
    lines = "".join(f"  {key}: {value}\n" for key, value in settings.items())
    return f'redis_url: "{redis_url}"\ncluster:\n{lines}'


@pytest.fixture
async def cluster_database(database_templates):
    """The URL of a new, empty PostgreSQL database with the schema (a copy of the migrated template); dropped afterwards."""
    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        unavailable(f"PostgreSQL at {PG_ADMIN}")
    name = f"didchat_cluster_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{await database_templates.postgres(admin)}"')
        yield asyncpg_url(PG_ADMIN, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def redis_prefix():
    """A `cluster.redis_prefix` of this test's own on the real Redis; its keys are deleted afterwards."""
    client = aioredis.from_url(REDIS_URL, socket_timeout=3)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError):
        await client.aclose()
        unavailable(f"Redis at {REDIS_URL}")
    prefix = f"didchat-test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def start_all(nodes: list[Node]) -> None:
    """Start the nodes side by side, and wait until each is ready."""
    await asyncio.gather(*(node.start(wait=False) for node in nodes))
    for node in nodes:
        await node.ready()


@pytest.fixture
async def make_cluster(tmp_path, twilio_api, cluster_database, redis_prefix):
    """Build and start the test's cluster: `await make_cluster(nodes=2, extra=..., connectors=...,
    alice=..., cluster_options={...}, start=True)`. Its nodes are stopped afterwards (and the
    database dropped and the Redis prefix's keys deleted by the fixtures above)."""
    clusters: list[Cluster] = []

    async def make(nodes: int = 2, extra: str = "", connectors: str = "", alice: str = "",
                   cluster_options: dict | None = None, start: bool = True) -> Cluster:
        assert not clusters, "one cluster per test: its database and Redis prefix are the test's"
        public_port = free_port()
        path = tmp_path / "didchat.yaml"
        text = config_text(public_port, cluster_database, twilio_api, "", connectors, alice)
        path.write_text(text + "\n" + cluster_yaml(REDIS_URL, redis_prefix, cluster_options or {}) + extra)
        members = [Node(i, free_port(), path, tmp_path / f"node-{i}.log", tmp_path) for i in range(nodes)]
        cluster = Cluster(members, path, load_config(path), cluster_database, REDIS_URL, redis_prefix, public_port, twilio_api)
        clusters.append(cluster)
        if start:
            await start_all(members)
        return cluster

    try:
        yield make
    finally:
        for cluster in clusters:
            await cluster.stop()
