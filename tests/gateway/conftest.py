"""Local peers for the gateway's tests: the fake Twilio API and small aiohttp servers on 127.0.0.1."""
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from tests.fakes.twilio_api import FakeTwilioApi

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def twilio_api() -> AsyncIterator[FakeTwilioApi]:
    api = await FakeTwilioApi().start()
    yield api
    await api.stop()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Serve one POST handler at /hook on 127.0.0.1; return its URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post("/hook", handler)
        runner = web.AppRunner(app, shutdown_timeout=2)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}/hook"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
