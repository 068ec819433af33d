"""SMPP peers on 127.0.0.1: our TestSmsc, and SmppClients run against it with small timeouts."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gateway.smpp import Incoming, SmppClient, SmppSettings, SubmitPart
from tests.fakes.smsc import TestSmsc

SYSTEM_ID, PASSWORD = "didchat", "secret"
CUSTOMER, OURS = "12125550199", "12125550101"


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `predicate()` holds, polling briefly; TimeoutError after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def fast_settings(port: int, **overrides) -> SmppSettings:
    """Settings for tests: every timer short, so each scenario takes well under a second or two."""
    base = SmppSettings(host="127.0.0.1", port=port, system_id=SYSTEM_ID, password=PASSWORD,
                        window=10, enquire_link_seconds=5, response_timeout=1.0, reconnect_min=0.05,
                        reconnect_max=0.2, throttle_pause=0.1, submit_wait=3)
    return dataclasses.replace(base, **overrides)


def part(text: str = "hello", dest: str = CUSTOMER, **overrides) -> SubmitPart:
    fields = dict(source_addr=OURS, source_ton=1, source_npi=1, dest_addr=dest, dest_ton=1, dest_npi=1,
                  esm_class=0, data_coding=0, short_message=text.encode())
    return SubmitPart(**(fields | overrides))


class Inbox:
    """An on_incoming callback that records what it is given and answers `status`."""

    def __init__(self, status: int = 0):
        self.status = status
        self.received: list[Incoming] = []
        self.raises: Exception | None = None
        self.gate: asyncio.Event | None = None  # set: callbacks wait for it before answering
        self._changed = asyncio.Event()

    async def __call__(self, incoming: Incoming) -> int:
        self.received.append(incoming)
        self._changed.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.raises is not None:
            raise self.raises
        return self.status

    async def wait(self, n: int, timeout: float = 5.0) -> list[Incoming]:
        async with asyncio.timeout(timeout):
            while len(self.received) < n:
                self._changed = asyncio.Event()
                await self._changed.wait()
        return self.received


@pytest.fixture
async def smsc() -> AsyncIterator[TestSmsc]:
    server = await TestSmsc(SYSTEM_ID, PASSWORD).start()
    yield server
    await server.stop()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


ClientFactory = Callable[..., Awaitable[SmppClient]]


@pytest.fixture
async def make_client(inbox: Inbox) -> AsyncIterator[ClientFactory]:
    """Start SmppClients (run() in a task); stopped afterwards. `bound=True` waits for the binds."""
    running: list[tuple[SmppClient, asyncio.Task]] = []

    async def make(settings: SmppSettings, *, name: str = "smsc1", on_incoming=None,
                   bound: bool = True) -> SmppClient:
        client = SmppClient(name, settings, on_incoming or inbox)
        running.append((client, asyncio.create_task(client.run())))
        if bound:
            assert await client.wait_bound(5), "client did not bind"
        return client

    yield make
    for client, task in running:
        await client.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
