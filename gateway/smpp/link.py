"""One link: one TCP connection carrying one bind, from connect to unbind, for an SmppClient.

Rules:
- One link = one TCP connection = one bind; it connects, binds, reads and dispatches, ticks
  (deadlines, enquire_link) and unbinds. Protocol decisions stay in session.py and pdu.py.
- Every request's callback runs exactly once: on its answer, on its deadline (TIMEOUT) or when the
  link ends (LINK_LOST). A missed enquire_link or unbind, or DEAD_AFTER_TIMEOUTS misses in a row,
  end the link.
- A deliver_sm/data_sm is answered with the status its client hands back, only once it did;
  nothing is sent once the link is closed.
- What is the client's stays the client's: the link calls back into its SmppClient (bound, lost,
  bind failed, hand over, send loop) and makes errors with the factory it is given; it never
  imports client.py at run time (client.py imports this module).
"""
from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING

import structlog

from gateway.smpp.pdu import (
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_ROK,
    BadPdu,
    Framer,
    Pdu,
    encode,
    generic_nack,
    request,
    response,
    status_name,
)
from gateway.smpp.session import (
    BIND_FAILED,
    BIND_OK,
    BIND_SENT,
    CONNECTED,
    LINK_LOST,
    UNBIND_RECEIVED,
    UNBIND_SENT,
    UNBINDING,
    UNBOUND,
    Pending,
    Session,
)

if TYPE_CHECKING:
    from gateway.smpp.client import SmppClient, SmppError

log = structlog.get_logger("gateway.smpp")

DEAD_AFTER_TIMEOUTS = 3  # responses missed in a row before the link counts as dead

Callback = Callable[[Pdu | None, "SmppError | None"], None]
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
        self.session = Session(bind, client.settings.window)
        self.framer = Framer()
        self.writer: asyncio.StreamWriter | None = None
        self._out: list[bytes] = []  # encoded PDUs waiting for the end of this loop turn
        self.closed = asyncio.Event()
        self.answering: set[asyncio.Task] = set()
        self.missed = 0
        self.log = log.bind(connector=client.name, bind=bind)

    @property
    def transmits(self) -> bool:
        return self.session.bind != "receiver"

    async def run(self) -> bool:
        """Connect, bind and serve until the link ends; True if it got bound."""
        s = self.settings
        reader, self.writer = await asyncio.wait_for(asyncio.open_connection(s.host, s.port), s.response_timeout)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.session.handle(CONNECTED)
        workers = [asyncio.create_task(self._read(reader))]
        try:
            if not await self._bind():
                return False
            workers.append(asyncio.create_task(self._tick()))
            if self.transmits:
                workers.append(asyncio.create_task(self.client._send_loop(self)))
            self.client._link_bound(self)
            await self.closed.wait()
            return True
        finally:
            self.close("link ended")
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self.client._link_lost(self)

    async def _bind(self) -> bool:
        s = self.settings
        answer = asyncio.get_running_loop().create_future()
        self.request(f"bind_{self.session.bind}", partial(_settled, answer), system_id=s.system_id,
                     password=s.password, system_type=s.system_type, address_range=s.address_range)
        self.session.handle(BIND_SENT)
        pdu, error = await answer
        if error is not None:
            self.client._bind_failed(self, error.name)
            return False
        if pdu.status != ESME_ROK:
            self.session.handle(BIND_FAILED)
            self.client._bind_failed(self, status_name(pdu.status))
            return False
        self.session.handle(BIND_OK)
        return True

    def request(self, command: str, callback: Callback, tlvs: Mapping[str, object] | None = None,
                **fields: object) -> Pending:
        """Send a request; `callback(pdu, error)` runs once, on its answer, timeout or link loss."""
        loop = asyncio.get_running_loop()
        pending = self.session.start(command, loop.time(), self.settings.response_timeout, callback)
        self.send(request(command, pending.sequence, tlvs, **fields))
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
            pending.token(None, self.local_error("LINK_LOST", f"{pending.command} unanswered: {reason}"))

    # -- reading -------------------------------------------------------------------------------
    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while data := await reader.read(65536):
                for item in self.framer.feed(data):
                    self._dispatch(item)
                if self.framer.broken or self.closed.is_set():
                    break
        except OSError as err:
            self.log.warning("smpp.read_failed", error=repr(err))
        except Exception:
            self.log.exception("smpp.dispatch_failed")
        finally:
            self.close("connection closed")

    def _dispatch(self, item: Pdu | BadPdu) -> None:
        if isinstance(item, BadPdu):
            return self._bad(item)
        if item.is_response:
            return self._answered(item)
        handler = {"enquire_link": self._on_enquire_link, "unbind": self._on_unbind,
                   "deliver_sm": self._on_message, "data_sm": self._on_message}.get(item.command)
        if handler is None:
            self.log.warning("smpp.unsupported_request", command=item.command, sequence=item.sequence)
            self.send(generic_nack(item.sequence, ESME_RINVCMDID))
        elif not self.session.may_receive(item.command):
            self.log.warning("smpp.request_refused", command=item.command, state=self.session.state)
            self.send(response(item, ESME_RINVBNDSTS))
        else:
            handler(item)

    def _bad(self, bad: BadPdu) -> None:
        self.log.warning("smpp.bad_pdu", reason=bad.reason, sequence=bad.sequence, status=status_name(bad.status))
        if not bad.is_response:
            self.send(generic_nack(bad.sequence, bad.status))
        if bad.fatal:
            self.close("framing lost")

    def _answered(self, pdu: Pdu) -> None:
        pending = self.session.settle(pdu)
        if pending is None:
            self.log.warning("smpp.unknown_response", command=pdu.command, sequence=pdu.sequence,
                             status=status_name(pdu.status))
            return
        self.missed = 0
        pending.token(pdu, None)

    def _on_enquire_link(self, pdu: Pdu) -> None:
        self.send(response(pdu))

    def _on_unbind(self, pdu: Pdu) -> None:
        self.session.handle(UNBIND_RECEIVED)
        self.send(response(pdu))
        self.session.handle(UNBOUND)
        self.close("unbound by the SMSC")

    def _on_message(self, pdu: Pdu) -> None:
        task = asyncio.create_task(self._answer(pdu))
        self.answering.add(task)
        task.add_done_callback(self.answering.discard)

    async def _answer(self, pdu: Pdu) -> None:
        status = await self.client._hand_over(pdu)
        if self.closed.is_set():
            self.log.warning("smpp.resp_not_sent", command=pdu.command, sequence=pdu.sequence)
            return
        self.send(response(pdu, status))

    # -- time ----------------------------------------------------------------------------------
    async def _tick(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        step = min(0.25, s.response_timeout / 4, s.enquire_link_seconds / 4)
        enquire_at = loop.time() + s.enquire_link_seconds
        while not self.closed.is_set():
            await asyncio.sleep(step)
            now = loop.time()
            for pending in self.session.expired(now):
                self._expired(pending)
            if now >= enquire_at and self.session.may_send("enquire_link"):
                self.request("enquire_link", self._enquire_answered)
                enquire_at = now + s.enquire_link_seconds

    def _enquire_answered(self, pdu: Pdu | None, error: SmppError | None) -> None:
        if pdu is not None and pdu.status != ESME_ROK:
            self.log.warning("smpp.enquire_link_refused", status=status_name(pdu.status))

    def _expired(self, pending: Pending) -> None:
        self.log.warning("smpp.response_timeout", command=pending.command, sequence=pending.sequence)
        pending.token(None, self.local_error("TIMEOUT", f"no {pending.command}_resp in {self.settings.response_timeout}s"))
        self.missed += 1
        if pending.command in ("enquire_link", "unbind") or self.missed >= DEAD_AFTER_TIMEOUTS:
            self.close(f"{pending.command} unanswered")

    async def unbind(self) -> None:
        """Unbind politely (bounded by response_timeout), then close."""
        if self.session.may_send("unbind"):
            answer = asyncio.get_running_loop().create_future()
            self.request("unbind", partial(_settled, answer))
            self.session.handle(UNBIND_SENT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answer, self.settings.response_timeout)
            if self.session.state == UNBINDING:
                self.session.handle(UNBOUND)
        self.close("unbound")
