"""`didchat run` as a real process: SIGTERM with agents connected exits within 10 s, and the
agents were told the server is restarting first (it took 45-61 s: aiohttp waited on their sockets)."""
from __future__ import annotations

import asyncio
import signal
import sys
import time

import aiohttp
import pytest

from tests.chat.test_shutdown import record_disconnect
from tests.conftest import PASSWORD, AgentClient, config_text, free_port

EXIT_WITHIN = 10.0


async def answers(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=1)) as answer:
                return answer.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


@pytest.fixture
async def didchat_process(tmp_path, twilio_api, database_url):
    """`didchat run --config ...` on 127.0.0.1 (SQLite file or PostgreSQL), started and ready."""
    port = free_port()
    path = tmp_path / "didchat.yaml"
    path.write_text(config_text(port, database_url, twilio_api))
    log = (tmp_path / "didchat.log").open("wb")
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "chat", "run", "--config", str(path),
                                                   stdout=log, stderr=asyncio.subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(60):
            while not await answers(f"{url}/readyz"):
                assert process.returncode is None, (tmp_path / "didchat.log").read_text()
                await asyncio.sleep(0.1)
        yield process, url
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()


async def test_sigterm_with_agents_connected_tells_them_and_exits_within_10_s(didchat_process):
    process, url = didchat_process
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/login", json={"username": "alice", "password": PASSWORD}) as answer:
            token = (await answer.json())["token"]
    agents = [AgentClient(url, token) for _ in range(3)]  # three tabs
    for agent in agents:
        record_disconnect(agent)
        await agent.connect()
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.wait(), EXIT_WITHIN)
    assert time.monotonic() - started < EXIT_WITHIN
    for agent in agents:
        names = [name for name, _ in agent.events]
        assert "server_restarting" in names and names.index("server_restarting") < names.index("disconnect"), names
