"""Ed25519 signature checks (Telnyx's webhooks) in a helper process, off the event loop's thread and its GIL.

Why: one check costs libsodium 50-80 us of CPU, more than the rest of a webhook's parsing; on the event
loop's thread it is a quarter of what a node spends on each Telnyx webhook. A thread does not help: the
check releases the GIL, but getting it back waits out the switch interval while the loop is busy.

Rules:
- `Ed25519Checker.check(key, message, signature)` is the same answer as `check_here` (libsodium through
  PyNaCl, as Telnyx's own SDK verifies), only computed in one helper process per checker, started on the
  first check and ended by `close()` (or by its pipe closing when the node dies).
- Nothing waits for the helper: while it starts, after it died or hung (it is started again, at most once
  every RESTART_SECONDS) or when it cannot run, checks run here. A check the helper was given when it died
  or stopped answering (STUCK_SECONDS) is made here: no webhook is refused or lost because the helper failed.
- The wire: each check is a frame, a 4-byte big-endian length, then the 32-byte key, the 64-byte signature
  and the message; the helper answers one byte per frame, in order: 1 valid, 0 not.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections import deque

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError, CryptoError


def _log():
    """structlog's logger, imported when first needed: `didchat simulate sms` and the helper never need it."""
    import structlog

    return structlog.get_logger("gateway.ed25519")

KEY, SIGNATURE = 32, 64
RESTART_SECONDS = 5.0
STUCK_SECONDS = 2.0  # a helper that answers nothing for this long is ended, its checks made here
ANSWER_EVERY = 8  # answers written together at most (about 0.4 ms of checks)
MAX_FRAME = 16 * 1024 * 1024  # larger than any webhook body a node accepts


def check_here(key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is `key`'s Ed25519 signature of `message`, computed in this thread."""
    if len(key) != KEY or len(signature) != SIGNATURE:
        return False
    try:
        crypto_sign_open(signature + message, key)
    except (BadSignatureError, CryptoError, ValueError, TypeError):
        return False
    return True


class _Helper(asyncio.SubprocessProtocol):
    """One helper process: its pipes, and its checks waiting for their answers, one byte each, in order."""

    def __init__(self, checker: Ed25519Checker):
        self.checker = checker
        self.transport: asyncio.SubprocessTransport | None = None
        self.stdin: asyncio.WriteTransport | None = None
        self.waiting: deque[tuple[asyncio.Future[bool], float]] = deque()  # (answer, when asked)
        self.outgoing: list[bytes] = []  # frames not written yet

    def flush(self) -> None:
        outgoing, self.outgoing = self.outgoing, []
        if self.stdin is not None and not self.stdin.is_closing():
            self.stdin.write(b"".join(outgoing))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd != 1:
            return
        waiting = self.waiting
        for byte in data:
            if not waiting:  # more answers than checks: it is not speaking our wire
                self.checker._lost(self, "answered more than it was asked")
                return
            future = waiting.popleft()[0]
            if not future.done():
                future.set_result(byte == 1)

    def process_exited(self) -> None:
        self.checker._lost(self, "exited")

    def end(self) -> None:
        """Fail what waits (it is checked here instead) and close the pipes, which ends the process."""
        waiting, self.waiting = self.waiting, deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(ConnectionError("the Ed25519 helper went away"))
        with contextlib.suppress(RuntimeError):  # its event loop is closed: so are its pipes
            if self.transport is not None and not self.transport.is_closing():
                self.transport.close()  # asyncio kills a process that outlives its pipes: it keeps nothing


class Ed25519Checker:
    """Checks in a helper process (the rules above); one per webhook reader that needs them."""

    def __init__(self) -> None:
        self._helper: _Helper | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the helper's
        self._starting: asyncio.Task | None = None
        self._started_at = float("-inf")
        self._watching: asyncio.TimerHandle | None = None
        self._closed = False

    async def check(self, key: bytes, message: bytes, signature: bytes) -> bool:
        """Whether `signature` is `key`'s signature of `message`: the helper's answer, or this thread's."""
        helper, loop = self._helper, asyncio.get_running_loop()
        stdin = helper.stdin if helper is not None and loop is self._loop else None
        if stdin is None or stdin.is_closing() or len(key) != KEY or len(signature) != SIGNATURE:
            self._start_soon(loop)
            return check_here(key, message, signature)
        assert helper is not None
        future: asyncio.Future[bool] = loop.create_future()
        helper.waiting.append((future, loop.time()))
        if not helper.outgoing:  # the checks asked in one turn of the loop go out in one write
            loop.call_soon(helper.flush)
            if self._watching is None:
                self._watching = loop.call_later(STUCK_SECONDS, self._watch)
        helper.outgoing += [(KEY + SIGNATURE + len(message)).to_bytes(4, "big"), key, signature, message]
        try:
            return await future
        except ConnectionError:  # the helper went away with it: this thread answers
            return check_here(key, message, signature)

    @property
    def pid(self) -> int | None:
        """The helper's process id while it answers checks, else None."""
        helper = self._helper
        return helper.transport.get_pid() if helper is not None and helper.transport is not None else None

    def _start_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._closed or self._starting is not None or time.monotonic() - self._started_at < RESTART_SECONDS:
            return
        if self._helper is not None:  # running for another event loop (tests): this one's replaces it
            self._lost(self._helper, "its event loop is another")
        self._started_at = time.monotonic()
        self._starting = loop.create_task(self._start(loop), name="ed25519-helper")

    async def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            transport, helper = await loop.subprocess_exec(
                lambda: _Helper(self), sys.executable, "-I", os.path.abspath(__file__),  # alone: not the whole package
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None)
            if self._closed:
                helper.end()
                return
            helper.stdin = transport.get_pipe_transport(0)  # type: ignore[assignment]
            self._helper, self._loop = helper, loop
            _log().info("ed25519.helper_started", pid=transport.get_pid())
        except (OSError, RuntimeError) as err:
            _log().warning("ed25519.helper_unavailable", error=f"{type(err).__name__}: {err}")
        finally:
            self._starting = None

    def _watch(self) -> None:
        """A helper that has not answered a check for STUCK_SECONDS is ended (its checks are made here)."""
        self._watching = None
        helper = self._helper
        if helper is None or not helper.waiting or self._loop is None:
            return
        if self._loop.time() - helper.waiting[0][1] > STUCK_SECONDS:
            self._lost(helper, f"answered nothing for {STUCK_SECONDS:g}s")
        else:
            self._watching = self._loop.call_later(STUCK_SECONDS, self._watch)

    def _lost(self, helper: _Helper, why: str) -> None:
        """A helper stopped answering: what it was asked is answered here; the next check starts another."""
        if helper is self._helper:
            self._helper = None
            if not self._closed:
                _log().warning("ed25519.helper_lost", reason=why)
        helper.end()

    async def close(self) -> None:
        """End the helper; checks still waiting are answered here."""
        self._closed = True
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        if self._watching is not None:
            self._watching.cancel()
        if self._helper is not None:
            self._lost(self._helper, "closed")


def serve(fd_in: int = 0, fd_out: int = 1) -> None:
    """The helper: read frames until the pipe closes; answer every ANSWER_EVERY checks, and at the end of what
    came in (the node's webhooks go on as soon as their answers come, not after a whole batch)."""
    pending = bytearray()
    while chunk := os.read(fd_in, 1 << 20):
        pending += chunk
        answers, at = bytearray(), 0
        while len(pending) - at >= 4:
            size = int.from_bytes(pending[at:at + 4], "big")
            if size < KEY + SIGNATURE or size > MAX_FRAME:
                return  # not our wire: the node sees the helper exit and checks by itself
            if len(pending) - at - 4 < size:
                break
            frame = bytes(pending[at + 4:at + 4 + size])
            at += 4 + size
            answers.append(check_here(frame[:KEY], frame[KEY + SIGNATURE:], frame[KEY:KEY + SIGNATURE]))
            if len(answers) == ANSWER_EVERY:
                _write(fd_out, answers)
                answers = bytearray()
        del pending[:at]
        _write(fd_out, answers)


def _write(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


if __name__ == "__main__":
    serve()
