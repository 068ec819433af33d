"""The asyncio pump around session.py and pdu.py: one SmppClient per SMSC account.

Rules:
- Protocol decisions live in session.py (state, window, matching) and pdu.py (bytes); this
  module moves bytes, keeps time, and keeps the API's promises.
- Ack after the callback: a deliver_sm/data_sm is answered with the status `on_incoming` returns,
  only once it returned; if it raises, ESME_RX_T_APPN (temporary: the SMSC retries).
- Which submit leaves when is session.SubmitQueue's decision (arrival order, pauses of the whole
  client after ESME_RTHROTTLED / ESME_RMSGQFUL / ESME_RSYSERR, a probe after each pause, the rate).
- Every wait ends: submit waits at most submit_wait for a bound link, each request at most
  response_timeout for its answer; stop() is bounded by a few response_timeouts.
- One link = one TCP connection = one bind: one for a transceiver, two for transmitter_receiver.
"""
from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Literal

import structlog

from gateway.smpp.pdu import (
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_ROK,
    ESME_RSYSERR,
    ESME_RX_T_APPN,
    TEMPORARY_STATUSES,
    BadPdu,
    Framer,
    Pdu,
    PduError,
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
    DONE,
    LINK_LOST,
    RETRY,
    UNBIND_RECEIVED,
    UNBIND_SENT,
    UNBINDING,
    UNBOUND,
    Pending,
    Queued,
    Session,
    SubmitQueue,
)

log = structlog.get_logger("gateway.smpp")

DEAD_AFTER_TIMEOUTS = 3  # responses missed in a row before the link counts as dead


@dataclass(frozen=True)
class SmppSettings:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    address_range: str = ""
    bind: Literal["transceiver", "transmitter_receiver"] = "transceiver"
    window: int = 10  # requests in flight per bind
    enquire_link_seconds: float = 30
    response_timeout: float = 10
    reconnect_min: float = 1.0  # jittered exponential backoff
    reconnect_max: float = 60.0
    rate_limit: float = 0  # submit_sm PDUs (= segments) per second; 0 = unlimited
    throttle_pause: float = 1.0  # first pause after ESME_RTHROTTLED / ESME_RMSGQFUL (doubles, capped)
    submit_retries: int = 5  # bounded resends of one PDU on 0x58 / 0x14 / 0x08
    submit_wait: float = 30  # how long submit() waits for a bound link

    def __post_init__(self) -> None:
        if self.bind not in ("transceiver", "transmitter_receiver"):
            raise ValueError(f"bind: 'transceiver' or 'transmitter_receiver', got {self.bind!r}")
        for name in ("window", "enquire_link_seconds", "response_timeout", "reconnect_min", "throttle_pause"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)!r}")
        if self.reconnect_max < self.reconnect_min or self.rate_limit < 0 or self.submit_retries < 0:
            raise ValueError("reconnect_max >= reconnect_min, rate_limit >= 0 and submit_retries >= 0")
        encode(request("bind_transceiver", 1, system_id=self.system_id, password=self.password,
                       system_type=self.system_type, address_range=self.address_range))

    @property
    def binds(self) -> tuple[str, ...]:
        return ("transceiver",) if self.bind == "transceiver" else ("transmitter", "receiver")


@dataclass(frozen=True)
class Incoming:
    """A deliver_sm or data_sm as received."""

    command: str  # "deliver_sm" | "data_sm"
    source_addr: str
    source_ton: int
    source_npi: int
    dest_addr: str
    dest_ton: int
    dest_npi: int
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: Mapping[str, object]  # by smpplib's names: message_payload, sar_*, receipted_message_id, ...
    sequence: int


@dataclass(frozen=True)
class SubmitPart:
    """One submit_sm: one segment of a message, already encoded."""

    source_addr: str
    source_ton: int
    source_npi: int
    dest_addr: str
    dest_ton: int
    dest_npi: int
    esm_class: int
    data_coding: int
    short_message: bytes
    registered_delivery: int = 1
    tlvs: Mapping[str, object] = field(default_factory=dict)


class SmppError(Exception):
    """A request that failed: an SMSC status (`status`, `name`) or a local reason (status 0).

    Local names: NOT_BOUND, TIMEOUT, LINK_LOST, STOPPING (temporary) and INVALID_PDU (final)."""

    def __init__(self, status: int, detail: str = "", *, temporary: bool | None = None,
                 name: str | None = None):
        self.status = status
        self.name = name or status_name(status)
        self.temporary = status in TEMPORARY_STATUSES if temporary is None else temporary
        self.detail = detail
        super().__init__(str(self))

    def __str__(self) -> str:
        code = f" (0x{self.status:08X})" if self.status else ""
        return f"{self.name}{code}: {self.detail}" if self.detail else f"{self.name}{code}"


def _local(name: str, detail: str, temporary: bool = True) -> SmppError:
    return SmppError(0, detail, temporary=temporary, name=name)


Callback = Callable[[Pdu | None, SmppError | None], None]


def _resolve(future: asyncio.Future, pdu: Pdu | None, error: SmppError | None) -> None:
    if not future.done():
        future.set_exception(error) if error else future.set_result(pdu)


def _submit_fields(part: SubmitPart) -> dict[str, object]:
    return {
        "source_addr": part.source_addr, "source_addr_ton": part.source_ton,
        "source_addr_npi": part.source_npi, "destination_addr": part.dest_addr,
        "dest_addr_ton": part.dest_ton, "dest_addr_npi": part.dest_npi, "esm_class": part.esm_class,
        "data_coding": part.data_coding, "short_message": part.short_message,
        "registered_delivery": part.registered_delivery,
    }


def _incoming(pdu: Pdu) -> Incoming:
    f = pdu.fields
    return Incoming(
        command=pdu.command, source_addr=f["source_addr"], source_ton=f["source_addr_ton"],
        source_npi=f["source_addr_npi"], dest_addr=f["destination_addr"], dest_ton=f["dest_addr_ton"],
        dest_npi=f["dest_addr_npi"], esm_class=f["esm_class"], data_coding=f["data_coding"],
        short_message=f.get("short_message", b""), tlvs=MappingProxyType(dict(pdu.tlvs)),
        sequence=pdu.sequence,
    )


def backoff(attempt: int, low: float, high: float) -> float:
    """Jittered exponential delay before reconnect attempt `attempt` (0-based)."""
    delay = min(high, low * 2 ** min(attempt, 30))
    return random.uniform(delay / 2, delay)


@dataclass(frozen=True, eq=False)
class _Job:
    """One submit_sm and the future its caller awaits."""

    fields: dict[str, object]
    tlvs: dict[str, object]
    future: asyncio.Future


class _Link:
    """One TCP connection carrying one bind."""

    def __init__(self, client: SmppClient, bind: str):
        self.client = client
        self.settings = client.settings
        self.session = Session(bind, client.settings.window)
        self.framer = Framer()
        self.writer: asyncio.StreamWriter | None = None
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
        self.request(f"bind_{self.session.bind}", partial(_resolve, answer), system_id=s.system_id,
                     password=s.password, system_type=s.system_type, address_range=s.address_range)
        self.session.handle(BIND_SENT)
        try:
            pdu = await answer
        except SmppError as err:
            self.client._bind_failed(self, err.name)
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
        if self.writer is not None and not self.closed.is_set():
            self.writer.write(encode(pdu))

    def close(self, reason: str) -> None:
        """End the link now; everything in flight fails with LINK_LOST."""
        if self.closed.is_set():
            return
        self.closed.set()
        self.session.handle(LINK_LOST)
        if self.writer is not None:
            self.writer.close()
        self.log.info("smpp.link_closed", reason=reason)
        for pending in self.session.abandon():
            pending.token(None, _local("LINK_LOST", f"{pending.command} unanswered: {reason}"))

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
        status = await self.client._hand_over(_incoming(pdu))
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
        pending.token(None, _local("TIMEOUT", f"no {pending.command}_resp in {self.settings.response_timeout}s"))
        self.missed += 1
        if pending.command in ("enquire_link", "unbind") or self.missed >= DEAD_AFTER_TIMEOUTS:
            self.close(f"{pending.command} unanswered")

    async def unbind(self) -> None:
        """Unbind politely (bounded by response_timeout), then close."""
        if self.session.may_send("unbind"):
            answer = asyncio.get_running_loop().create_future()
            self.request("unbind", partial(_resolve, answer))
            self.session.handle(UNBIND_SENT)
            with contextlib.suppress(SmppError, TimeoutError):
                await asyncio.wait_for(answer, self.settings.response_timeout)
            if self.session.state == UNBINDING:
                self.session.handle(UNBOUND)
        self.close("unbound")


class SmppClient:
    """An ESME: keeps its binds to one SMSC up, submits in order, hands incoming messages over."""

    def __init__(self, name: str, settings: SmppSettings, on_incoming: Callable[[Incoming], Awaitable[int]]):
        self.name = name
        self.settings = settings
        self._on_incoming = on_incoming
        self._log = log.bind(connector=name)
        self._links: dict[str, _Link] = {}  # bound links by bind type
        self._current: dict[str, _Link] = {}  # the latest link per bind type, bound or not
        self._changed = asyncio.Event()
        self._stopping = False
        self._keepers: list[asyncio.Task] = []
        self._watchers: set[asyncio.Task] = set()
        self._queue = SubmitQueue(settings.throttle_pause, settings.submit_retries, settings.rate_limit)
        self.last_error: str | None = None  # the latest bind or link error, e.g. "ESME_RINVPASWD"

    # -- state ---------------------------------------------------------------------------------
    @property
    def is_bound(self) -> bool:
        """Every bind of this client is up."""
        return all(bind in self._links for bind in self.settings.binds)

    def _transmitter(self) -> _Link | None:
        return self._links.get("transceiver") or self._links.get("transmitter")

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _until(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not predicate():
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return True

    async def wait_bound(self, timeout: float | None = None) -> bool:
        """True once every bind is up; False if `timeout` seconds pass first."""
        return await self._until(lambda: self.is_bound, timeout)

    # -- links ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, bind and keep the binds up, reconnecting with backoff, until stop()."""
        if self._stopping:
            return
        self._keepers = [asyncio.create_task(self._keep(bind)) for bind in self.settings.binds]
        await asyncio.gather(*self._keepers, return_exceptions=True)

    async def _keep(self, bind: str) -> None:
        s = self.settings
        attempt = 0
        while not self._stopping:
            link = self._current[bind] = _Link(self, bind)
            try:
                bound = await link.run()
            except (OSError, TimeoutError) as err:
                self.last_error = repr(err)
                self._log.warning("smpp.connect_failed", bind=bind, error=repr(err))
                bound = False
            except Exception as err:  # a bug must not end the reconnect loop
                self.last_error = repr(err)
                self._log.exception("smpp.link_failed", bind=bind)
                bound = False
            attempt = 0 if bound else attempt + 1
            if self._stopping:
                break
            delay = backoff(attempt, s.reconnect_min, s.reconnect_max)
            self._log.info("smpp.reconnect", bind=bind, in_seconds=round(delay, 3))
            await self._until(lambda: self._stopping, delay)

    def _link_bound(self, link: _Link) -> None:
        self._links[link.session.bind] = link
        self.last_error = None
        link.log.info("smpp.bound", window=self.settings.window)
        self._poke()

    def _link_lost(self, link: _Link) -> None:
        if self._links.get(link.session.bind) is link:
            del self._links[link.session.bind]
            link.log.warning("smpp.unbound")
            if link.transmits and not self._stopping:
                self._watch(self._fail_queue_if_unbound())
        self._poke()

    def _bind_failed(self, link: _Link, name: str) -> None:
        self.last_error = name
        link.log.warning("smpp.bind_failed", status=name, system_id=self.settings.system_id)

    def _watch(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _fail_queue_if_unbound(self) -> None:
        """Queued submits wait submit_wait for a new bind, no longer."""
        if await self._until(lambda: self._transmitter() is not None or self._stopping, self.settings.submit_wait):
            return
        self._fail_queue(_local("NOT_BOUND", f"no bound link for {self.settings.submit_wait}s"))

    def _fail_queue(self, error: SmppError) -> None:
        for queued in self._queue.drain():
            if not queued.token.future.done():
                queued.token.future.set_exception(error)

    # -- incoming ------------------------------------------------------------------------------
    async def _hand_over(self, incoming: Incoming) -> int:
        """The callback's status for `incoming`; ESME_RX_T_APPN if it raised or answered nonsense."""
        try:
            status = await self._on_incoming(incoming)
        except Exception:
            self._log.exception("smpp.incoming_failed", command=incoming.command, source=incoming.source_addr)
            return ESME_RX_T_APPN
        if not isinstance(status, int) or not 0 <= status <= 0xFFFFFFFF:
            self._log.error("smpp.incoming_bad_status", status=repr(status))
            return ESME_RX_T_APPN
        return status

    # -- submitting ----------------------------------------------------------------------------
    async def submit(self, part: SubmitPart) -> str:
        """Send one submit_sm; the message_id of its submit_sm_resp, or SmppError."""
        if self._stopping:
            raise _local("STOPPING", "the client is stopping")
        fields, tlvs = _submit_fields(part), dict(part.tlvs)
        try:
            encode(request("submit_sm", 1, tlvs, **fields))
        except PduError as err:
            raise _local("INVALID_PDU", str(err), temporary=False) from err
        wait = self.settings.submit_wait
        if not await self._until(lambda: self._transmitter() is not None or self._stopping, wait):
            raise _local("NOT_BOUND", f"no bound link after {wait}s")
        if self._stopping:
            raise _local("STOPPING", "the client is stopping")
        job = _Job(fields, tlvs, asyncio.get_running_loop().create_future())
        self._queue.push(job)
        self._poke()
        return await job.future

    async def _send_loop(self, link: _Link) -> None:
        """Send queued submits on `link` while it lasts, as the window, the pause and the rate allow."""
        while not link.closed.is_set():
            changed = self._changed
            delay = self._send_delay(link)
            if delay == 0:
                self._send_next(link)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), delay)

    def _send_delay(self, link: _Link) -> float | None:
        """0 to send now, seconds to wait, or None to wait for a change."""
        self._queue.discard(lambda queued: queued.token.future.done())
        return self._queue.delay(asyncio.get_running_loop().time(), link.session)

    def _send_next(self, link: _Link) -> None:
        queued = self._queue.pop(asyncio.get_running_loop().time())
        job = queued.token
        link.request("submit_sm", partial(self._settle, queued), job.tlvs, **job.fields)

    def _settle(self, queued: Queued, pdu: Pdu | None, error: SmppError | None) -> None:
        """A submit_sm's fate: done, resent in its place after a pause, or failed."""
        self._poke()
        job = queued.token
        if job.future.done():
            return
        if error is not None:
            job.future.set_exception(error)
            return
        status = pdu.status or (ESME_RSYSERR if pdu.command == "generic_nack" else ESME_ROK)
        now = asyncio.get_running_loop().time()
        outcome = self._queue.answered(queued, status, now, retry=not self._stopping)
        if outcome == DONE:
            job.future.set_result(str(pdu.get("message_id", "")))
        elif outcome == RETRY:
            self._log.warning("smpp.submit_retry", status=status_name(status), attempt=queued.attempts,
                              paused_for=round(max(0.0, self._queue.paused_until - now), 3))
        else:
            job.future.set_exception(SmppError(status, f"submit_sm to {job.fields['destination_addr']}"))

    # -- stopping ------------------------------------------------------------------------------
    async def stop(self) -> None:
        """Refuse new submits, let those in flight settle, answer what is being handed over, unbind."""
        if self._stopping:
            return
        self._stopping = True
        self._poke()
        timeout = self.settings.response_timeout
        self._fail_queue(_local("STOPPING", "the client stopped before sending it"))
        links = list(self._current.values())
        await self._until(lambda: all(link.session.in_flight == 0 for link in links), timeout)
        answering = [task for link in links for task in link.answering]
        if answering:
            await asyncio.wait(answering, timeout=timeout)
        await asyncio.gather(*(link.unbind() for link in links), return_exceptions=True)
        for keeper in self._keepers:
            keeper.cancel()
        for watcher in list(self._watchers):
            watcher.cancel()
        await asyncio.gather(*self._keepers, *self._watchers, return_exceptions=True)
        self._log.info("smpp.stopped")
