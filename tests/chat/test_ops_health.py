"""/livez, /readyz and /healthz: what a load balancer and an orchestrator ask (both databases)."""
from __future__ import annotations

import aiohttp
import asyncpg
import sqlalchemy as sa

from tests.conftest import PG_ADMIN, smpp_connector, until
from tests.fakes.smsc import TestSmsc


async def get(server, path: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}{path}") as answer:
            return answer.status, await answer.json()


async def test_live_and_ready_when_all_is_well(didchat_server):
    assert await get(didchat_server, "/livez") == (200, {"ok": True})
    assert await get(didchat_server, "/healthz") == (200, {"ok": True})
    status, body = await get(didchat_server, "/readyz")
    assert status == 200, body
    assert body == {"ok": True, "problems": [], "connectors": {"tw": "configured"}}


async def test_not_ready_when_the_database_is_gone(didchat_server, database_url):
    db = didchat_server.services.db
    if db.is_sqlite:  # the file and its WAL overwritten under the running server (a failed disk, a bad restore)
        for suffix in ("", "-wal", "-shm"):
            with open(db.url.database + suffix, "r+b") as file:
                file.write(b"\xff" * 8192)
    else:
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE "{db.url.database}" WITH (FORCE)')
        await admin.close()
    status, body = await get(didchat_server, "/readyz")
    assert status == 503
    [problem] = body["problems"]
    assert problem.startswith("database: ")
    assert (await get(didchat_server, "/livez"))[0] == 200


async def test_not_ready_when_migrations_are_behind(didchat_server):
    async with didchat_server.services.db.write() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = '0003'"))
    status, body = await get(didchat_server, "/readyz")
    assert status == 503
    [problem] = body["problems"]
    assert "migrations" in problem and "0003" in problem and "didchat migrate" in problem


async def test_not_ready_once_shutdown_began(didchat_server):
    await didchat_server.app.shutdown()  # what a SIGTERM starts, with the listener still open
    status, body = await get(didchat_server, "/readyz")
    assert status == 503 and body["problems"] == ["shutting down"]
    assert (await get(didchat_server, "/livez"))[0] == 200


async def test_readiness_reports_smpp_bind_state_without_failing_on_it(make_server):
    smsc = await TestSmsc("didchat", "secret", window=50).start()
    try:
        server = await make_server(connectors=smpp_connector(smsc.port))
        await smsc.wait_for_sessions(1, timeout=10)
        await until(lambda: server.services is not None)
        status, body = await get(server, "/readyz")
        assert status == 200 and body["connectors"] == {"tw": "configured", "smsc": "bound"}
    finally:
        await smsc.stop()
    for _ in range(100):
        status, body = await get(server, "/readyz")
        if body["connectors"]["smsc"] != "bound":
            break
    assert status == 200 and body["connectors"]["smsc"] != "bound"
