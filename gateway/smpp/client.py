"""The asyncio pump around session.py and pdu.py: one SmppClient per SMSC account.

Rules:
- Protocol decisions live in session.py (state, window, matching) and pdu.py (bytes); this
  module moves bytes, keeps time, and keeps the API's promises.
- Ack after the callback: a deliver_sm/data_sm is answered with the status `on_incoming` returns,
  only once it returned; if it raises, ESME_RX_T_APPN (temporary: the SMSC retries).
- Which submit leaves when is queue.SubmitQueue's decision (arrival order, pauses of the whole
  client after ESME_RTHROTTLED / ESME_RMSGQFUL / ESME_RSYSERR, capped at throttle_max_pause, a
  probe after each pause, the rate).
- What it answered and was answered is counted in plain ints (`Tally`, `metrics()`), for whoever
  exports them; nothing here knows a metrics library.
- The bind password never leaves: not in the settings' repr, not in a log line.
- Every wait ends: submit waits at most submit_wait for a bound link, each request at most
  response_timeout for its answer; stop() is bounded by a few response_timeouts.
- One link = one TCP connection = one bind: one for a transceiver, two for transmitter_receiver;
  a link (link.py) carries its bind from connect to unbind, this module keeps the links up.
"""
from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Literal, cast

import structlog

from gateway.smpp.link import _Link
from gateway.smpp.pdu import (
    ESME_ROK,
    ESME_RSYSERR,
    ESME_RX_T_APPN,
    TEMPORARY_STATUSES,
    Pdu,
    PduError,
    request,
    status_name,
    validate,
)
from gateway.smpp.queue import DONE, RETRY, Queued, SubmitQueue
from gateway.smpp.session import BINDING, BOUND, CLOSED, OPEN, UNBINDING

log = structlog.get_logger("gateway.smpp")

@dataclass(frozen=True)
class SmppSettings:
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)
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
    throttle_max_pause: float = 1.5  # the cap of that pause: 20 throttles in a row pass in ~30 s
    submit_retries: int = 5  # bounded resends of one PDU on 0x58 / 0x14 / 0x08
    submit_wait: float = 30  # how long submit() waits for a bound link

    def __post_init__(self) -> None:
        if self.bind not in ("transceiver", "transmitter_receiver"):
            raise ValueError(f"bind: 'transceiver' or 'transmitter_receiver', got {self.bind!r}")
        for name in ("window", "enquire_link_seconds", "response_timeout", "reconnect_min", "throttle_pause",
                     "throttle_max_pause"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)!r}")
        if self.reconnect_max < self.reconnect_min or self.rate_limit < 0 or self.submit_retries < 0:
            raise ValueError("reconnect_max >= reconnect_min, rate_limit >= 0 and submit_retries >= 0")
        validate(request("bind_transceiver", 1, system_id=self.system_id, password=self.password,
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


def _submit_fields(part: SubmitPart) -> dict[str, object]:
    return {
        "source_addr": part.source_addr, "source_addr_ton": part.source_ton,
        "source_addr_npi": part.source_npi, "destination_addr": part.dest_addr,
        "dest_addr_ton": part.dest_ton, "dest_addr_npi": part.dest_npi, "esm_class": part.esm_class,
        "data_coding": part.data_coding, "short_message": part.short_message,
        "registered_delivery": part.registered_delivery,
    }


def _incoming(pdu: Pdu) -> Incoming:
    f = pdu.fields  # decoded by pdu.py over smpplib's defaults: strings str, integers int, octets bytes
    return Incoming(
        command=pdu.command, source_addr=cast(str, f["source_addr"]), source_ton=cast(int, f["source_addr_ton"]),
        source_npi=cast(int, f["source_addr_npi"]), dest_addr=cast(str, f["destination_addr"]),
        dest_ton=cast(int, f["dest_addr_ton"]), dest_npi=cast(int, f["dest_addr_npi"]),
        esm_class=cast(int, f["esm_class"]), data_coding=cast(int, f["data_coding"]),
        short_message=cast(bytes, f.get("short_message", b"")), tlvs=MappingProxyType(dict(pdu.tlvs)),
        sequence=pdu.sequence,
    )


def backoff(attempt: int, low: float, high: float) -> float:
    """Jittered exponential delay before reconnect attempt `attempt` (0-based)."""
    delay = min(high, low * 2 ** min(attempt, 30))
    return random.uniform(delay / 2, delay)


THROTTLES = frozenset({0x58, 0x14})  # ESME_RTHROTTLED, ESME_RMSGQFUL: "slow down"
_STATE_ORDER = (BINDING, OPEN, UNBINDING)  # what a client with a bind down reports, first found


@dataclass
class Tally:
    """What one client answered and was answered since it started: plain counts by status name."""

    deliver_sm_resp: Counter[str] = field(default_factory=Counter)
    submit_sm_resp: Counter[str] = field(default_factory=Counter)
    throttled: int = 0  # submit_sm answered ESME_RTHROTTLED or ESME_RMSGQFUL

    def submit_answered(self, status: int) -> None:
        self.submit_sm_resp[status_name(status)] += 1
        self.throttled += status in THROTTLES


@dataclass(frozen=True, eq=False)
class _Job:
    """One submit_sm and the future its caller awaits."""

    fields: dict[str, object]
    tlvs: dict[str, object]
    future: asyncio.Future


def _job(queued: Queued) -> _Job:
    """The _Job a queued submit carries: the client pushes nothing else."""
    return cast(_Job, queued.token)


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
        self._queue = SubmitQueue(settings.throttle_pause, settings.submit_retries, settings.rate_limit,
                                  settings.throttle_max_pause)
        self.last_error: str | None = None  # the latest bind or link error, e.g. "ESME_RINVPASWD"
        self.tally = Tally()

    # -- state ---------------------------------------------------------------------------------
    @property
    def is_bound(self) -> bool:
        """Every bind of this client is up."""
        return all(bind in self._links for bind in self.settings.binds)

    @property
    def state(self) -> str:
        """"bound" when every bind is up, else the state of a bind that is not (binding, open, ...)."""
        if self.is_bound:
            return BOUND
        states = {link.session.state for link in self._current.values()}
        return next((state for state in _STATE_ORDER if state in states), CLOSED)

    def metrics(self) -> dict:
        """Bind state, window and counts, as plain values for an exporter."""
        return {
            "state": self.state, "window": self.settings.window,
            "in_flight": sum(link.session.in_flight for link in self._links.values()),
            "deliver_sm_resp": dict(self.tally.deliver_sm_resp),
            "submit_sm_resp": dict(self.tally.submit_sm_resp), "throttled": self.tally.throttled,
        }

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
            await _wait_set(self._changed, left)
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
            link = self._current[bind] = _Link(self, bind, _local)
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
            if not _job(queued).future.done():
                _job(queued).future.set_exception(error)

    # -- incoming ------------------------------------------------------------------------------
    async def _hand_over(self, pdu: Pdu) -> int:
        """The callback's status for deliver_sm/data_sm `pdu`; ESME_RX_T_APPN if it raised or answered nonsense."""
        incoming = _incoming(pdu)
        try:
            status = await self._on_incoming(incoming)
        except Exception:
            self._log.exception("smpp.incoming_failed", command=incoming.command, source=incoming.source_addr)
            return ESME_RX_T_APPN
        if not isinstance(status, int) or not 0 <= status <= 0xFFFFFFFF:
            self._log.error("smpp.incoming_bad_status", status=repr(status))
            return ESME_RX_T_APPN
        return status

    def _answered(self, pdu: Pdu, status: int) -> None:
        """Count the deliver_sm_resp / data_sm_resp status about to be written."""
        self.tally.deliver_sm_resp[status_name(status)] += 1

    # -- submitting ----------------------------------------------------------------------------
    async def submit(self, part: SubmitPart) -> str:
        """Send one submit_sm; the message_id of its submit_sm_resp, or SmppError."""
        if self._stopping:
            raise _local("STOPPING", "the client is stopping")
        fields, tlvs = _submit_fields(part), dict(part.tlvs)
        try:
            validate(request("submit_sm", 1, tlvs, **fields))
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
            await _wait_set(changed, delay)

    def _send_delay(self, link: _Link) -> float | None:
        """0 to send now, seconds to wait, or None to wait for a change."""
        self._queue.discard(lambda queued: _job(queued).future.done())
        return self._queue.delay(asyncio.get_running_loop().time(), link.session)

    def _send_next(self, link: _Link) -> None:
        queued = self._queue.pop(asyncio.get_running_loop().time())
        job = _job(queued)
        link.request("submit_sm", partial(self._settle, queued), job.tlvs, **job.fields)

    def _settle(self, queued: Queued, pdu: Pdu | None, error: SmppError | None) -> None:
        """A submit_sm's fate: done, resent in its place after a pause, or failed."""
        self._poke()
        job = _job(queued)
        if job.future.done():
            return
        if error is not None:
            job.future.set_exception(error)
            return
        assert pdu is not None  # a request's callback gets its answer or an error
        status = pdu.status or (ESME_RSYSERR if pdu.command == "generic_nack" else ESME_ROK)
        self.tally.submit_answered(status)
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
    async def stop(self, grace: float | None = None) -> None:
        """Refuse new submits, let those in flight settle, answer what is being handed over, unbind.

        `grace` bounds the whole of it (a shutdown has a budget); each wait is also bounded by
        response_timeout. Links still up when it is spent are closed without an unbind."""
        if self._stopping:
            return
        self._stopping = True
        self._poke()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (grace if grace is not None else 3 * self.settings.response_timeout)

        def left() -> float:
            return max(0.0, min(self.settings.response_timeout, deadline - loop.time()))

        self._fail_queue(_local("STOPPING", "the client stopped before sending it"))
        links = list(self._current.values())
        await self._until(lambda: all(link.session.in_flight == 0 for link in links), left())
        answering = [task for link in links for task in link.answering]
        if answering:
            await asyncio.wait(answering, timeout=max(left(), 0.001))
        unbinds = asyncio.gather(*(link.unbind() for link in links), return_exceptions=True)
        try:
            async with asyncio.timeout(max(left(), 0.05)):
                await unbinds
        except TimeoutError:
            for link in links:
                link.close("shutdown budget spent")
        for keeper in self._keepers:
            keeper.cancel()
        for watcher in list(self._watchers):
            watcher.cancel()
        await asyncio.gather(*self._keepers, *self._watchers, return_exceptions=True)
        self._log.info("smpp.stopped")


async def _wait_set(event: asyncio.Event, timeout: float | None) -> None:
    """Wait up to `timeout` for `event`. Not asyncio.wait_for: on Python 3.11 it loses a cancel that
    lands as the event is set (cpython gh-86296), and the send loop would outlive its link."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
