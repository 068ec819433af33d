"""One bind per SMPP connector through a lease (chat.store.lease), in one process.

On SQLite the lease is always held. On PostgreSQL a second app on the same database cannot take
it while the first holds it: it stays on standby (said once, shown as "standby", its sender
refusing for now), and takes over when the holder stops or loses its lease connection.
"""
from __future__ import annotations

import asyncio
import json

import aiohttp
import asyncpg
import pytest
from structlog.testing import capture_logs

from chat.metrics import LINKS
from chat.store import Database
from chat.store.lease import AdvisoryLease, AlwaysHeld, check_seconds, lease, lease_key, server_settings
from gateway import OutboundSms, SendError
from gateway.smpp.client import SmppClient, SmppSettings
from tests.conftest import PG_ADMIN, SMPP_NUMBER, Server, config_text, free_port, smpp_connector, until
from tests.fakes.smsc import TestSmsc

FAST = "cluster: {heartbeat_seconds: 0.2, lease_seconds: 1}\n"  # the holder checks, the standby tries, 5 times a second
TAKEOVER_SECONDS = 10.0  # issue 9: another node binds within 10 s


@pytest.fixture
async def smsc():
    server = await TestSmsc("didchat", "secret", one_bind=True).start()
    yield server
    await server.stop()


@pytest.fixture
async def second_node(tmp_path, twilio_api, database_url, smsc):
    """Start another app on the same database and SMSC, on a port of its own; stopped afterwards."""
    servers: list[Server] = []

    async def start() -> Server:
        path = tmp_path / f"node-{len(servers) + 1}.yaml"
        path.write_text(config_text(free_port(), database_url, twilio_api, FAST, smpp_connector(smsc.port)))
        server = Server(path, twilio_api)
        servers.append(server)
        return await server.start()

    yield start
    for server in servers:
        await server.stop()


def link_of(server: Server):
    [link] = server.app[LINKS]
    return link


async def readyz(server: Server) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/readyz") as answer:
            return answer.status, json.loads(await answer.text())


def sms(text: str = "hi") -> OutboundSms:
    return OutboundSms("smsc", SMPP_NUMBER, "+12125550199", text, "m1")


async def test_the_one_bind_smsc_answers_a_second_bind_esme_ralybnd(smsc):
    clients = [SmppClient("smsc", SmppSettings("127.0.0.1", smsc.port, "didchat", "secret", reconnect_min=5, reconnect_max=5),
                          lambda inc: asyncio.sleep(0, 0)) for _ in range(2)]
    runs = [asyncio.create_task(client.run()) for client in clients]
    try:
        await smsc.until(lambda: len(smsc.bind_log) == 2, 5, "two bind attempts")
        assert [b.status for b in smsc.bind_log] == [0x00, 0x05] and len(smsc.sessions) == 1
    finally:
        for client in clients:
            await client.stop(1)
        await asyncio.gather(*runs, return_exceptions=True)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_on_sqlite_every_lease_is_held(database_url):
    db = Database(database_url)
    try:
        first, second = (lease(db, "smpp:smsc", heartbeat_seconds=2, lease_seconds=6) for _ in range(2))
        assert isinstance(first, AlwaysHeld) and await first.take() and await second.take()
    finally:
        await db.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_an_advisory_lease_has_one_holder_until_released_or_its_connection_dies(database_url):
    db = Database(database_url)
    first, second = (lease(db, "smpp:smsc", heartbeat_seconds=0.2, lease_seconds=1, node=n) for n in ("a", "b"))
    other = lease(db, "smpp:other", heartbeat_seconds=0.2, lease_seconds=1, node="b")
    admin = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + db.url.database)
    try:
        assert isinstance(first, AdvisoryLease) and lease_key("smpp:smsc") > 0
        assert await first.take() and not await second.take()
        assert await first.take() and not await second.take()  # a held lease is checked, not taken twice
        assert await other.take()  # another name, another lock
        await first.release()
        assert await second.take() and not await first.take()
        # the holder's lease connection dies (what a SIGKILLed node's does): the lock goes with it
        assert isinstance(second, AdvisoryLease) and second._conn is not None
        await admin.execute("SELECT pg_terminate_backend($1)", second._conn.get_server_pid())
        assert not await second.take()
        assert await first.take()
    finally:
        for each in (first, second, other):
            await each.release()
        await admin.close()
        await db.dispose()


class Blackhole:
    """A TCP proxy to PostgreSQL that can go silent, as a network partition does: sockets stay
    open and nothing more passes either way."""

    def __init__(self, port: int):
        self.port, self.silent = port, asyncio.Event()
        self.tasks: set[asyncio.Task] = set()

    async def start(self) -> Blackhole:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.listen = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self.tasks.add(task)

    async def _pipe(self, src, dst) -> None:
        while data := await src.read(65536):
            if self.silent.is_set():
                continue  # swallowed: the peer's retransmissions go nowhere
            dst.write(data)

    async def stop(self) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def test_the_server_gives_up_on_a_silent_holder_after_lease_seconds_and_the_holder_first():
    default = server_settings(6, check_seconds(2, 6), "didchat n lease smpp:smsc")
    assert (default["tcp_keepalives_idle"], default["tcp_keepalives_interval"], default["tcp_keepalives_count"]) == ("3", "1", "3")
    assert default["tcp_user_timeout"] == "6000" and default["statement_timeout"] == "1500"
    assert 2 + check_seconds(2, 6) < 6  # heartbeat + check: the holder lets go before the server frees the lock


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_holder_cut_off_from_postgresql_lets_go_within_its_check_time(database_url):
    db = Database(database_url)
    proxy = await Blackhole(db.url.port or 5432).start()
    cut = Database(database_url.replace(f":{db.url.port or 5432}/", f":{proxy.listen}/"))
    holder = lease(cut, "smpp:smsc", heartbeat_seconds=0.2, lease_seconds=2, node="a")
    try:
        assert await holder.take()
        assert isinstance(holder, AdvisoryLease) and holder._conn is not None
        assert await holder._conn.fetchval("SHOW tcp_keepalives_idle") == "1"  # the server's side of the bargain
        proxy.silent.set()
        loop = asyncio.get_running_loop()
        began = loop.time()
        assert not await holder.take()
        assert loop.time() - began < holder.check_seconds + 0.3
    finally:
        await holder.release()
        await proxy.stop()
        await cut.dispose()
        await db.dispose()


async def test_one_node_holds_the_lease_binds_and_submits(make_server, smsc):
    server = await make_server(connectors=smpp_connector(smsc.port), extra=FAST)
    await smsc.wait_for_sessions(1, timeout=10)
    link = link_of(server)
    await until(lambda: link.leader and link.metrics()["state"] == "bound", 10, "leader and bound")
    status, body = await readyz(server)
    assert status == 200 and body["connectors"]["smsc"] == "bound", body
    result = await link.sender.send(sms())
    assert len(result.provider_ids) == 1 and len(smsc.accepted) == 1
    assert [b.taken for b in smsc.bind_log] == [True]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_second_node_stays_on_standby_then_takes_over_when_the_holder_stops(make_server, second_node, smsc):
    first = await make_server(connectors=smpp_connector(smsc.port), extra=FAST)
    await until(lambda: link_of(first).metrics()["state"] == "bound", 10, "the first node bound")
    with capture_logs() as logs:
        second = await second_node()
        standby = link_of(second)
        await until(lambda: standby.metrics()["state"] == "standby", 5, "standby")
        await asyncio.sleep(1.0)  # five heartbeats of trying the lease while the first node holds it
    assert link_of(first).leader and not standby.leader
    assert [e["event"] for e in logs if e["event"].startswith(("smpp.", "lease."))] == ["smpp.standby"]
    status, body = await readyz(second)
    assert status == 200 and body["connectors"]["smsc"] == "standby", body
    async with aiohttp.ClientSession() as http, http.get(f"{second.url}/metrics") as answer:
        text = await answer.text()
    assert 'didchat_smpp_standby{connector="smsc"} 1.0' in text and 'didchat_smpp_bound{connector="smsc"} 0.0' in text
    with pytest.raises(SendError) as refused:
        await standby.sender.send(sms())
    assert refused.value.temporary and refused.value.code == "STANDBY"
    assert [b.taken for b in smsc.bind_log] == [True]  # the standby never even tried to bind

    stopped = asyncio.get_running_loop().time()
    await first.stop()
    await smsc.until(lambda: len(smsc.binds_taken) == 2 and len(smsc.sessions) == 1, TAKEOVER_SECONDS, "the takeover bind")
    took = smsc.binds_taken[-1].at - stopped
    assert took < 2.0, f"the standby bound {took:.2f} s after the holder stopped"
    assert standby.leader and not [b for b in smsc.bind_log if not b.taken]  # the holder unbound before it let go
    assert (await standby.sender.send(sms())).provider_ids


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_holder_that_loses_its_lease_connection_unbinds_and_the_standby_binds(make_server, second_node, smsc,
                                                                                       database_url):
    first = await make_server(connectors=smpp_connector(smsc.port), extra=FAST)
    await smsc.wait_for_sessions(1, timeout=10)
    second = await second_node()
    holder, standby = link_of(first), link_of(second)
    await until(lambda: standby.metrics()["state"] == "standby", 5, "standby")
    admin = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1])
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", holder.lease._conn.get_server_pid())
    finally:
        await admin.close()
    await until(lambda: not holder.leader, 2, "the holder to notice")
    await until(lambda: standby.leader and standby.metrics()["state"] == "bound", TAKEOVER_SECONDS, "the standby bound")
    await smsc.until(lambda: len(smsc.sessions) == 1, 5, "one bound session")
    assert holder.metrics()["state"] == "standby"
    # the lock went with the backend at once, the holder let go at its next check: the standby may
    # have asked for the bind in between and been told ESME_RALYBND; never were both bound
    assert len(smsc.binds_taken) == 2
