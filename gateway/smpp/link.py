"""One link: one TCP connection carrying one bind, from connect to unbind, for an SmppClient.

Rules:
- The pump: it connects, reads and feeds the bytes to the session (session.py), executes the
  events the session hands back (write, hand over, settle, close), and sleeps until the session's
  next deadline to tell it the time (late answers, enquire_link). It decides nothing about the
  protocol: every answer, every state change and every "this link is dead" is the session's.
- Every request's callback runs exactly once: on its answer, on its deadline (TIMEOUT) or when the
  link ends (LINK_LOST).
- A deliver_sm/data_sm is answered with the status its client hands back, only once it did;
  nothing is sent once the link is closed.
- What is the client's stays the client's: the link calls back into its SmppClient (bound, lost,
  bind failed, hand over, answered, send loop) and makes errors with the factory it is given; it
  never imports client.py at run time (client.py imports this module).
"""
from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, cast

import structlog

from gateway.smpp.pdu import Pdu, encode, status_name
from gateway.smpp.session import (
    CONNECTED,
    LINK_LOST,
    Close,
    Deliver,
    Event,
    Expired,
    Pending,
    Refused,
    Send,
    Session,
    Settled,
    Stray,
)

if TYPE_CHECKING:
    from gateway.smpp.client import SmppClient, SmppError

log = structlog.get_logger("gateway.smpp")

TICK_MAX = 0.25  # seconds: the longest the pump sleeps between looks at the clock, whatever is due

Callback = Callable[[Pdu | None, "SmppError | None"], None]  # the Pending.token of this link's requests
LocalError = Callable[[str, str], "SmppError"]  # (name, detail) -> a temporary local SmppError


def _settled(future: asyncio.Future, pdu: Pdu | None, error: SmppError | None) -> None:
    """A Callback that hands (pdu, error) to whoever awaits `future`."""
    if not future.done():
        future.set_result((pdu, error))


class _Link:
    """One TCP connection carrying one bind."""

    def __init__(self, client: SmppClient, bind: str, local_error: LocalError):
        self.client = client
        self.local_error = local_error
        self.settings = client.settings
        s = client.settings
        self.session = Session(bind, s.window, keepalive=s.enquire_link_seconds, response_timeout=s.response_timeout)
        self.writer: asyncio.StreamWriter | None = None
        self._out: list[bytes] = []  # encoded PDUs waiting for the end of this loop turn
        self.closed = asyncio.Event()
        self.answering: set[asyncio.Task] = set()
        self.log = log.bind(connector=client.name, bind=bind)

    @property
    def transmits(self) -> bool:
        return self.session.bind != "receiver"

    async def run(self) -> bool:
        """Connect, bind and serve until the link ends; True if it got bound."""
        s = self.settings
        async with asyncio.timeout(s.response_timeout):  # not wait_for: on 3.11 it can lose a cancel (gh-86296)
            reader, writer = await asyncio.open_connection(s.host, s.port)
        self.writer = writer
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.session.handle(CONNECTED)
        workers = [asyncio.create_task(self._read(reader)), asyncio.create_task(self._tick())]
        try:
            if not await self._bind():
                return False
            if self.transmits:
                workers.append(asyncio.create_task(self.client._send_loop(self)))
            self.client._link_bound(self)
            await self.closed.wait()
            return True
        finally:
            self.close("link ended")
            self.client._link_lost(self)  # before any await: a stop that cancels this task still sees it gone
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _bind(self) -> bool:
        """Send the bind and wait for its fate; the session moved the state as the answer was read."""
        s = self.settings
        answer = asyncio.get_running_loop().create_future()
        self.request(f"bind_{self.session.bind}", partial(_settled, answer), system_id=s.system_id,
                     password=s.password, system_type=s.system_type, address_range=s.address_range)
        _, error = await answer
        if error is not None:
            self.client._bind_failed(self, error.name)
            return False
        if self.session.bind_status:
            self.client._bind_failed(self, status_name(self.session.bind_status))
            return False
        return True

    def request(self, command: str, callback: Callback, tlvs: Mapping[str, object] | None = None,
                **fields: object) -> Pending:
        """Send a request; `callback(pdu, error)` runs once, on its answer, timeout or link loss."""
        loop = asyncio.get_running_loop()
        pending, pdu = self.session.request(command, loop.time(), self.settings.response_timeout, callback,
                                            dict(tlvs or {}), **fields)
        self.send(pdu)
        return pending

    def send(self, pdu: Pdu) -> None:
        """Queue a PDU; everything queued in one turn of the event loop leaves in one write."""
        if self.writer is None or self.closed.is_set():
            return
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(encode(pdu))

    def _flush(self) -> None:
        out, self._out = self._out, []
        if out and self.writer is not None and not self.writer.is_closing():
            self.writer.write(b"".join(out))

    def close(self, reason: str) -> None:
        """End the link now; everything in flight fails with LINK_LOST."""
        if self.closed.is_set():
            return
        self._flush()  # e.g. the unbind_resp before the close
        self.closed.set()
        self.session.handle(LINK_LOST)
        if self.writer is not None:
            self.writer.close()
        self.log.info("smpp.link_closed", reason=reason)
        for pending in self.session.abandon():
            if pending.token is not None:
                cast(Callback, pending.token)(None, self.local_error("LINK_LOST", f"{pending.command} unanswered: {reason}"))

    # -- reading -------------------------------------------------------------------------------
    async def _read(self, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self.closed.is_set() and (data := await reader.read(65536)):
                self._execute(self.session.receive_data(data, loop.time()))
        except OSError as err:
            self.log.warning("smpp.read_failed", error=repr(err))
        except Exception:
            self.log.exception("smpp.dispatch_failed")
        finally:
            self.close("connection closed")

    def _execute(self, events: list[Event]) -> None:
        for event in events:
            _ACTIONS[type(event)](self, event)

    def _send_event(self, event: Send) -> None:
        self.send(event.pdu)

    def _refused(self, event: Refused) -> None:
        status = None if event.answer is None else status_name(event.answer.status)
        self.log.warning("smpp.request_refused", command=event.command, sequence=event.sequence,
                         status=status, reason=event.reason)
        if event.answer is not None:
            self.send(event.answer)

    def _deliver(self, event: Deliver) -> None:
        task = asyncio.create_task(self._answer(event.pdu))
        self.answering.add(task)
        task.add_done_callback(self.answering.discard)

    def _settle(self, event: Settled) -> None:
        if event.pdu.status and event.pending.command == "enquire_link":
            self.log.warning("smpp.enquire_link_refused", status=status_name(event.pdu.status))
        if event.pending.token is not None:  # the session's own requests (enquire_link) have none
            cast(Callback, event.pending.token)(event.pdu, None)

    def _expired(self, event: Expired) -> None:
        pending = event.pending
        self.log.warning("smpp.response_timeout", command=pending.command, sequence=pending.sequence)
        if pending.token is not None:
            cast(Callback, pending.token)(None, self.local_error("TIMEOUT", f"no {pending.command}_resp in {self.settings.response_timeout}s"))

    def _stray(self, event: Stray) -> None:
        self.log.warning("smpp.unknown_response", command=event.pdu.command, sequence=event.pdu.sequence,
                         status=status_name(event.pdu.status))

    def _close(self, event: Close) -> None:
        self.close(event.reason)

    async def _answer(self, pdu: Pdu) -> None:
        status = await self.client._hand_over(pdu)
        answer = None if self.closed.is_set() else self.session.answer(pdu, status)
        if answer is None:
            self.log.warning("smpp.resp_not_sent", command=pdu.command, sequence=pdu.sequence)
            return
        self.client._answered(pdu, status)
        self.send(answer)

    # -- time ----------------------------------------------------------------------------------
    async def _tick(self) -> None:
        """Sleep until the session's next deadline (polling at most every TICK_MAX), then tell it the time."""
        loop = asyncio.get_running_loop()
        self._execute(self.session.tick(loop.time()))
        while not self.closed.is_set():
            deadline = self.session.next_deadline()
            wait = TICK_MAX if deadline is None else min(TICK_MAX, max(0.0, deadline - loop.time()))
            await asyncio.sleep(wait)
            self._execute(self.session.tick(loop.time()))

    async def unbind(self) -> None:
        """Unbind politely (bounded by response_timeout), then close."""
        if self.session.may_send("unbind"):
            answer = asyncio.get_running_loop().create_future()
            self.request("unbind", partial(_settled, answer))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.response_timeout):
                    await answer
        self.close("unbound")


_ACTIONS: dict[type, Callable[..., None]] = {  # what the pump does with each kind of event
    Send: _Link._send_event, Refused: _Link._refused, Deliver: _Link._deliver, Settled: _Link._settle,
    Expired: _Link._expired, Stray: _Link._stray, Close: _Link._close,
}
