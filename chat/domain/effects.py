"""Carrying out a scenario's decisions: everything that touches the store happens in the same
transaction that saves the run's new state, so a restart never repeats or loses half of a step.

Rules: replies go through the outbox like an agent's, from the conversation's presented number;
an opted-out contact gets nothing but a compliance confirmation; a note is never sent; a CRM
activity is queued once per idempotency key. HTTP calls and pushes happen after the commit.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import sqlalchemy as sa

from chat.domain.conversations import append_message, conversation_payload, get_conversation, message_payload, transcript_payload
from chat.domain.directory import Directory, TeamRule
from chat.domain.optouts import opted_out_from, record_opt_out
from chat.domain.teams import pick_member
from chat.store import utcnow
from chat.store.tables import contacts, conversations, crm_outbox, messages, outbox, scenario_runs, scenario_timers
from gateway import InvalidNumber, count_segments, normalize_number
from scenarios import (
    Call,
    Close,
    Notify,
    OptOut,
    Present,
    Result,
    Route,
    SaveActivity,
    SendReply,
    SetContactFields,
    SetTimer,
    Tag,
)


@dataclass
class After:
    """What to do once the transaction has committed."""

    pushes: list[tuple[int | None, str, Any]] = field(default_factory=list)  # (user, event, payload)
    calls: list[Call] = field(default_factory=list)
    offers: list[int] = field(default_factory=list)  # users who may now take a waiting conversation
    queues: list[str] = field(default_factory=list)  # teams whose queue changed (their members are told)
    closed: bool = False
    queued: bool = False  # an SMS went into the outbox
    activities: bool = False


async def apply_result(conn, conversation_id: int, scenario: str, result: Result, directory: Directory,
                       teams: dict[str, tuple[str, ...]], compliance: bool = False,
                       available: Callable[[int], bool] | None = None) -> After:
    """Apply a Result's effects and save (or end) the run, in the caller's transaction; `available`
    says who may take a conversation now (presence), for a route to a team."""
    after = After()
    for effect in result.effects:
        await _apply(conn, conversation_id, effect, directory, teams, compliance, after, available or _nobody)
    await save_run(conn, conversation_id, scenario, result)
    return after


async def save_run(conn, conversation_id: int, scenario: str, result: Result) -> None:
    await conn.execute(scenario_runs.delete().where(scenario_runs.c.conversation_id == conversation_id))
    if result.run is not None:
        await conn.execute(scenario_runs.insert().values(
            conversation_id=conversation_id, scenario=scenario, run=result.run, wake_at=_utc(result.wake_at),
            updated_at=utcnow()))


async def _apply(conn, cid: int, effect, directory: Directory, teams, compliance: bool, after: After,
                 available: Callable[[int], bool]) -> None:
    conv = await get_conversation(conn, cid)
    if isinstance(effect, SendReply):
        await _reply(conn, conv, effect.text, directory, compliance, after)
    elif isinstance(effect, Notify):
        await _note(conn, conv, effect.text, after)
    elif isinstance(effect, Route):
        await _route(conn, conv, effect, directory, teams, after, available)
    elif isinstance(effect, Tag):
        tags = list(dict.fromkeys([*(conv.tags or []), effect.tag]))
        await _update(conn, conv, after, tags=tags)
    elif isinstance(effect, Present):
        await _present(conn, conv, effect.number, directory, after)
    elif isinstance(effect, Close):
        await _update(conn, conv, after, state="closed", reply_due_at=None, snoozed_until=None, closed_at=utcnow())
        after.closed = True
    elif isinstance(effect, SetContactFields):
        await _contact_fields(conn, conv.contact_id, dict(effect.fields))
    elif isinstance(effect, OptOut):
        await record_opt_out(conn, conv.contact_id, conv.access_number, effect.opted_out, directory.opt_out_scope)
        fresh = await get_conversation(conn, cid)
        after.pushes.append((conv.assigned_id, "conversation", conversation_payload(fresh) | {
            "opted_out": await opted_out_from(conn, conv.contact_id, conv.presented_number)}))
    elif isinstance(effect, SetTimer):
        await conn.execute(scenario_timers.insert().values(conversation_id=cid, name=effect.name, at=_utc(effect.at)))
    elif isinstance(effect, SaveActivity):
        await _activity(conn, conv, effect, after)
    elif isinstance(effect, Call):
        after.calls.append(effect)


async def _reply(conn, conv, text: str, directory: Directory, compliance: bool, after: After) -> None:
    if not compliance and await opted_out_from(conn, conv.contact_id, conv.presented_number):
        await _note(conn, conv, f"Not sent (the customer opted out of SMS): {text}", after)
        return
    sender = conv.presented_number
    connector = directory.connector_of.get(sender, "")
    encoding, segments = count_segments(text)
    msg = await append_message(
        conn, conv.id, direction="out", text=text, status="queued", sender=sender, recipient=conv.contact_number,
        connector=connector, segments=segments, encoding=encoding, compliance=compliance,
    )
    now = utcnow()
    await conn.execute(outbox.insert().values(message_id=msg["id"], conversation_id=conv.id, connector=connector,
                                              next_attempt_at=now, created_at=now))
    after.pushes.append((conv.assigned_id, "message", msg))
    after.queued = True


async def queue_reply(conn, conv, text: str, directory: Directory, after: After) -> None:
    """An automatic SMS to the customer (not a compliance one), as a scenario's reply goes."""
    await _reply(conn, conv, text, directory, False, after)


async def _present(conn, conv, ref: str, directory: Directory, after: After) -> None:
    """A scenario's `present`: the number (a callback name or a number) its agent may present, or a note why not."""
    number = directory.callback_names.get(ref)
    if number is None:
        try:
            number = normalize_number(ref)
        except InvalidNumber:
            await _note(conn, conv, f"Scenario asked to present {ref!r}: neither a callback name nor a number; "
                                    f"replies still come from {conv.presented_number}.", after)
            return
    agent = directory.agents.get(conv.assigned_id or conv.owner_id or 0)
    own = conv.access_number not in directory.hidden and number == conv.access_number
    if agent is not None and not own and number not in agent.may_present:
        await _note(conn, conv, f"Scenario asked to present {number}, which {agent.display_name} may not present; "
                                f"replies still come from {conv.presented_number}.", after)
        return
    if number != conv.presented_number:
        await _update(conn, conv, after, presented_number=number)


async def _note(conn, conv, text: str, after: After) -> None:
    msg = await append_message(conn, conv.id, direction="note", text=text, status="note", sender="", recipient="",
                               connector="")
    after.pushes.append((conv.assigned_id, "message", msg))


async def _route(conn, conv, effect: Route, directory: Directory, teams, after: After,
                 available: Callable[[int], bool]) -> None:
    if effect.target == "team":
        await _route_to_team(conn, conv, effect.name or "", directory, teams, after, available)
        return
    if effect.target == "owner" and conv.access_number not in directory.owners:
        return  # a shared number has no owner: its route (chat.domain.directory.Route) has placed the conversation
    target = directory.owners.get(conv.access_number) if effect.target == "owner" else \
        getattr(directory.by_name.get(effect.name or ""), "id", None)
    if target is None:
        await _note(conn, conv, f"Scenario routed to {effect.name or 'the owner'}, who is not a user; kept where it was.", after)
        return
    if conv.assigned_id != target:
        await _update(conn, conv, after, owner_id=target, team=None, assigned_id=None, state="waiting")
        who = directory.agents.get(target)
        _tell_previous(conv, target, who.display_name or who.name if who else "a colleague", after)
    after.offers.append(target)


def _tell_previous(conv, holder: int | None, label: str, after: After) -> None:
    """The agent a route takes the conversation from loses it and is told (as after a transfer)."""
    if conv.assigned_id is not None and conv.assigned_id != holder:
        after.pushes.append((conv.assigned_id, "unassigned", {"conversation_id": conv.id, "reason": "scenario",
                                                              "to": label}))


async def _route_to_team(conn, conv, name: str, directory: Directory, teams, after: After,
                         available: Callable[[int], bool]) -> None:
    """Dealt by the team's rule (chat.domain.teams) as a new conversation on a team's number is,
    or waiting in its queue."""
    if name not in teams:
        await _note(conn, conv, f"Scenario routed to an unknown team {name!r}; kept where it was.", after)
        return
    members = tuple(directory.by_name[m].id for m in teams[name] if m in directory.by_name)
    if conv.team == name and conv.owner_id is None and (conv.state == "waiting" or conv.assigned_id in members):
        return  # in that queue already, or with one of its members
    holder = await pick_member(conn, name, directory.teams.get(name) or TeamRule(members), directory, available,
                               moving=conv.id)
    await _update(conn, conv, after, team=name, owner_id=None, assigned_id=holder,
                  state="open" if holder is not None else "waiting")
    _tell_previous(conv, holder, f"team {name}", after)
    if holder is None:
        after.queues.append(name)
        after.offers.extend(uid for uid in members if available(uid))  # one who became ready since: the claim decides
        return
    fresh = await get_conversation(conn, conv.id)
    after.pushes.append((holder, "conversation", conversation_payload(fresh)))
    after.pushes.append((holder, "messages", await transcript_payload(conn, conv.id)))


async def _update(conn, conv, after: After, **values) -> None:
    values["updated_at"] = utcnow()
    await conn.execute(conversations.update().where(conversations.c.id == conv.id).values(**values))
    fresh = await get_conversation(conn, conv.id)
    after.pushes.append((conv.assigned_id, "conversation", conversation_payload(fresh)))


async def _contact_fields(conn, contact: int, fields: dict) -> None:
    current = await conn.scalar(sa.select(contacts.c.fields).where(contacts.c.id == contact)) or {}
    values = {"fields": {**current, **fields}}
    if isinstance(fields.get("name"), str) and fields["name"].strip():
        values["name"] = fields["name"].strip()[:200]
    await conn.execute(contacts.update().where(contacts.c.id == contact).values(**values))


async def _activity(conn, conv, effect: SaveActivity, after: After) -> None:
    if await conn.scalar(sa.select(crm_outbox.c.id).where(crm_outbox.c.key == effect.key)) is not None:
        return
    body = effect.body
    if isinstance(body, dict) and not body.get("transcript"):  # the engine has no transcript: the store has
        body = {**body, "transcript": await transcript(conn, conv.id)}
    now = utcnow()
    await conn.execute(crm_outbox.insert().values(key=effect.key, url=effect.url, headers=dict(effect.headers),
                                                  body=body, next_attempt_at=now, created_at=now, conversation_id=conv.id))
    after.activities = True


async def transcript(conn, conversation_id: int) -> list[dict]:
    """The conversation as a CRM activity carries it: who (customer, agent, scenario) said what, when."""
    rows = (await conn.execute(sa.select(messages).where(
        messages.c.conversation_id == conversation_id, messages.c.direction != "note").order_by(messages.c.seq))).all()
    who = {"in": "customer"}
    return [{"from": who.get(r.direction, "agent" if r.user_id else "scenario"), "text": r.text,
             "at": message_payload(r)["created_at"]} for r in rows]


def _nobody(user_id: int) -> bool:
    return False


def _utc(when):
    """Stored times are UTC (SQLite compares them as text)."""
    return when.astimezone(UTC) if when is not None else None
