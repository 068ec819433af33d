"""Our test SMSC: an asyncio SMPP 3.4 server on gateway.smpp.pdu (smpplib's codec), with faults.

Rules:
- It listens on 127.0.0.1 by default and records everything: binds, submits (accepted or not,
  with their decoded fields and the message_id answered), what was delivered and acknowledged.
- Faults are switches a test flips: throttle_for, throttle_next, drop_links, refuse_connections_for,
  slow_responses, answer_submits_with, ignore_enquire_link, send_garbage, reject_bind, and
  deliver_on_bind (bind_resp and a burst of deliver_sm in ONE write, as loaded SMSCs do).
- `one_bind=True` is an SMSC that allows one bind per system_id (per direction: a transceiver
  holds both, a transmitter and a receiver one each): a second is answered ESME_RALYBND (0x05).
  Every bind attempt, taken or refused, is in `bind_log`.
- Waits end: every helper that waits takes a timeout; the only sleeps are injected delays.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.smpp.pdu import (
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVPASWD,
    ESME_ROK,
    ESME_RTHROTTLED,
    BadPdu,
    Framer,
    Pdu,
    encode,
    generic_nack,
    request,
    response,
)
from gateway.smpp.session import BIND_OK, BIND_SENT, CONNECTED, Session

ESME_RALYBND = 0x05  # "ESME already in bound state" (SMPP 3.4, 5.1.3)
MESSAGE_STATES = {"ENROUTE": 1, "DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5,
                  "ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8}


def _deliver_fields(source: str, dest: str, short_message: bytes, esm_class: int = 0, data_coding: int = 0,
                    tlvs: dict | None = None, source_ton: int = 1, source_npi: int = 1, dest_ton: int = 1,
                    dest_npi: int = 1) -> dict[str, Any]:
    """deliver_sm's mandatory fields from deliver()'s keyword arguments (tlvs travel apart)."""
    return dict(source_addr=source, source_addr_ton=source_ton, source_addr_npi=source_npi,
                destination_addr=dest, dest_addr_ton=dest_ton, dest_addr_npi=dest_npi,
                esm_class=esm_class, data_coding=data_coding, short_message=short_message)


@dataclass(frozen=True)
class ReceivedSubmit:
    """A submit_sm as the SMSC got it, and how it answered."""

    sequence: int
    fields: dict[str, Any]
    tlvs: dict[str, Any]
    status: int
    message_id: str
    system_id: str

    @property
    def short_message(self) -> bytes:
        return self.fields["short_message"]

    @property
    def source_addr(self) -> str:
        return self.fields["source_addr"]

    @property
    def destination_addr(self) -> str:
        return self.fields["destination_addr"]

    @property
    def accepted(self) -> bool:
        return self.status == ESME_ROK


@dataclass(frozen=True)
class BindAttempt:
    """One bind request as the SMSC answered it."""

    at: float  # the event loop's time
    system_id: str
    bind: str  # transceiver | transmitter | receiver
    peer: tuple  # the ESME's (host, port)
    status: int

    @property
    def taken(self) -> bool:
        return self.status == ESME_ROK


DIRECTIONS = {"transceiver": frozenset({"tx", "rx"}), "transmitter": frozenset({"tx"}), "receiver": frozenset({"rx"})}


@dataclass(eq=False)
class SmscSession:
    """One ESME connection as the SMSC sees it."""

    smsc: TestSmsc
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    bind: str | None = None
    system_id: str = ""
    in_flight: int = 0  # submits received, not yet answered
    pending: dict[int, asyncio.Future] = field(default_factory=dict)
    session: Session = field(default_factory=lambda: Session("transceiver", 1))

    @property
    def receives(self) -> bool:
        return self.bind in ("transceiver", "receiver")

    def send(self, pdu: Pdu) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(pdu))

    async def request(self, command: str, timeout: float, tlvs: dict | None = None, **fields: Any) -> Pdu:
        """Send a request and wait for its response (a generic_nack counts)."""
        sequence = self.session.next_sequence()
        answer = asyncio.get_running_loop().create_future()
        self.pending[sequence] = answer
        self.send(request(command, sequence, tlvs, **fields))
        try:
            return await asyncio.wait_for(answer, timeout)
        finally:
            self.pending.pop(sequence, None)

    def close(self) -> None:
        self.writer.close()
        for answer in self.pending.values():
            if not answer.done():
                answer.set_exception(ConnectionError("link closed"))


class TestSmsc:
    """An SMSC for tests and benchmarks: binds, answers submits, delivers MO and receipts."""

    __test__ = False  # not a pytest test class

    def __init__(self, system_id: str, password: str, window: int = 50, id_format: str = "hex", one_bind: bool = False):
        if id_format not in ("hex", "dec"):
            raise ValueError("id_format: 'hex' or 'dec'")
        self.system_id, self.password, self.window, self.id_format = system_id, password, window, id_format
        self.one_bind = one_bind
        self.bind_log: list[BindAttempt] = []  # every bind request, taken or refused, in arrival order
        self.sessions: list[SmscSession] = []  # bound sessions
        self.submits: list[ReceivedSubmit] = []  # every submit_sm, accepted or not, in arrival order
        self.delivered: list[dict[str, Any]] = []  # deliver_sm kwargs that got ROK
        self.unacked: list[dict[str, Any]] = []  # deliver_sm kwargs that got no ROK (last deliver_many)
        self.counters: Counter[str] = Counter()
        self.max_in_flight = 0
        self._ids = itertools.count(0x1000)
        self._server: asyncio.Server | None = None
        self._connections: set[SmscSession] = set()
        self._changed = asyncio.Event()
        self._throttle_until = 0.0
        self._refuse_until = 0.0
        self._delay = 0.0
        self._ignore_enquire = False
        self._bind_status: int | None = None
        self._submit_status: int | None = None
        self._throttle_next = 0
        self._on_bind: list[dict[str, Any]] = []
        self.bursts: list[list[int | None]] = []  # deliver_sm_resp statuses of each deliver_on_bind burst
        self._bursting: set[asyncio.Task] = set()

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> TestSmsc:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, predicate, timeout: float = 5.0, what: str = "condition") -> None:
        """Wait until predicate() holds; TimeoutError naming `what` after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"TestSmsc: no {what} within {timeout}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    # -- faults --------------------------------------------------------------------------------
    def throttle_for(self, seconds: float) -> None:
        """Answer submit_sm with ESME_RTHROTTLED for `seconds` from now."""
        self._throttle_until = self._now() + seconds

    def throttle_next(self, count: int) -> None:
        """Answer the next `count` submit_sm with ESME_RTHROTTLED, whenever they come."""
        self._throttle_next = count

    def deliver_on_bind(self, messages: list[dict[str, Any]]) -> None:
        """On the next bind that receives, write these deliver_sm (deliver() kwargs) in the same
        write as the bind_resp; their statuses land in `bursts`, the messages in delivered/unacked."""
        self._on_bind.extend(messages)

    def refuse_connections_for(self, seconds: float) -> None:
        """Close new connections at once for `seconds` from now."""
        self._refuse_until = self._now() + seconds

    def drop_links(self) -> None:
        """Close every connection now, without unbind."""
        for conn in list(self._connections):
            conn.close()

    def slow_responses(self, delay: float) -> None:
        """Hold each submit_sm_resp back `delay` seconds (0 to stop)."""
        self._delay = delay

    def ignore_enquire_link(self, ignore: bool = True) -> None:
        self._ignore_enquire = ignore

    def answer_submits_with(self, status: int | None) -> None:
        """Answer every submit_sm with `status` (None: accept again)."""
        self._submit_status = status

    def reject_bind(self, status: int | None) -> None:
        """Answer binds with `status` (None: check the password again)."""
        self._bind_status = status

    def send_garbage(self, data: bytes) -> None:
        """Write raw bytes to every bound session."""
        for conn in self.sessions:
            conn.writer.write(data)

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    # -- serving -------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = SmscSession(self, reader, writer)
        if self._now() < self._refuse_until:
            self.counters["refused"] += 1
            writer.close()
            return
        self._connections.add(conn)
        self.counters["connections"] += 1
        framer = Framer()
        try:
            while data := await reader.read(65536):
                for item in framer.feed(data):
                    self._dispatch(conn, item)
        except (ConnectionError, OSError):
            pass
        finally:
            conn.close()
            self._connections.discard(conn)
            if conn in self.sessions:
                self.sessions.remove(conn)
            self.counters["disconnects"] += 1
            self._poke()

    def _dispatch(self, conn: SmscSession, item: Pdu | BadPdu) -> None:
        if isinstance(item, BadPdu):
            self.counters["bad_pdus"] += 1
            conn.send(generic_nack(item.sequence, item.status))
            return
        self.counters[item.command] += 1
        if item.is_response:
            answer = conn.pending.get(item.sequence)
            if answer is not None and not answer.done():
                answer.set_result(item)
        elif item.command.startswith("bind_"):
            self._bind(conn, item)
        elif conn.bind is None:
            conn.send(generic_nack(item.sequence, ESME_RINVBNDSTS))
        elif item.command == "enquire_link":
            if not self._ignore_enquire:
                conn.send(response(item))
        elif item.command == "unbind":
            conn.send(response(item))
            conn.close()
        elif item.command == "submit_sm":
            asyncio.ensure_future(self._submit(conn, item))
        else:
            conn.send(generic_nack(item.sequence, ESME_RINVCMDID))
        self._poke()

    def _bind(self, conn: SmscSession, pdu: Pdu) -> None:
        status = self._bind_status
        if status is None and (pdu.fields["system_id"], pdu.fields["password"]) != (self.system_id, self.password):
            status = ESME_RINVPASWD
        bind, system_id = pdu.command.removeprefix("bind_"), str(pdu.fields["system_id"])
        if status is None and self.one_bind and self._bound_already(system_id, bind):
            status = ESME_RALYBND
        self.bind_log.append(BindAttempt(self._now(), system_id, bind,
                                         tuple(conn.writer.get_extra_info("peername") or ()), status or ESME_ROK))
        answer = encode(response(pdu, status or ESME_ROK, system_id="TestSmsc"))
        if status:
            conn.writer.write(answer)
            self.counters["binds_refused"] += 1
            return
        conn.bind, conn.system_id = bind, system_id
        conn.session = Session(conn.bind, self.window)
        for event in (CONNECTED, BIND_SENT, BIND_OK):
            conn.session.handle(event)
        self.sessions.append(conn)
        self.counters["binds"] += 1
        burst = self._burst(conn) if conn.receives else []
        conn.writer.write(answer + b"".join(data for data, _ in burst))
        if burst:
            task = asyncio.ensure_future(self._burst_answered(burst))
            self._bursting.add(task)
            task.add_done_callback(self._bursting.discard)

    def _bound_already(self, system_id: str, bind: str) -> bool:
        """A session of `system_id` already bound in one of the directions `bind` asks for."""
        return any(s.system_id == system_id and DIRECTIONS[s.bind or ""] & DIRECTIONS[bind]
                   for s in self.sessions if s.bind)

    def _burst(self, conn: SmscSession) -> list[tuple[bytes, tuple[dict[str, Any], asyncio.Future]]]:
        """The deliver_sm waiting for this bind, encoded, each with the future of its answer."""
        messages, self._on_bind = self._on_bind, []
        burst = []
        for kwargs in messages:
            sequence = conn.session.next_sequence()
            answer = conn.pending[sequence] = asyncio.get_running_loop().create_future()
            burst.append((encode(request("deliver_sm", sequence, kwargs.get("tlvs"), **_deliver_fields(**kwargs))),
                          (kwargs, answer)))
        return burst

    async def _burst_answered(self, burst, timeout: float = 10.0) -> None:
        statuses: list[int | None] = []
        for _, (kwargs, answer) in burst:
            try:
                status = (await asyncio.wait_for(answer, timeout)).status
            except (TimeoutError, ConnectionError):
                status = None
            statuses.append(status)
            (self.delivered if status == ESME_ROK else self.unacked).append(kwargs)
        self.bursts.append(statuses)
        self._poke()

    async def _submit(self, conn: SmscSession, pdu: Pdu) -> None:
        conn.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, conn.in_flight)
        if conn.in_flight > self.window:
            self.counters["window_exceeded"] += 1
        try:
            if self._delay:
                await asyncio.sleep(self._delay)
            status = self._submit_answer()
            message_id = self._new_id() if status == ESME_ROK else ""
            self.submits.append(ReceivedSubmit(pdu.sequence, dict(pdu.fields), dict(pdu.tlvs), status,
                                               message_id, conn.system_id))
            conn.send(response(pdu, status, message_id=message_id))
        finally:
            conn.in_flight -= 1
            self._poke()

    def _submit_answer(self) -> int:
        if self._throttle_next > 0:
            self._throttle_next -= 1
            return ESME_RTHROTTLED
        if self._now() < self._throttle_until:
            return ESME_RTHROTTLED
        return self._submit_status or ESME_ROK

    def _new_id(self) -> str:
        number = next(self._ids)
        return f"{number:x}" if self.id_format == "hex" else str(number)

    # -- what tests read -----------------------------------------------------------------------
    @property
    def binds_taken(self) -> list[BindAttempt]:
        return [b for b in self.bind_log if b.taken]

    @property
    def accepted(self) -> list[ReceivedSubmit]:
        return [s for s in self.submits if s.accepted]

    async def wait_for_submits(self, n: int, timeout: float = 5.0) -> list[ReceivedSubmit]:
        """The accepted submits, once there are at least `n`."""
        await self.until(lambda: len(self.accepted) >= n, timeout, f"{n} accepted submit_sm")
        return self.accepted

    async def wait_for_sessions(self, n: int = 1, timeout: float = 5.0) -> list[SmscSession]:
        await self.until(lambda: len(self.sessions) >= n, timeout, f"{n} bound sessions")
        return self.sessions

    # -- sending to the ESME -------------------------------------------------------------------
    async def _receiver(self, timeout: float) -> SmscSession:
        await self.until(lambda: any(s.receives for s in self.sessions), timeout, "receiving bind")
        return next(s for s in self.sessions if s.receives)

    async def deliver(self, source: str, dest: str, short_message: bytes, esm_class: int = 0,
                      data_coding: int = 0, tlvs: dict | None = None, source_ton: int = 1,
                      source_npi: int = 1, dest_ton: int = 1, dest_npi: int = 1,
                      timeout: float = 5.0) -> int:
        """Send one deliver_sm to a receiving bind; its deliver_sm_resp command_status."""
        conn = await self._receiver(timeout)
        fields = _deliver_fields(source, dest, short_message, esm_class, data_coding, source_ton=source_ton,
                                 source_npi=source_npi, dest_ton=dest_ton, dest_npi=dest_npi)
        answer = await conn.request("deliver_sm", timeout, tlvs, **fields)
        return answer.status

    async def deliver_many(self, messages: list[dict[str, Any]], window: int | None = None,
                           timeout: float = 5.0) -> list[int | None]:
        """Deliver each kwargs dict, up to `window` in flight; statuses (None: no answer).

        Those answered ROK are appended to `delivered`; the rest become `unacked`."""
        slots = asyncio.Semaphore(window or self.window)
        self.unacked = []

        async def one(kwargs: dict[str, Any]) -> int | None:
            async with slots:
                try:
                    status = await self.deliver(**kwargs, timeout=timeout)
                except (TimeoutError, ConnectionError):
                    status = None
            (self.delivered if status == ESME_ROK else self.unacked).append(kwargs)
            return status

        return list(await asyncio.gather(*(one(m) for m in messages)))

    async def resend_unacked(self, window: int | None = None, timeout: float = 5.0) -> list[int | None]:
        """deliver_many again over what was not acknowledged with ROK."""
        return await self.deliver_many(list(self.unacked), window, timeout)

    async def send_receipt(self, message_id: str, stat: str = "DELIVRD", err: str = "000",
                           base: str = "hex", timeout: float = 5.0) -> int:
        """A delivery receipt for a submit we answered with `message_id`, its id written in `base`."""
        submit = next((s for s in self.submits if s.message_id == message_id), None)
        if submit is None:
            raise ValueError(f"TestSmsc: no submit_sm was answered with message_id {message_id!r}")
        number = int(message_id, 16 if self.id_format == "hex" else 10)
        text_id = f"{number:x}" if base == "hex" else str(number)
        stamp = datetime.now().strftime("%y%m%d%H%M")
        text = (f"id:{text_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} submit date:{stamp} "
                f"done date:{stamp} stat:{stat} err:{err} text:{submit.short_message[:20].decode('latin-1')}")
        return await self.deliver(
            submit.destination_addr, submit.source_addr, text.encode("ascii", "replace"), esm_class=0x04,
            tlvs={"receipted_message_id": message_id, "message_state": MESSAGE_STATES[stat]},
            source_ton=submit.fields["dest_addr_ton"], source_npi=submit.fields["dest_addr_npi"],
            dest_ton=submit.fields["source_addr_ton"], dest_npi=submit.fields["source_addr_npi"],
            timeout=timeout)

    async def enquire_link(self, timeout: float = 5.0) -> list[int]:
        """An enquire_link to every bound session; their statuses."""
        answers = await asyncio.gather(*(s.request("enquire_link", timeout) for s in self.sessions))
        return [a.status for a in answers]

    async def unbind_all(self, timeout: float = 5.0) -> list[int]:
        """An unbind to every bound session; their unbind_resp statuses."""
        answers = await asyncio.gather(*(s.request("unbind", timeout) for s in list(self.sessions)))
        for conn in list(self.sessions):
            conn.close()
        return [a.status for a in answers]
