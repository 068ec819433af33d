"""A conversation's scenario state in the store (units of work): its run, its timers, its
no-agent-reply deadline, and the lock under which each of its events is handled.

Rules:
- An event is handled in one unit (`step`) that first locks the conversation's row (SELECT ...
  FOR NO KEY UPDATE on PostgreSQL; SQLite's write transactions are exclusive already): the run it
  reads is the latest any node committed, and none changes it before this unit commits. The
  engine decides inside the unit (it is pure and quick) and the unit saves what it decided: one
  execution per conversation across the cluster, whichever node an event reached.
- A stored deadline (a wait's timeout, a named timer, a no-agent-reply deadline) fires in the unit
  that consumes it, under that lock (the timer's row deleted, the deadline cleared, the wait
  found still due): nodes that all see it due fire it once. Those units skip a conversation that
  another transaction holds (SKIP LOCKED); the next round looks at it again.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from chat.domain.conversations import ACTIVE, conversation_query
from chat.domain.directory import Directory
from chat.domain.effects import After, apply_result
from chat.store import utcnow
from chat.store.tables import conversations, scenario_runs, scenario_timers
from scenarios import Result

DUE_LIMIT = 200  # deadlines of each kind fired in one round; the rest in the next

_BY_ID = conversation_query().where(conversations.c.id == sa.bindparam("cid"))
LOCK = _BY_ID.with_for_update(of=conversations, key_share=True)
LOCK_OR_SKIP = _BY_ID.with_for_update(of=conversations, key_share=True, skip_locked=True)
RUN_OF = sa.select(scenario_runs).where(scenario_runs.c.conversation_id == sa.bindparam("cid"))
WAIT_DUE = sa.select(scenario_runs.c.conversation_id).where(
    scenario_runs.c.conversation_id == sa.bindparam("cid"), scenario_runs.c.wake_at <= sa.bindparam("now"))
DROP_TIMER = scenario_timers.delete().where(scenario_timers.c.id == sa.bindparam("tid"))
TAKE_REPLY_DUE = conversations.update().where(
    conversations.c.id == sa.bindparam("cid"), conversations.c.reply_due_at <= sa.bindparam("now"), ACTIVE,
).values(reply_due_at=None)
SET_REPLY_DUE = conversations.update().where(
    conversations.c.id == sa.bindparam("cid"), conversations.c.reply_due_at.is_(None),
).values(reply_due_at=sa.bindparam("at"))
CLEAR_REPLY_DUE = conversations.update().where(conversations.c.id == sa.bindparam("cid")).values(reply_due_at=None)


@dataclass(frozen=True)
class Due:
    """The stored deadline an event comes from: a wait's timeout ("wait"), a named timer ("timer"), or
    a no-agent-reply deadline ("reply")."""

    kind: str
    timer_id: int | None = None


@dataclass(frozen=True)
class Decision:
    """What the engine decided for one event, to be saved with its effects."""

    scenario: str
    result: Result
    compliance: bool = False  # an opt-out/opt-in confirmation: the one SMS an opted-out contact gets
    preempt: bool = False  # ends the running execution and every wait it had, first


# (the conversation with its contact's columns, its stored run or None) -> a Decision, or None for nothing to do.
Decide = Callable[[Any, Any], Decision | None]


async def step(conn, conversation_id: int, decide: Decide, directory: Directory, teams: dict[str, tuple[str, ...]],
               due: Due | None = None, available: Callable[[int], bool] | None = None) -> After | None:
    """Handle one event of a conversation under its lock (see Rules); what to do once committed, or None
    (`available`: who may take a conversation now, for a route to a team)."""
    now = utcnow()
    conv = (await conn.execute(LOCK if due is None else LOCK_OR_SKIP, {"cid": conversation_id})).first()
    if conv is None or (due is not None and not await _consume(conn, conversation_id, due, now)):
        return None
    run = (await conn.execute(RUN_OF, {"cid": conversation_id})).first()
    decision = decide(conv, run)
    if decision is None:
        return None
    if decision.preempt:
        await preempt(conn, conversation_id)
    return await apply_result(conn, conversation_id, decision.scenario, decision.result, directory, teams,
                              compliance=decision.compliance, available=available)


async def _consume(conn, cid: int, due: Due, now: datetime) -> bool:
    """Take the deadline, if it is still there and due: whoever takes it fires it."""
    if due.kind == "timer":
        return (await conn.execute(DROP_TIMER, {"tid": due.timer_id})).rowcount == 1
    if due.kind == "reply":
        return (await conn.execute(TAKE_REPLY_DUE, {"cid": cid, "now": now})).rowcount == 1
    return await conn.scalar(WAIT_DUE, {"cid": cid, "now": now}) is not None


async def preempt(conn, conversation_id: int) -> None:
    """End the conversation's execution: its run, its timers and its no-agent-reply deadline."""
    await conn.execute(scenario_runs.delete().where(scenario_runs.c.conversation_id == conversation_id))
    await conn.execute(scenario_timers.delete().where(scenario_timers.c.conversation_id == conversation_id))
    await conn.execute(CLEAR_REPLY_DUE, {"cid": conversation_id})


async def set_reply_due(conn, cid: int, at) -> None:
    """Set the no_agent_reply deadline (if none is set), or clear it (at=None)."""
    await conn.execute(CLEAR_REPLY_DUE if at is None else SET_REPLY_DUE, {"cid": cid, "at": at})


@dataclass(frozen=True)
class DueNow:
    waits: list[int]  # conversations whose run's wait timed out
    timers: list  # (id, conversation_id, name) of named timers due
    silent: list[int]  # conversations past their no-agent-reply deadline


async def due_now(conn, now: datetime) -> DueNow:
    """What has fallen due (a read: the units that fire them check again under the lock)."""
    waits = await conn.scalars(sa.select(scenario_runs.c.conversation_id).where(scenario_runs.c.wake_at <= now).limit(DUE_LIMIT))
    timers = await conn.execute(sa.select(scenario_timers.c.id, scenario_timers.c.conversation_id, scenario_timers.c.name)
                                .where(scenario_timers.c.at <= now).order_by(scenario_timers.c.at).limit(DUE_LIMIT))
    silent = await conn.scalars(sa.select(conversations.c.id).where(conversations.c.reply_due_at <= now, ACTIVE).limit(DUE_LIMIT))
    return DueNow(list(waits.all()), list(timers.all()), list(silent.all()))


async def next_due(conn) -> datetime | None:
    """The earliest stored deadline of any kind, or None."""
    times = [await conn.scalar(query) for query in (
        sa.select(sa.func.min(scenario_runs.c.wake_at)), sa.select(sa.func.min(scenario_timers.c.at)),
        sa.select(sa.func.min(conversations.c.reply_due_at)).where(ACTIVE))]
    pending = [t for t in times if t is not None]
    return min(pending) if pending else None
