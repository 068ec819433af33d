"""Shared fixtures: a real didchat server on 127.0.0.1 (SQLite file or PostgreSQL), real
python-socketio agent clients, and a local server speaking Twilio's Messages API."""
from __future__ import annotations

import asyncio
import functools
import inspect
import os
import re
import shutil
import socket
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import socketio
from aiohttp import web

from chat.app import create_app
from chat.cli import signed_sms
from chat.config import load_config
from tests.databases import Templates, asyncpg_url
from tests.fakes.twilio_api import FakeTwilioApi

# The apps a test builds in this process do not tune the collector (chat.agents.loop): each tuning is a full
# collection of this whole process (0.15-0.3 s, and growing with the suite), once per app; a node does it once.
# tests/chat/test_loop_health.py tests the tuning with it on; tests/cluster's nodes run with it on.
os.environ.setdefault("DIDCHAT_GC_TUNING", "off")
PG_ADMIN = os.environ.get("DIDCHAT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE = os.environ.get("DIDCHAT_REQUIRE_SERVICES") == "1"
ALICE, BOB, MAIN, CUSTOMER = "+12125550101", "+12125550102", "+12125550100", "+12125550199"
PASSWORD = "correct-horse-battery"


def unavailable(what: str) -> None:
    """Skip on a laptop without `what`; fail in CI, where nothing may be skipped."""
    (pytest.fail if REQUIRE else pytest.skip)(f"{what} is not available")


def chromium_path() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        unavailable("Debian's chromium (apt-get install chromium)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reserved_port() -> socket.socket:
    """A port on 127.0.0.1 held bound (not listening) until a server takes it, so that no outgoing
    connection's ephemeral port lands on it in the meantime (what `free_port()` cannot promise)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Wait until `predicate()` holds, polling briefly; fail after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


# A test that migrates its database itself to a given revision (an older one, to test an upgrade) needs it
# empty: on a migrated copy that upgrade would do nothing. Such tests are marked `empty_database`, by hand or
# here, when their code calls migrate(db, "<revision>").
MIGRATES_TO_A_REVISION = re.compile(r"\bmigrate\(\s*\w+\s*,\s*(revision\s*=\s*)?[\"']")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "empty_database: the test's database_url has no schema (the test migrates it)")


# The longest tests first (each 5-40 s: several processes, a schemathesis run, a paced minute, a browser), so the
# two workers (`make test`: -n 2 --dist worksteal) end together on short ones instead of one waiting on a long one.
LONG_FIRST = ("tests/cluster/", "tests/chat/test_api_schema.py", "tests/chat/test_pacing.py",
              "tests/chat/test_cli_admin.py", "tests/chat/test_smpp_crash.py", "tests/browser/")


def _long_first(item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return next((rank for rank, prefix in enumerate(LONG_FIRST) if path.startswith(prefix)), len(LONG_FIRST))


def pytest_collection_modifyitems(items) -> None:
    items.sort(key=_long_first)  # stable: each group keeps its order
    for item in items:
        function = getattr(item, "function", None)
        if function is None or "database_url" not in getattr(item, "fixturenames", ()):
            continue
        try:
            source = inspect.getsource(function)
        except (OSError, TypeError):
            continue
        if MIGRATES_TO_A_REVISION.search(source):
            item.add_marker(pytest.mark.empty_database)


@pytest.fixture(scope="session")
def database_templates(tmp_path_factory):
    """This process's migrated template databases (tests/databases.py); dropped at the end."""
    templates = Templates(PG_ADMIN, tmp_path_factory.mktemp("database-templates"))
    yield templates
    templates.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request, tmp_path, database_templates):
    """A fresh database with the newest schema (a copy of this process's template; empty for a test marked
    `empty_database`): a SQLite file, or a new PostgreSQL database dropped afterwards."""
    empty = request.node.get_closest_marker("empty_database") is not None
    if request.param == "sqlite":
        if not empty:
            await database_templates.copy_sqlite(tmp_path / "didchat.db")
        yield f"sqlite+aiosqlite:///{tmp_path}/didchat.db"
        return
    name = f"didchat_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        unavailable(f"PostgreSQL at {PG_ADMIN}")
    template = "" if empty else f' TEMPLATE "{await database_templates.postgres(admin)}"'
    await admin.execute(f'CREATE DATABASE "{name}"{template}')
    yield asyncpg_url(PG_ADMIN, name)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
async def twilio_api():
    api = await FakeTwilioApi().start()
    yield api
    await api.stop()


SMPP_NUMBER = "+12125550103"  # Alice's second personal number, on the SMPP connector


def smpp_connector(port: int, **options) -> str:
    """YAML for an SMPP connector to a test SMSC on 127.0.0.1:port, with fast timings."""
    settings = {"window": 50, "enquire_link_seconds": 2, "response_timeout": 2, "reconnect_min": 0.1,
                "reconnect_max": 0.5, "throttle_pause": 0.2, "submit_retries": 50, **options}
    lines = "".join(f"    {k}: {v}\n" for k, v in settings.items())
    head = f"  - type: smpp\n    name: smsc\n    host: 127.0.0.1\n    port: {port}\n"
    return head + f"    system_id: didchat\n    password: secret\n{lines}    numbers: [\"{SMPP_NUMBER}\"]\n"


@functools.cache
def password_hash() -> str:
    """PASSWORD's argon2 hash, made once per process, with argon2's cheapest parameters: a login verifies a hash
    with the parameters the hash names, so a test's login costs ~1 ms instead of the ~0.12 s of the app's own
    (chat.domain.directory.hasher), paid some 1,500 times a run. What the cost is for (a flood of logins bounded,
    an unknown user costing a hash) is tested with the app's hasher: an unknown user is verified against a hash of
    its parameters, and passwords set through the admin API or the CLI are hashed by it. The test config gives
    the hash beside the password, so a start hashes no password."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


def config_text(port: int, database_url: str, twilio: FakeTwilioApi, extra: str = "", connectors: str = "",
                alice: str = "") -> str:
    """The test configuration; `alice` adds keys to Alice's number (e.g. its scenario). Each user has
    `password: PASSWORD` and its `password_hash` (password_hash())."""
    secret = f'password: {PASSWORD}, password_hash: "{password_hash()}"'
    return textwrap.dedent(f"""\
        public_url: http://127.0.0.1:{port}
        port: {port}
        database_url: "{database_url}"
        secret_key: "{'k' * 40}"
        presence_grace_seconds: 0
        outbox: {{backoff_seconds: 0.05, backoff_max_seconds: 0.2, max_attempts: 4}}
        users:
          - {{name: alice, display_name: Alice, {secret}, may_present: [main]}}
          - {{name: bob, display_name: Bob, {secret}}}
          - {{name: ada, display_name: Ada Admin, role: admin, {secret}}}
        access_numbers:
          - {{number: "{ALICE}", user: alice{alice}}}
          - {{number: "{BOB}", user: bob}}
          - {{number: "{MAIN}", voice: false}}
        {'  - {number: "' + SMPP_NUMBER + '", user: alice}' if connectors else ''}
        callback_numbers:
          named: {{main: "{MAIN}"}}
        connectors:
          - type: twilio
            name: tw
            account_sid: {twilio.account_sid}
            auth_token: {twilio.auth_token}
            api_base: {twilio.base_url}
            numbers: ["{ALICE}", "{BOB}", "{MAIN}"]
            pace: {{long_code: 0, toll_free: 0, short_code: 0}}  # tests/chat/test_pacing.py paces
        """) + connectors + "\n" + extra


class Parts:
    """A running app's parts by name, through their typed keys (what tests look at)."""

    def __init__(self, app: web.Application):
        self.app = app

    def __getattr__(self, name: str):
        from chat.agents.auth import TOKENS
        from chat.store.context import COMMIT, CONFIG, DB
        from chat.workers.automation import AUTOMATION
        from chat.workers.crm import CRM_OUTBOX, HTTP
        from chat.workers.hub import HUB
        from chat.workers.outbox import OUTBOX_WORKER
        from chat.workers.presence import PRESENCE
        from chat.workers.routing import ROUTER
        from chat.workers.running import DIRECTORY

        keys = {"db": DB, "commit": COMMIT, "config": CONFIG, "directory": DIRECTORY, "tokens": TOKENS, "hub": HUB,
                "presence": PRESENCE, "router": ROUTER, "outbox": OUTBOX_WORKER, "automation": AUTOMATION,
                "crm": CRM_OUTBOX, "http": HTTP}
        if name not in keys:
            raise AttributeError(name)
        if name == "directory":  # the running one (chat.workers.running)
            return self.app[DIRECTORY].current
        return self.app[keys[name]]


class Server:
    """A running didchat with helpers to act as a provider and as agents."""

    def __init__(self, config_path: Path, twilio: FakeTwilioApi, reserved: socket.socket | None = None):
        self.config = load_config(config_path)
        self.reserved = reserved
        self.config_path = config_path
        self.twilio_api = twilio
        self.url = self.config.public_url
        self.agent = ("alice", PASSWORD)
        self.alice_number, self.bob_number, self.main_number, self.customer = ALICE, BOB, MAIN, CUSTOMER
        self.runner: web.AppRunner | None = None
        self.clients: list[AgentClient] = []

    async def start(self) -> Server:
        self.app = create_app(self.config)
        self.runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=2)
        await self.runner.setup()
        reserved = self.reserved
        if reserved is not None and reserved.fileno() != -1 and reserved.getsockname()[1] == self.config.port:
            self.reserved = None  # the site owns it now, and closes it when it stops
            await web.SockSite(self.runner, reserved).start()
        else:
            await web.TCPSite(self.runner, "127.0.0.1", self.config.port, reuse_address=True).start()
        return self

    async def stop(self) -> None:
        try:
            async with asyncio.timeout(15):
                for client in self.clients:
                    await client.disconnect()
                if self.runner:
                    await self.runner.cleanup()
                    self.runner = None
        except TimeoutError:
            for task in asyncio.all_tasks():
                task.print_stack(limit=6)
            raise

    @property
    def services(self):
        return Parts(self.app)

    def webhook(self, sender: str, to: str, text: str, message_id: str | None = None):
        conn = self.config.connector_of(to) or self.config.connectors[0]
        return signed_sms(self.config, conn, sender, to, text, message_id)

    async def post(self, url: str, body: bytes, headers: dict) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=body, headers=headers) as answer:
                return answer.status, await answer.text()

    async def simulate_sms(self, sender: str = CUSTOMER, to: str = ALICE, text: str = "hello",
                           message_id: str | None = None) -> tuple[int, str]:
        """Post a signed Twilio webhook; returns (HTTP status, body) once answered."""
        return await self.post(*self.webhook(sender, to, text, message_id))

    async def login(self, name: str, password: str = PASSWORD) -> tuple[int, dict]:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.url}/api/login", json={"username": name, "password": password}) as r:
                return r.status, await r.json()

    def reload_config(self) -> None:
        """Read the configuration file again (before a start: what a restart with an edited file does)."""
        self.config = load_config(self.config_path)

    async def connect(self, name: str, password: str = PASSWORD) -> AgentClient:
        status, body = await self.login(name, password)
        assert status == 200, body
        client = AgentClient(self.url, body["token"])
        await client.connect()
        self.clients.append(client)
        return client


class AgentClient:
    """A real python-socketio client on the /agent namespace that records what it is pushed."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token
        self.events: list[tuple[str, dict]] = []
        self.bursts: list[int] = []  # sizes of the `messages` and `statuses` events received
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("*", self._record, namespace="/agent")

    async def _record(self, event, data=None):
        if event in ("messages", "statuses"):  # a burst: the same as one `message` (`status`) event each, in order
            self.bursts.append(len(data))
            self.events.extend((event[:-1] if event == "messages" else "status", item) for item in data)
        else:
            self.events.append((event, data))

    async def connect(self) -> None:
        await self.sio.connect(self.url, namespaces=["/agent"], auth={"token": self.token},
                               transports=["websocket"], wait_timeout=5)

    async def disconnect(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()

    async def call(self, event: str, data: dict | None = None) -> dict:
        return await self.sio.call(event, data or {}, namespace="/agent", timeout=10)

    def pushed(self, event: str) -> list[dict]:
        return [data for name, data in self.events if name == event]

    @property
    def messages(self) -> list[dict]:
        return self.pushed("message")

    async def wait_messages(self, n: int, timeout: float = 5.0) -> list[dict]:
        await until(lambda: len(self.messages) >= n, timeout, f"{n} messages")
        return self.messages


@pytest.fixture
async def make_server(tmp_path, twilio_api, database_url):
    """Build and start servers; each call can add configuration. All are stopped afterwards."""
    servers: list[Server] = []
    reserved = reserved_port()
    port = reserved.getsockname()[1]

    async def make(extra: str = "", start: bool = True, connectors: str = "", alice: str = "") -> Server:
        path = tmp_path / f"didchat-{len(servers)}.yaml"
        path.write_text(config_text(port, database_url, twilio_api, extra, connectors, alice))
        server = Server(path, twilio_api, reserved)
        servers.append(server)
        return await server.start() if start else server

    yield make
    for server in servers:
        await server.stop()
    reserved.close()


@pytest.fixture
async def didchat_server(make_server) -> Server:
    return await make_server()
