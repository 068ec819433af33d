"""An agent's send: checked, then stored with its outbox entry in one transaction (invariant 5).

Rules: a send names a conversation (reply) or a customer number (start or continue one); it
goes out from a number the agent may present, chosen per conversation; a retried send with the
same client id returns what was stored the first time. Opted-out contacts are never sent to.
Attachments (`media`: the agent's own uploads, chat.domain.uploads) go only through a connector that
can send MMS (gateway.providers: each provider says so); elsewhere the send is refused, nothing stored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from chat.domain.agents import chosen_number
from chat.domain.conversations import (
    DISARM,
    active_conversation,
    append_message,
    contact_id,
    conversation_payload,
    get_conversation,
    message_payload,
    open_conversation,
)
from chat.domain.directory import Agent, Directory
from chat.domain.optouts import opted_out_from
from chat.domain.outbox import head_of
from chat.domain.uploads import MAX_ATTACHMENTS, owned_uploads
from chat.store import utcnow
from chat.store.tables import contacts, conversations, messages, outbox
from gateway import InvalidNumber, count_segments, country_of, normalize_number, storable

MAX_SEGMENTS = 10
# A row id or sequence number as the store holds it (a PostgreSQL integer): anything larger,
# a float, a bool or a string is refused at the edge instead of failing in the database.
STORE_INT_MAX = 2**31 - 1
Id = Annotated[int, Field(strict=True, ge=1, le=STORE_INT_MAX)]


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    conversation_id: Id | None = None
    to: str | None = Field(default=None, max_length=64)  # longer than any number, and bounded before phonenumbers
    text: str = Field(default="", max_length=1600)  # may be empty when media is given
    client_id: str = Field(min_length=1, max_length=64)
    from_: str | None = Field(default=None, alias="from", max_length=64)
    media: list[Id] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)  # upload ids (POST /api/uploads)

    @field_validator("text", "client_id", mode="before")  # before: pydantic's own refusal of a surrogate is cryptic
    @classmethod
    def _storable(cls, value, info: ValidationInfo):
        """Refuse what no store holds and no SMS carries (gateway.text.storable says what that is)."""
        if isinstance(value, str) and storable(value)[1]:
            reason = f"the {info.field_name} holds U+0000 or a lone surrogate, which cannot be sent; remove it"
            raise PydanticCustomError("unstorable", reason)
        return value


class Refused(Exception):
    """A send the agent must change; `field` names the part of the request at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Queued:
    message: dict
    conversation: dict
    new_conversation: bool
    repeated: bool = False
    head: object = None  # its outbox row, when nothing of its conversation is queued before it


# Statements on the hot path, built once (the store plans them: chat.store.fast).
BY_CLIENT_ID = sa.select(messages).where(messages.c.user_id == sa.bindparam("uid"),
                                         messages.c.client_id == sa.bindparam("client_id"))
SET_PRESENTED = (conversations.update().where(conversations.c.id == sa.bindparam("cid"))
                 .values(presented_number=sa.bindparam("number")))
ADD_OUTBOX = outbox.insert()
CLAIM = (conversations.update().where(conversations.c.id == sa.bindparam("cid"), conversations.c.assigned_id.is_(None))
         .values(assigned_id=sa.bindparam("uid"), state="open", updated_at=sa.bindparam("now")))


async def store_send(conn, agent: Agent, req: SendRequest, directory: Directory) -> Queued:
    """Store an agent's message and its outbox entry, or raise Refused."""
    previous = await _by_client_id(conn, agent.id, req.client_id)
    if previous:
        return Queued(message_payload(previous), conversation_payload(await get_conversation(conn, previous.conversation_id)), False, True)
    if not req.text and not req.media:
        raise Refused("the text is empty: write something, or attach a file", "text")
    conv, new = await _conversation_for(conn, agent, req, directory)
    sender = _sender(agent, req, conv, directory)
    if sender != conv.presented_number:
        await conn.execute(SET_PRESENTED, {"cid": conv.id, "number": sender})
    await _check_reachable(conn, conv.contact_id, sender)
    encoding, segments = count_segments(req.text)
    if segments > MAX_SEGMENTS:
        raise Refused(f"the text needs {segments} SMS parts; at most {MAX_SEGMENTS} are sent", "text")
    connector = directory.connector_of.get(sender)
    if connector is None:
        raise Refused(f"no connector sends from {sender}", "from")
    media = {"media": await _attachments(conn, agent, req.media, connector, directory)} if req.media else {}
    msg = await append_message(
        conn, conv.id, direction="out", text=req.text, status="queued", sender=sender,
        recipient=conv.contact_number, connector=connector, user_id=agent.id, client_id=req.client_id,
        segments=segments, encoding=encoding, **media,
    )
    if conv.away_due_at is not None:  # an agent answered: no reassignment for want of a reply
        await conn.execute(DISARM, {"cid": conv.id})
    now = utcnow()
    added = await conn.execute(ADD_OUTBOX, {"message_id": msg["id"], "conversation_id": conv.id, "connector": connector,
                                            "next_attempt_at": now, "created_at": now})
    head = await head_of(conn, conv.id)
    conv_payload = conversation_payload(await get_conversation(conn, conv.id))
    return Queued(msg, conv_payload, new, head=head if head.id == added.inserted_primary_key[0] else None)


async def set_presented(conn, agent: Agent, conversation_id: int, number: str, directory: Directory | None = None) -> dict:
    """Choose the number this conversation's replies go out from."""
    conv = await _own_conversation(conn, agent, conversation_id)
    hidden = directory.hidden if directory is not None else frozenset()
    number = _allowed(agent, number, "number", also=None if conv.access_number in hidden else conv.access_number)
    await conn.execute(SET_PRESENTED, {"cid": conv.id, "number": number})
    return conversation_payload(await get_conversation(conn, conv.id))


async def _by_client_id(conn, user_id: int, client_id: str):
    return (await conn.execute(BY_CLIENT_ID, {"uid": user_id, "client_id": client_id})).first()


async def _conversation_for(conn, agent: Agent, req: SendRequest, directory: Directory):
    if req.conversation_id is not None:
        return await _own_conversation(conn, agent, req.conversation_id), False
    if not req.to:
        raise Refused("give conversation_id to reply, or to to start a conversation", "to")
    try:
        number = normalize_number(req.to)
    except InvalidNumber as err:
        raise Refused(str(err), "to") from None
    sender = _allowed(agent, req.from_ or await choose_number(conn, agent, number, directory), "from")
    conv = await active_conversation(conn, number, sender)
    if conv is None:
        contact = await contact_id(conn, number)
        return await open_conversation(conn, contact, sender, directory.owners.get(sender, agent.id), agent.id), True
    if conv.assigned_id == agent.id:
        return conv, False
    if conv.assigned_id is None and conv.owner_id == agent.id:  # waiting for this agent: take it now
        await conn.execute(CLAIM, {"cid": conv.id, "uid": agent.id, "now": utcnow()})
        return await get_conversation(conn, conv.id), True
    # Waiting for, or open with, someone else: say so, and nothing of it.
    raise Refused(f"{number} already has a conversation on {sender} that is not yours", "to")


async def _own_conversation(conn, agent: Agent, conversation_id: int):
    conv = await get_conversation(conn, conversation_id)
    if conv is None or conv.assigned_id != agent.id:
        raise Refused(f"no conversation {conversation_id} is yours", "conversation_id")
    if conv.state == "closed":
        raise Refused(f"conversation {conversation_id} is closed; start a new one", "conversation_id")
    return conv


def _sender(agent: Agent, req: SendRequest, conv, directory: Directory) -> str:
    """The number a reply goes out from: the one asked for, else the conversation's. Whoever holds a
    conversation may present the number its customer texts (after a transfer, the colleague's
    replies still come from the number the customer knows)."""
    own = None if conv.access_number in directory.hidden else conv.access_number  # a hidden personal number: never
    if req.from_:
        return _allowed(agent, req.from_, "from", also=own)
    if conv.presented_number in agent.may_present or (own is not None and conv.presented_number == own):
        return conv.presented_number
    return _allowed(agent, agent.default_number, "from")


LAST_PRESENTED = (sa.select(conversations.c.presented_number)
                  .join(contacts, contacts.c.id == conversations.c.contact_id)
                  .where(contacts.c.number == sa.bindparam("number"))
                  .order_by(conversations.c.updated_at.desc()).limit(1))


LATEST_TAGS = (sa.select(conversations.c.tags, contacts.c.fields)
               .select_from(contacts).outerjoin(conversations, conversations.c.contact_id == contacts.c.id)
               .where(contacts.c.number == sa.bindparam("number"))
               .order_by(conversations.c.updated_at.desc()).limit(1))


async def customer_tags(conn, customer: str) -> set[str]:
    """The customer's tags: their latest conversation's (a scenario's `tag`) and their contact fields' `tags` (CRM)."""
    row = (await conn.execute(LATEST_TAGS, {"number": customer})).first()
    if row is None:
        return set()
    crm = (row.fields or {}).get("tags") if isinstance(row.fields, dict) else None
    return {str(t) for t in (row.tags or [])} | ({str(t) for t in crm} if isinstance(crm, list) else set())


async def choose_number(conn, agent: Agent, customer: str, directory: Directory) -> str | None:
    """The number a new conversation with `customer` presents when the agent picks none: the first of their
    selection rules (their own, then their teams', else the account's: chat.domain.directory) that gives
    one they may present (by the customer's prefix or country, a tag they carry, the number last presented to
    them), else the default they chose, else the configured one."""
    tags: set[str] | None = None
    for rule in directory.select_of.get(agent.id, ()):
        if rule.last_used:
            number = await conn.scalar(LAST_PRESENTED, {"number": customer})
        elif rule.prefix is not None and not customer.startswith(rule.prefix):
            continue
        elif rule.country is not None and country_of(customer) != rule.country:
            continue
        else:
            if rule.tag is not None:
                tags = await customer_tags(conn, customer) if tags is None else tags
                if rule.tag not in tags:
                    continue
            number = rule.number
        if number in agent.may_present:
            return number
    return await chosen_number(conn, agent) or agent.default_number


def _allowed(agent: Agent, number: str | None, field: str, also: str | None = None) -> str:
    """`number` as E.164 if the agent may present it (or it is `also`: the conversation's own number)."""
    if not number:
        raise Refused("you have no number to send from; ask an administrator for one", field)
    try:
        number = normalize_number(number)
    except InvalidNumber as err:
        raise Refused(str(err), field) from None
    if number not in agent.may_present and number != also:
        raise Refused(f"you may not present {number}; yours are: {', '.join(agent.may_present) or 'none'}", field)
    return number


async def _attachments(conn, agent: Agent, ids: list[int], connector: str, directory: Directory) -> list[dict]:
    """The message's media items for these uploads, or Refused: the connector sends no MMS, or one is not theirs."""
    cannot = directory.media_refusal(connector)
    if cannot is not None:
        raise Refused(f"{connector} ({cannot}) cannot send pictures or files: send the text alone", "media")
    if len(set(ids)) != len(ids):
        raise Refused("the same file is attached twice; attach each once", "media")
    items = await owned_uploads(conn, agent.id, ids)
    if items is None:
        raise Refused("an attached file is not one you uploaded (or no longer exists); upload it again", "media")
    return items


async def _check_reachable(conn, contact: int, sender: str) -> None:
    if await opted_out_from(conn, contact, sender):
        raise Refused(f"this customer has opted out of SMS from {sender} (they texted STOP); nothing is sent", "to")
