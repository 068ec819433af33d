"""Inbound messages into the store: idempotent, committed before anyone is told.

Rules: the provider's message id, scoped by connector, is stored once however often the
provider retries (invariant 2). A new conversation goes to the access number's owner (or, for
a shared number, to the agent who last presented it to this contact), opening at once when
that agent is available and waiting for them otherwise; failing those, to the least busy ready
member of the number's queue, or it waits in that queue (chat.domain.directory.Route).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property, partial
from typing import Protocol

import sqlalchemy as sa

from chat.domain.conversations import (
    FIND_ACTIVE,
    UNSNOOZE,
    contact_id,
    conversation_payload,
    insert_message,
    last_presenter,
    least_busy,
    message_payload,
    open_conversation,
    storable_inbound,
)
from chat.domain.directory import ADMINS, Directory
from chat.domain.parts import DUPLICATE, WEBHOOK_PARTS_SECONDS, join_part, ripe_webhook_parts
from chat.domain.teams import pick_member
from chat.store import utcnow
from chat.store.tables import messages
from gateway import InboundSms, Part, count_segments


class Presence(Protocol):
    """Who can take a conversation now (chat.workers.presence); read inside a unit, so never awaited."""

    def available(self, user_id: int) -> bool: ...


@dataclass(frozen=True)
class Stored:
    """What ingest did with one inbound message.

    The payloads are built from the stored rows when first asked for, after the commit, outside
    the writer (SQLite's writer is the one serial stage of ingest).
    """

    duplicate: bool
    message_row: dict | None = None
    owner_id: int | None = None
    assigned_id: int | None = None
    new_conversation: bool = False
    row: object = None  # the conversation and contact as ingest read them (the scenario's first facts)

    @property
    def waiting(self) -> bool:
        return not self.duplicate and self.assigned_id is None

    @property
    def queue(self) -> str | None:
        """The queue its conversation waits in (when it waits for no one in particular)."""
        return getattr(self.row, "team", None)

    @cached_property
    def message(self) -> dict | None:
        return message_payload(self.message_row) if self.message_row else None

    @cached_property
    def conversation(self) -> dict | None:
        if self.row is None:
            return None
        payload = conversation_payload(self.row)
        message = self.message
        assert message is not None  # a conversation is stored with the message that brought it
        return payload | {"last_seq": message["seq"], "updated_at": message["updated_at"]}


@dataclass(frozen=True)
class Fingerprint:
    """For connectors without message ids (SMPP): the same content within `window` s is a resend."""

    value: str
    window: float


def inbound_unit(sms: InboundSms, directory: Directory, presence: Presence):
    """A group-commit unit that stores `sms` (its segments counted here, outside the writer)."""
    return partial(store_inbound, sms=sms, directory=directory, presence=presence, counted=count_segments(sms.text))


def part_unit(part: Part, directory: Directory, presence: Presence):
    """A unit that keeps one part of a long message (chat.domain.parts.join_part) and, once every part is kept,
    stores the whole message in the same transaction; None while parts are missing."""
    async def unit(conn) -> Stored | None:
        whole = await join_part(conn, part)
        if whole is None:
            return None
        if whole == DUPLICATE:
            return Stored(duplicate=True)
        assert isinstance(whole, InboundSms)
        return await store_inbound(conn, whole, directory, presence)
    return unit


async def ripe_parts_unit(conn, directory: Directory, presence: Presence) -> list[Stored]:
    """Store every long message whose webhook parts are all kept (or waited for long enough), in this transaction."""
    before = utcnow() - timedelta(seconds=WEBHOOK_PARTS_SECONDS)
    return [await store_inbound(conn, sms, directory, presence, incomplete=missing)
            for sms, missing in await ripe_webhook_parts(conn, before)]


async def store_inbound(conn, sms: InboundSms, directory: Directory, presence: Presence,
                        fingerprint: Fingerprint | None = None, incomplete: bool = False,
                        counted: tuple[str, int] | None = None) -> Stored:
    """Store one inbound message in its conversation; `counted` is count_segments(sms.text) if known."""
    seen, conv = await _seen_and_active(conn, sms, fingerprint)
    if seen:
        return Stored(duplicate=True)
    new = conv is None
    if new:
        conv = await open_routed(conn, await contact_id(conn, sms.sender), sms.recipient, directory, presence)
    elif conv.snoozed_until is not None:  # the customer texts: the conversation is back in the agent's list
        await conn.execute(UNSNOOZE, {"cid": conv.id})
    encoding, segments = counted or count_segments(sms.text)
    media = [{"url": m.url, "content_type": m.content_type} for m in sms.media] or None
    text, original = storable_inbound(sms.text, sms.original)  # the safety net: no connector brings unstorable text
    message = await insert_message(
        conn, conv.id, direction="in", text=text, original=original, status="received", sender=sms.sender,
        recipient=sms.recipient, connector=sms.connector, provider_id=sms.provider_id or None,
        segments=segments, encoding=encoding, media=media, incomplete=incomplete,
        fingerprint=fingerprint.value if fingerprint else None,
    )
    return Stored(False, message, conv.owner_id, conv.assigned_id, new, conv)


async def open_routed(conn, contact: int, number: str, directory: Directory, presence: Presence):
    """A new conversation on `number`, given to whoever its route names now, or waiting for them."""
    route = directory.route(number)
    owner = route.user or await last_presenter(conn, contact, number)
    if owner in directory.agents:
        return await open_conversation(conn, contact, number, owner, owner if presence.available(owner) else None)
    rule = directory.teams.get(route.queue)
    if rule is not None:  # a team's queue: dealt by its rule (chat.domain.teams)
        taker = await pick_member(conn, route.queue, rule, directory, presence.available)
        return await open_conversation(conn, contact, number, None, taker, queue=route.queue)
    ready = [uid for uid in directory.queues.get(route.queue, ()) if presence.available(uid)]
    if route.queue == ADMINS or not ready:  # the admins' queue is claimed by an admin, never dealt out
        return await open_conversation(conn, contact, number, None, None, queue=route.queue)
    return await open_conversation(conn, contact, number, None, await least_busy(conn, ready), queue=route.queue)


SEEN = sa.select(messages.c.id).where(
    messages.c.connector == sa.bindparam("connector"), messages.c.provider_id == sa.bindparam("provider_id")
)
SEEN_RECENTLY = sa.select(messages.c.id).where(
    messages.c.connector == sa.bindparam("connector"), messages.c.fingerprint == sa.bindparam("fingerprint"),
    messages.c.created_at >= sa.bindparam("since"),
).limit(1)


def _with_active(seen: sa.Select) -> sa.Select:
    """One read: whether the message is stored already (`seen_id`), and its active conversation's columns
    (NULL when it has none). One statement instead of two: on PostgreSQL a round trip less per batch."""
    active = FIND_ACTIVE.subquery("active")
    one = sa.select(sa.literal_column("1").label("one")).subquery("one")
    return (sa.select(seen.scalar_subquery().label("seen_id"), *active.c)
            .select_from(one.outerjoin(active, sa.true())))


SEEN_AND_ACTIVE = _with_active(SEEN)
RECENT_AND_ACTIVE = _with_active(SEEN_RECENTLY)


async def _seen_and_active(conn, sms: InboundSms, fingerprint: Fingerprint | None):
    """(already stored?, the active conversation of its sender and number or None)."""
    params = {"connector": sms.connector, "number": sms.sender, "access": sms.recipient}
    if fingerprint is None:
        row = (await conn.execute(SEEN_AND_ACTIVE, params | {"provider_id": sms.provider_id})).one()
    else:
        since = utcnow() - timedelta(seconds=fingerprint.window)
        row = (await conn.execute(RECENT_AND_ACTIVE, params | {"fingerprint": fingerprint.value, "since": since})).one()
    return row.seen_id is not None, row if row.id is not None else None
