"""The Ed25519 helper process (Telnyx's signatures off the event loop): the same answers as a check made here,
in order under load, and no check refused or lost when the helper dies, hangs or cannot start."""
import asyncio
import contextlib
import os
import signal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.providers import ed25519
from gateway.providers.ed25519 import Ed25519Checker, check_here

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def signed(n: int, valid: bool = True) -> tuple[bytes, bytes, bytes]:
    message = f"1700000000|{{\"n\": {n}}}".encode() * (1 + n % 7)
    signature = KEY.sign(message)
    if not valid:
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    return PUBLIC, message, signature


async def until(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def checker():
    checker = Ed25519Checker()
    yield checker
    await checker.close()


async def started(checker: Ed25519Checker) -> int:
    """The first check starts the helper (and is made here meanwhile); its pid once it answers."""
    assert await checker.check(*signed(0))
    await until(lambda: checker.pid is not None)
    assert checker.pid is not None
    return checker.pid


def test_check_here_refuses_what_is_not_a_signature():
    assert check_here(*signed(1))
    assert not check_here(*signed(1, valid=False))
    public, message, signature = signed(1)
    assert not check_here(public, message + b" ", signature)
    assert not check_here(public[:31], message, signature)
    assert not check_here(public, message, signature[:63])
    assert not check_here(b"\0" * 32, message, signature)  # a small-order key verifies nothing


async def test_the_helper_answers_as_a_check_here_would_in_order_under_load(checker):
    pid = await started(checker)
    assert pid != os.getpid()
    cases = [signed(n, valid=n % 3 != 0) for n in range(600)]
    answers = await asyncio.gather(*(checker.check(*case) for case in cases))
    assert answers == [n % 3 != 0 for n in range(600)]
    assert checker.pid == pid  # all of them by the helper


async def test_a_helper_killed_with_checks_in_flight_loses_none_and_is_started_again(checker, monkeypatch):
    monkeypatch.setattr(ed25519, "RESTART_SECONDS", 0.0)
    pid = await started(checker)
    checks = [asyncio.ensure_future(checker.check(*signed(n, valid=n % 2 == 0))) for n in range(300)]
    os.kill(pid, signal.SIGKILL)
    assert await asyncio.gather(*checks) == [n % 2 == 0 for n in range(300)]
    await until(lambda: checker.pid is None or checker.pid != pid)
    assert await checker.check(*signed(5))  # made here, and it starts another
    await until(lambda: checker.pid not in (None, pid))
    assert not await checker.check(*signed(6, valid=False))


async def test_a_helper_that_stops_answering_is_ended_and_its_checks_made_here(checker, monkeypatch):
    monkeypatch.setattr(ed25519, "STUCK_SECONDS", 0.3)
    pid = await started(checker)
    os.kill(pid, signal.SIGSTOP)
    try:
        answers = await asyncio.wait_for(asyncio.gather(checker.check(*signed(1)), checker.check(*signed(2, False))), 5)
    finally:
        with contextlib.suppress(ProcessLookupError):  # ended already: the checker killed it, as it should
            os.kill(pid, signal.SIGCONT)
    assert answers == [True, False]
    assert checker.pid != pid


async def test_no_helper_can_start_and_every_check_is_made_here(monkeypatch):
    monkeypatch.setattr(ed25519.sys, "executable", "/nonexistent/python")
    checker = Ed25519Checker()
    try:
        assert [await checker.check(*signed(n, n % 2 == 0)) for n in range(20)] == [n % 2 == 0 for n in range(20)]
        await asyncio.sleep(0)  # the failed start has run
        assert checker.pid is None
    finally:
        await checker.close()


async def test_close_ends_the_helper():
    checker = Ed25519Checker()
    pid = await started(checker)
    await checker.close()

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{pid}/stat") as stat:  # reaped later by asyncio's child watcher: a zombie is gone
            return stat.read().split()[2] == "Z"

    await until(gone)
    assert await checker.check(*signed(3))  # after close: made here, no helper started
    assert checker.pid is None
