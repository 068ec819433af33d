"""Delivery statuses of outbound messages (units of work), from status callbacks and SMPP receipts.

Rules: a status only moves forward (queued → sent → final); a message of several parts is
delivered when every part is and failed when any part fails. A report for a provider id we do
not know yet (it can beat the send's own answer) is kept and applied when the id arrives; one
whose id never arrives is deleted `unknown_status_hours` after it came, by a sweep that runs
every few minutes (`setup`; on every node at once is harmless: the delete is by age).
A report parked while the send naming its id was being recorded in another transaction (on
another node, or in a batch beside its own) sees no id, and that send sees no parked report:
`apply_stranded` finds such reports (parked, and their id known now) and applies them; the
receipts sweep runs it every few seconds. Whoever deletes a parked report applies it, once.
"""
from __future__ import annotations

from datetime import datetime
from functools import partial

import sqlalchemy as sa
import structlog

from chat.domain.conversations import iso
from chat.domain.optouts import record_opt_out
from chat.store import utcnow
from chat.store.tables import conversations, messages, pending_reports, provider_refs
from gateway import StatusReport
from gateway.messages import DELIVERED, FAILED, QUEUED, SENT, UNDELIVERED

log = structlog.get_logger()
RANK = {QUEUED: 0, SENT: 1, DELIVERED: 2, UNDELIVERED: 2, FAILED: 2}
EXPIRE_BATCH = 1000  # rows deleted per transaction: a backlog never holds the writer for long
SWEEP_SECONDS = 300  # the longest pause between sweeps (shorter for a shorter expiry)


def report_unit(report: StatusReport):
    """A group-commit unit that applies `report`."""
    return partial(store_report, report=report)


# Statements on the hot path, built once (the store plans them: chat.store.fast).
# (bind names differ from column names: an UPDATE reserves those)
REF = sa.and_(provider_refs.c.connector == sa.bindparam("ref_connector"),
              provider_refs.c.provider_id == sa.bindparam("ref_id"))
MESSAGE_OF_REF = sa.select(provider_refs.c.message_id).where(REF)
SET_REF = provider_refs.update().where(REF).values(status=sa.bindparam("new_status"), error=sa.bindparam("new_error"))
ADD_REF = provider_refs.insert()
PARK_REPORT = pending_reports.insert()
PARTS = (sa.select(provider_refs.c.status, provider_refs.c.error)
         .where(provider_refs.c.message_id == sa.bindparam("mid")))
MESSAGE_STATUS = sa.select(messages.c.status, messages.c.conversation_id).where(messages.c.id == sa.bindparam("mid"))
SET_MESSAGE_STATUS = messages.update().where(messages.c.id == sa.bindparam("mid")).values(
    status=sa.bindparam("new_status"), error=sa.bindparam("new_error"), updated_at=sa.bindparam("now"))
SENDER_AND_CONTACT = (sa.select(messages.c.sender, conversations.c.contact_id)
                      .join(conversations, conversations.c.id == messages.c.conversation_id)
                      .where(messages.c.id == sa.bindparam("mid")))
ASSIGNEE = sa.select(conversations.c.assigned_id).where(conversations.c.id == sa.bindparam("cid"))
PARKED = sa.and_(pending_reports.c.connector == sa.bindparam("ref_connector"),
                 pending_reports.c.provider_id == sa.bindparam("ref_id"))
PARKED_REPORTS = sa.select(pending_reports).where(PARKED).order_by(pending_reports.c.id)
UNPARK = pending_reports.delete().where(PARKED)


async def store_report(conn, report: StatusReport) -> dict | None:
    """Apply a status report; returns the status push for the agent, or None if parked or unchanged."""
    ref = {"ref_connector": report.connector, "ref_id": report.provider_id}
    message_id = await conn.scalar(MESSAGE_OF_REF, ref)
    if message_id is None:
        await conn.execute(PARK_REPORT, {"connector": report.connector, "provider_id": report.provider_id,
                                         "status": report.status, "error": report.error, "received_at": utcnow()})
        return None
    await conn.execute(SET_REF, {**ref, "new_status": report.status, "new_error": report.error})
    if report.opt_out:  # the customer opted out with the provider: record it as a STOP texted to that number
        row = (await conn.execute(SENDER_AND_CONTACT, {"mid": message_id})).one()
        await record_opt_out(conn, row.contact_id, row.sender, True, "number")
    return await settle_message(conn, message_id)


async def settle_message(conn, message_id: int) -> dict | None:
    """Recompute a message's status from its parts; the push payload if it moved forward."""
    parts = (await conn.execute(PARTS, {"mid": message_id})).all()
    status, error = combine(parts)
    row = (await conn.execute(MESSAGE_STATUS, {"mid": message_id})).one()
    if RANK.get(status, 0) <= RANK.get(row.status, 0):
        return None
    now = utcnow()
    await conn.execute(SET_MESSAGE_STATUS, {"mid": message_id, "new_status": status, "new_error": error, "now": now})
    assigned = await conn.scalar(ASSIGNEE, {"cid": row.conversation_id})
    return status_payload(message_id, row.conversation_id, status, error, now, assigned)


async def apply_pending(conn, connector: str, provider_ids: tuple[str, ...]) -> None:
    """Apply reports that arrived before the send's answer named these ids."""
    for provider_id in provider_ids:
        ref = {"ref_connector": connector, "ref_id": provider_id}
        rows = (await conn.execute(PARKED_REPORTS, ref)).all()
        for row in rows:
            await conn.execute(SET_REF, {**ref, "new_status": row.status, "new_error": row.error})
        if rows:
            await conn.execute(UNPARK, ref)


STRANDED_BATCH = 100  # refs rescued per transaction
STRANDED = (
    sa.select(pending_reports.c.connector, pending_reports.c.provider_id)
    .join(provider_refs, sa.and_(provider_refs.c.connector == pending_reports.c.connector,
                                 provider_refs.c.provider_id == pending_reports.c.provider_id))
    .distinct().limit(STRANDED_BATCH)
)
TAKE_PARKED = UNPARK.returning(pending_reports.c.id, pending_reports.c.status, pending_reports.c.error)


async def stranded(conn) -> bool:
    """Whether any parked report's provider id is known now (a read: the sweep's cheap look)."""
    return (await conn.execute(STRANDED.limit(1))).first() is not None


async def apply_stranded(conn) -> list[dict]:
    """Apply parked reports whose provider id is known now; the status pushes of the messages that moved."""
    pushes = []
    for connector, provider_id in (await conn.execute(STRANDED)).all():
        ref = {"ref_connector": connector, "ref_id": provider_id}
        taken = sorted((await conn.execute(TAKE_PARKED, ref)).all())  # another node that took them first: none
        for row in taken:
            await conn.execute(SET_REF, {**ref, "new_status": row.status, "new_error": row.error})
        message_id = await conn.scalar(MESSAGE_OF_REF, ref) if taken else None
        if message_id is not None and (push := await settle_message(conn, message_id)) is not None:
            pushes.append(push)
    return pushes


def combine(parts) -> tuple[str, str | None]:
    """One status for a message from the statuses of its parts."""
    statuses = [p.status for p in parts] or [QUEUED]
    errors = [p.error for p in parts if p.error]
    for bad in (FAILED, UNDELIVERED):
        if bad in statuses:
            return bad, errors[0] if errors else None
    if all(s == DELIVERED for s in statuses):
        return DELIVERED, None
    return (SENT, None) if any(RANK.get(s, 0) >= 1 for s in statuses) else (QUEUED, None)


def status_payload(message_id, conversation_id, status, error, updated_at, assigned_id) -> dict:
    """The `status` push; `_to` names the agent to push it to and is removed before sending."""
    return {
        "id": message_id, "conversation_id": conversation_id, "status": status,
        "error": error, "updated_at": iso(updated_at), "_to": assigned_id,
    }


async def expire_reports(conn, before: datetime) -> int:
    """Delete up to EXPIRE_BATCH parked reports that came before `before`; how many went."""
    oldest = (sa.select(pending_reports.c.id).where(pending_reports.c.received_at < before)
              .order_by(pending_reports.c.received_at).limit(EXPIRE_BATCH))
    result = await conn.execute(pending_reports.delete().where(pending_reports.c.id.in_(oldest.scalar_subquery())))
    return result.rowcount
