"""Killed mid-stream: every deliver_sm the SMSC saw acknowledged survives, resends are stored once."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import aiohttp
import pytest
import sqlalchemy as sa

from chat.store import Database
from chat.store.tables import messages
from tests.conftest import PASSWORD, SMPP_NUMBER, AgentClient, config_text, free_port, smpp_connector, until
from tests.fakes.smsc import TestSmsc

TOTAL = 2000


@pytest.fixture
async def smsc():
    server = await TestSmsc("didchat", "secret", window=50).start()
    yield server
    await server.stop()


class Process:
    """didchat as a separate process, the way it runs in production."""

    def __init__(self, config, log):
        self.config, self.log = config, log
        self.proc: subprocess.Popen | None = None

    async def start(self, url: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "chat", "run", "--config", str(self.config)],
                                     stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        async with aiohttp.ClientSession() as http:
            async def healthy() -> bool:
                try:
                    async with http.get(f"{url}/healthz") as answer:
                        return answer.status == 200
                except aiohttp.ClientError:
                    return False
            async with asyncio.timeout(30):
                while not await healthy():
                    assert self.proc.poll() is None, self.log.read_text()
                    await asyncio.sleep(0.1)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


async def stored(database_url: str) -> list[str]:
    db = Database(database_url)
    try:
        async with db.read() as conn:
            return list((await conn.scalars(sa.select(messages.c.text).where(messages.c.direction == "in"))).all())
    finally:
        await db.dispose()


async def test_sigkill_while_the_smsc_sends_2000_loses_nothing_and_stores_resends_once(
        tmp_path, twilio_api, database_url, smsc):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp_path / "didchat.yaml"
    config.write_text(config_text(port, database_url, twilio_api, connectors=smpp_connector(smsc.port, dedupe_window=3600)))
    didchat = Process(config, tmp_path / "didchat.log")
    try:
        await didchat.start(url)
        await smsc.wait_for_sessions(1, timeout=20)
        batch = [{"source": f"1212555{1000 + i % 50:04d}", "dest": SMPP_NUMBER.lstrip("+"),
                  "short_message": f"message {i}".encode()} for i in range(TOTAL)]
        sending = asyncio.create_task(smsc.deliver_many(batch, window=50, timeout=3))
        await until(lambda: len(smsc.delivered) >= 400, timeout=60)
        didchat.kill()
        sending.cancel()  # what was in flight never got its ROK: the SMSC must resend it
        await asyncio.gather(sending, return_exceptions=True)
        acknowledged = {m["short_message"].decode() for m in smsc.delivered}
        assert 400 <= len(acknowledged) < TOTAL, "the kill must land mid-stream"
        assert acknowledged <= set(await stored(database_url))

        binds = smsc.counters["binds"]
        await didchat.start(url)
        await smsc.until(lambda: smsc.counters["binds"] > binds, timeout=20)
        pending = [m for m in batch if m["short_message"].decode() not in acknowledged]
        for _ in range(5):  # the SMSC resends whatever it never saw acknowledged
            statuses = await smsc.deliver_many(pending, window=50, timeout=5)
            pending = [m for m, status in zip(pending, statuses) if status != 0]
            if not pending:
                break
        assert pending == []

        texts = await stored(database_url)
        assert len(texts) == TOTAL and set(texts) == {f"message {i}" for i in range(TOTAL)}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/api/login", json={"username": "alice", "password": PASSWORD}) as answer:
                token = (await answer.json())["token"]
        alice = AgentClient(url, token)
        await alice.connect()
        try:
            await alice.wait_messages(TOTAL, timeout=30)  # her waiting conversations are handed to her
            assert sorted(m["text"] for m in alice.messages) == sorted(texts)
            answer = await alice.call("sync", {})
            assert len(answer["messages"]) == TOTAL
        finally:
            await alice.disconnect()
    finally:
        didchat.stop()
