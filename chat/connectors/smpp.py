"""SMPP connectors in the app: one client per connector, inbound deliver_sm into the store.

Rules: deliver_sm_resp is ROK only after what it carried is committed (invariant 1): a whole
message, or one part of a long one (parts are stored as they arrive, so a restart between
parts loses nothing). A store failure answers ESME_RX_T_APPN so the SMSC retries; content we
can never take (bad UDH, a number not ours) gets a permanent status. A resend of a message
already stored (the SMSC never saw our ROK) is recognised by its fingerprint and stored once.
Every decodable message is storable (invariant 10): its text, whole or assembled, goes through
gateway.text.storable, and when the stored text is not exactly what the bytes say (a U+FFFD put
in by the decoder or by storable) the user data is kept as `InboundSms.original`; such a message
is never answered "retry later". What became of each deliver_sm is counted for `metrics()`.

One bind per connector across the nodes (DESIGN.md, "Many nodes"): a connector binds only on
the node that holds its lease (chat.store.lease; always this node on SQLite). The others are on
standby: they say so once at info, try the lease every heartbeat, take webhooks and agents, and
report the connector as "standby". A term lasts from taking the lease to losing it: a fresh
client binds and the part janitor runs; a lost lease ends the term at once (`leader` turns False
first, then the client unbinds within LOST_GRACE). Only the leader submits: the sender answers
a temporary STANDBY error elsewhere, so the outbox tries again later.
"""
from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from datetime import timedelta
from functools import partial
from typing import cast

import structlog
from aiohttp import web

from chat.config import SmppConnector
from chat.domain.inbound import Fingerprint, Stored, store_inbound
from chat.domain.parts import forget_delivered, keep_part, mark_delivered, overdue_keys, pending_parts
from chat.domain.statuses import report_unit
from chat.store import utcnow
from chat.store.commit import GroupCommit, Unit
from chat.store.context import COMMIT, CONFIG, DB
from chat.store.lease import Lease, hold, lease
from chat.workers.presence import PRESENCE, Presence
from chat.workers.routing import ROUTER, Router
from chat.workers.running import DIRECTORY, RunningConfig
from gateway import InboundSms, OutboundSms, SendError, SendResult, StatusReport, count_segments
from gateway.messages import FAILED, UNDELIVERED
from gateway.smpp.address import AddressError, normalize_address
from gateway.smpp.client import Incoming, SmppClient, SmppSettings
from gateway.smpp.concat import BadFragment, Fragment, assemble, concat_key, fragment_of
from gateway.smpp.receipts import BadReceipt, canonical_id, is_receipt, parse_receipt, receipt_status
from gateway.smpp.sender import SmppSender
from gateway.smpp.text import decode_short_message
from gateway.text import storable

log = structlog.get_logger()
ROK, ESME_RINVDSTADR, ESME_RX_T_APPN, ESME_RX_P_APPN = 0x00, 0x0B, 0x64, 0x65
STANDBY = "standby"  # the state of a connector whose bind another node holds
LOST_GRACE = 0.5  # seconds a lost lease leaves the client to unbind: well inside the server's lease_seconds margin
INBOUND_OUTCOMES = ("stored", "duplicate", "refused", "failed")
_REPLACEMENT = "\ufffd"


class SmppConnection:
    """One configured SMPP connector: its lease, its client while it holds it, its inbound handler and janitor."""

    def __init__(self, cfg: SmppConnector, *, running: RunningConfig, commit: GroupCommit, router: Router, presence: Presence,
                 lease: Lease, heartbeat: float):
        self.cfg, self.running, self.commit, self.router, self.presence = cfg, running, commit, router, presence
        self.lease, self.heartbeat = lease, heartbeat
        self.client = SmppClient(cfg.name, settings(cfg), self.on_incoming)
        self.sender = LeaderSender(self)
        self._term_sender = self._submitter()
        self._leader = False
        self._holding: asyncio.Task | None = None
        self._tasks: list[asyncio.Task] = []
        self.inbound: Counter[str] = Counter(dict.fromkeys(INBOUND_OUTCOMES, 0))

    @property
    def leader(self) -> bool:
        """This node holds the connector's lease: it binds, and only it submits."""
        return self._leader

    def metrics(self) -> dict:
        """The bind's state ("standby" where another node holds it), window and answers, and what became of each MO."""
        figures = self.client.metrics() | {"inbound": dict(self.inbound)}
        return figures if self._leader else figures | {"state": STANDBY}

    def start(self) -> None:
        self._holding = asyncio.create_task(hold(self.lease, self.heartbeat, self._lease_changed),
                                            name=f"smpp-lease-{self.cfg.name}")

    async def stop(self, grace: float | None = None) -> None:
        """Stop trying the lease, end the term (within `grace` seconds, if given), then give the lease up."""
        if self._holding is not None:
            self._holding.cancel()
            await asyncio.gather(self._holding, return_exceptions=True)
        await self._end_term(grace)
        await self.lease.release()

    async def send(self, sms: OutboundSms) -> SendResult:
        """Submit `sms` on this term's client."""
        return await self._term_sender.send(sms)

    async def _lease_changed(self, held: bool) -> None:
        if held:
            self._begin_term()
            return
        if self._leader:
            log.warning("smpp.lease_lost", connector=self.cfg.name)
            await self._end_term(LOST_GRACE)
        log.info("smpp.standby", connector=self.cfg.name,
                 hint="another node holds this connector's bind (or its lease cannot be reached: see lease.unavailable)")

    def _begin_term(self) -> None:
        """Lease taken: a fresh client binds, the janitor runs."""
        previous = self.client
        self.client = SmppClient(self.cfg.name, settings(self.cfg), self.on_incoming)
        self.client.tally, self.client.last_error = previous.tally, previous.last_error  # counts run across terms
        self._term_sender = self._submitter()
        self._leader = True
        log.info("smpp.lease_taken", connector=self.cfg.name)
        self._tasks = [asyncio.create_task(self.client.run(), name=f"smpp-{self.cfg.name}"),
                       asyncio.create_task(self._expire_parts(), name=f"smpp-parts-{self.cfg.name}")]

    async def _end_term(self, grace: float | None) -> None:
        """Refuse submits at once, then stop the client (within `grace` seconds) and the janitor."""
        self._leader = False
        if not self._tasks:
            return
        await self.client.stop(grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def _submitter(self) -> SmppSender:
        cfg = self.cfg
        return SmppSender(self.client, concat=cfg.concat, max_parts=cfg.max_parts, id_base=cfg.submit_id_base)

    async def on_incoming(self, inc: Incoming) -> int:
        """The deliver_sm_resp status for one deliver_sm / data_sm."""
        if is_receipt(inc.esm_class):
            return await self._answer_receipt(inc)
        try:
            status, outcome = await self._take(inc)
        except (BadFragment, AddressError) as err:
            log.warning("smpp.refused", connector=self.cfg.name, source=inc.source_addr, error=str(err))
            status, outcome = ESME_RX_P_APPN, "refused"
        except Exception:  # noqa: BLE001 - the SMSC will retry
            log.exception("smpp.store_failed", connector=self.cfg.name)
            status, outcome = ESME_RX_T_APPN, "failed"
        self.inbound[outcome] += 1
        return status

    async def _answer_receipt(self, inc: Incoming) -> int:
        """The status for a delivery receipt: ROK once its status is committed."""
        try:
            await self._receipt(inc)
        except (BadReceipt, AddressError) as err:
            log.warning("smpp.refused", connector=self.cfg.name, source=inc.source_addr, error=str(err))
            return ESME_RX_P_APPN
        except Exception:  # noqa: BLE001 - the SMSC will retry
            log.exception("smpp.store_failed", connector=self.cfg.name)
            return ESME_RX_T_APPN
        return ROK

    async def _take(self, inc: Incoming) -> tuple[int, str]:
        """(status, outcome) for one MO that is not a receipt."""
        sender = normalize_address(inc.source_addr, inc.source_ton, inc.source_npi, self.cfg.country)
        recipient = normalize_address(inc.dest_addr, inc.dest_ton, inc.dest_npi, self.cfg.country)
        if recipient not in self.running.current.sms_numbers:
            log.warning("smpp.not_our_number", connector=self.cfg.name, dest=recipient)
            return ESME_RINVDSTADR, "refused"
        fragment = fragment_of(inc.esm_class, inc.data_coding, inc.short_message, inc.tlvs)
        unit: Unit[Stored | None]
        if fragment.total <= 1:  # decoded and fingerprinted here: the writer is the serial stage
            unit = partial(self._store_whole, whole=self._whole(fragment, sender, recipient))
        else:
            unit = partial(self._store_part, fragment=fragment, sender=sender, recipient=recipient)
        stored = await self.commit.run(unit)
        if stored is not None:
            self.router.dispatch(stored)
            await self.router.caught_up()
        return ROK, "duplicate" if stored is not None and stored.duplicate else "stored"

    async def _receipt(self, inc: Incoming) -> None:
        raw = inc.short_message or cast(bytes, inc.tlvs.get("message_payload")) or b""  # an octet-string TLV
        receipt = parse_receipt(decode_short_message(inc.data_coding, raw, self.cfg.default_alphabet), inc.tlvs)
        status = receipt_status(receipt.stat)
        error = f"{receipt.stat} (err {receipt.err})" if status in (FAILED, UNDELIVERED) else None
        report = StatusReport(self.cfg.name, canonical_id(receipt.message_id, self.cfg.receipt_id_base), status, error)
        await self.router.push_status(await self.commit.run(report_unit(report)))

    def _whole(self, fragment: Fragment, sender: str, recipient: str) -> tuple:
        """A one-part message as _inbound takes it."""
        text, original = storable_text(
            decode_short_message(fragment.data_coding, fragment.payload, self.cfg.default_alphabet), fragment.payload)
        digest = fingerprint(sender, recipient, fragment.data_coding.to_bytes(2, "big"), fragment.payload)
        return sender, recipient, text, digest, False, count_segments(text), original

    async def _store_whole(self, conn, whole: tuple) -> Stored:
        return await self._inbound(conn, *whole)

    async def _store_part(self, conn, fragment: Fragment, sender: str, recipient: str) -> Stored | None:
        key = concat_key(sender, recipient, fragment)
        if not await keep_part(conn, self.cfg.name, key, fragment, sender, recipient):
            return Stored(duplicate=True)
        rows = await pending_parts(conn, self.cfg.name, key)
        if len({r.seq for r in rows}) < fragment.total:
            return None
        return await self._complete(conn, key, rows)

    async def _complete(self, conn, key: str, rows) -> Stored:
        fragments = [Fragment(r.ref, r.width, r.total, r.seq, r.data_coding, r.payload) for r in rows]
        text, complete = assemble(fragments, self.cfg.default_alphabet)
        text, original = storable_text(text, b"".join(r.payload for r in rows))
        await mark_delivered(conn, [r.id for r in rows])
        digest = fingerprint(key.encode(), *(r.payload for r in rows))
        return await self._inbound(conn, rows[0].sender, rows[0].recipient, text, digest, incomplete=not complete,
                                   original=original)

    async def _inbound(self, conn, sender, recipient, text, digest, incomplete, counted=None,
                       original=None) -> Stored:
        sms = InboundSms(self.cfg.name, "", sender, recipient, text, original=original)
        return await store_inbound(conn, sms, self.running.current, self.presence,
                                   Fingerprint(digest, self.cfg.dedupe_window), incomplete=incomplete,
                                   counted=counted)

    async def _expire_parts(self) -> None:
        """Deliver long messages whose missing parts never came, marked incomplete."""
        interval = max(0.5, min(30.0, self.cfg.concat_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                for stored in await self.commit.run(self._expire):
                    self.router.dispatch(stored)
            except Exception:  # noqa: BLE001 - tried again next round
                log.exception("smpp.expire_failed", connector=self.cfg.name)

    async def _expire(self, conn) -> list[Stored]:
        now = utcnow()
        keys = await overdue_keys(conn, self.cfg.name, now - timedelta(seconds=self.cfg.concat_timeout))
        out = [await self._complete(conn, key, await pending_parts(conn, self.cfg.name, key)) for key in keys]
        await forget_delivered(conn, self.cfg.name, now - timedelta(seconds=max(self.cfg.dedupe_window, self.cfg.concat_timeout)))
        return out


class LeaderSender:
    """A connector's sender for the outbox: it submits on the leader, and refuses (temporarily) elsewhere."""

    def __init__(self, link: SmppConnection):
        self.link = link

    async def send(self, sms: OutboundSms) -> SendResult:
        if not self.link.leader:
            raise SendError(f"connector {self.link.cfg.name!r} is bound by another node; this one is on standby",
                            temporary=True, code="STANDBY")
        return await self.link.send(sms)

    async def close(self) -> None:
        """The client's life is its connector's, not the sender's."""


def storable_text(text: str, payload: bytes) -> tuple[str, bytes | None]:
    """`text` as every store holds it, and `payload` if that text is not exactly what the bytes say."""
    text, _ = storable(text)
    return text, payload if _REPLACEMENT in text else None


def fingerprint(*parts: bytes | str) -> str:
    """A digest of a message's content and addresses."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(4, "big") + data)
    return digest.hexdigest()


def settings(cfg: SmppConnector) -> SmppSettings:
    """Client settings from a connector's configuration."""
    return SmppSettings(
        host=cfg.host, port=cfg.port, system_id=cfg.system_id, password=cfg.password.get_secret_value(),
        system_type=cfg.system_type, address_range=cfg.address_range, bind=cfg.bind, window=cfg.window,
        enquire_link_seconds=cfg.enquire_link_seconds, response_timeout=cfg.response_timeout,
        reconnect_min=cfg.reconnect_min, reconnect_max=cfg.reconnect_max, rate_limit=cfg.rate_limit,
        throttle_pause=cfg.throttle_pause, throttle_max_pause=cfg.throttle_max_pause,
        submit_retries=cfg.submit_retries,
    )


def smpp_link(app: web.Application, cfg: SmppConnector) -> SmppConnection:
    """The link of an SMPP connector on this node: it binds while it holds the connector's lease (chat.connectors.live
    starts and stops it)."""
    cluster = app[CONFIG].cluster
    return SmppConnection(cfg, running=app[DIRECTORY], commit=app[COMMIT], router=app[ROUTER], presence=app[PRESENCE],
                          lease=lease(app[DB], f"smpp:{cfg.name}", heartbeat_seconds=cluster.heartbeat_seconds,
                                      lease_seconds=cluster.lease_seconds, node=cluster.node_name),
                          heartbeat=cluster.heartbeat_seconds)
