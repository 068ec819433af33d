"""Parts of long messages (SMPP's, and those a provider posts in parts) in the store (units of work), kept until the whole message is.

Rules: each part is stored as it arrives (so a restart between parts loses nothing) and its
deliver_sm acknowledged after that; a resend of a part we hold is recognised; a reference that
comes round again after its message was delivered starts a new message; delivered parts are
forgotten once no resend of them can come (the dedupe window) — only on the node that holds the
connector's bind, which is the only one that receives them.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

import sqlalchemy as sa

from chat.store import utcnow
from chat.store.tables import smpp_parts
from gateway import InboundSms, Part
from gateway.smpp.concat import Fragment


async def keep_part(conn, connector: str, key: str, fragment: Fragment, sender: str, recipient: str) -> bool:
    """Store a part; False when it is a resend of one we have."""
    where = sa.and_(smpp_parts.c.connector == connector, smpp_parts.c.key == key)
    query = sa.select(smpp_parts.c.payload, smpp_parts.c.done).where(where, smpp_parts.c.seq == fragment.seq)
    same = (await conn.execute(query)).first()
    if same is not None:
        if same.payload == fragment.payload or not same.done:
            return False
        await conn.execute(smpp_parts.delete().where(where))  # the reference came round again: a new message
    await conn.execute(smpp_parts.insert().values(
        connector=connector, key=key, seq=fragment.seq, total=fragment.total, ref=fragment.ref,
        width=fragment.width, data_coding=fragment.data_coding, payload=fragment.payload,
        sender=sender, recipient=recipient, received_at=utcnow(),
    ))
    return True


async def pending_parts(conn, connector: str, key: str):
    """The parts of one message not delivered yet, in order."""
    query = sa.select(smpp_parts).where(
        smpp_parts.c.connector == connector, smpp_parts.c.key == key, ~smpp_parts.c.done
    ).order_by(smpp_parts.c.seq)
    return (await conn.execute(query)).all()


async def mark_delivered(conn, ids: list[int]) -> None:
    await conn.execute(smpp_parts.update().where(smpp_parts.c.id.in_(ids)).values(done=True))


async def overdue_keys(conn, connector: str, before: datetime) -> list[str]:
    """Messages whose first part came before `before` and whose other parts never did."""
    mine = smpp_parts.c.connector == connector
    query = (sa.select(smpp_parts.c.key).where(mine, ~smpp_parts.c.done).group_by(smpp_parts.c.key)
             .having(sa.func.min(smpp_parts.c.received_at) < before))
    return list((await conn.execute(query)).scalars().all())


async def forget_delivered(conn, connector: str, before: datetime) -> None:
    await conn.execute(smpp_parts.delete().where(smpp_parts.c.connector == connector, smpp_parts.c.done,
                                                 smpp_parts.c.received_at < before))


# -- parts that come by webhook (gateway.providers.Part: Vonage's SMS API) ------------------------------------------
#
# Any node may take any part, so the last two parts of a message may be kept side by side on two nodes, neither
# seeing the other's: the sweep (`ripe_webhook_parts`, every few seconds on every node) delivers a message whose
# parts are all kept, and after WEBHOOK_PARTS_SECONDS one whose missing parts never came, marked incomplete. A
# message is taken by marking its parts delivered, which only one transaction can do (`take`).

DUPLICATE = "duplicate"
WEBHOOK = "webhook:"
WEBHOOK_PARTS_SECONDS = 300  # how long the other parts of a long message are waited for


async def join_part(conn, part: Part) -> InboundSms | str | None:
    """Keep a webhook's part; the whole message once every part is kept (taken in this transaction), DUPLICATE for
    a part we have, None while parts are missing."""
    sms = part.sms
    key = WEBHOOK + hashlib.sha256("\x00".join((sms.sender, sms.recipient, part.reference)).encode()).hexdigest()
    payload = json.dumps({"id": sms.provider_id, "text": sms.text, "original": _text(sms.original)}).encode()
    if not await keep_part(conn, sms.connector, key, Fragment(0, 0, part.total, part.number, 0, payload),
                           sms.sender, sms.recipient):
        return DUPLICATE
    rows = await pending_parts(conn, sms.connector, key)
    if len({r.seq for r in rows}) < part.total:
        return None
    whole = await take(conn, rows)
    return whole[0] if whole is not None else None


async def take(conn, rows) -> tuple[InboundSms, bool] | None:
    """The message these kept parts make, and whether parts are missing; None when another transaction took them
    first (they are marked delivered here, and only one transaction can)."""
    marked = await conn.execute(smpp_parts.update().where(smpp_parts.c.id.in_([r.id for r in rows]), ~smpp_parts.c.done)
                                .values(done=True))
    if marked.rowcount != len(rows):
        return None
    kept = [json.loads(r.payload) for r in sorted(rows, key=lambda r: r.seq)]
    altered = [k["original"] for k in kept if k["original"] is not None]
    first = rows[0]
    sms = InboundSms(connector=first.connector, provider_id=kept[0]["id"], sender=first.sender,
                     recipient=first.recipient, text="".join(k["text"] for k in kept),
                     original="\n".join(altered).encode("utf-8", "surrogateescape") if altered else None)
    return sms, len({r.seq for r in rows}) < first.total


async def webhook_parts_waiting(conn) -> bool:
    """Whether any part that came by webhook waits for its message (one indexed read)."""
    return bool(await conn.scalar(sa.select(sa.exists().where(~smpp_parts.c.done, smpp_parts.c.key.startswith(WEBHOOK)))))


async def ripe_webhook_parts(conn, before: datetime) -> list[tuple[InboundSms, bool]]:
    """Take every message whose parts came by webhook and are all kept, or whose first part came before `before`:
    each with whether parts are missing. Delivered parts older than `before` are forgotten."""
    mine = smpp_parts.c.key.startswith(WEBHOOK)
    query = (sa.select(smpp_parts.c.connector, smpp_parts.c.key).where(mine, ~smpp_parts.c.done)
             .group_by(smpp_parts.c.connector, smpp_parts.c.key)
             .having(sa.or_(sa.func.count(sa.distinct(smpp_parts.c.seq)) >= sa.func.max(smpp_parts.c.total),
                            sa.func.min(smpp_parts.c.received_at) < before)))
    out = []
    for connector, key in (await conn.execute(query)).all():
        taken = await take(conn, await pending_parts(conn, connector, key))
        if taken is not None:
            out.append(taken)
    await conn.execute(smpp_parts.delete().where(mine, smpp_parts.c.done, smpp_parts.c.received_at < before))
    return out


def _text(original: bytes | None) -> str | None:
    return None if original is None else original.decode("utf-8", "surrogateescape")
