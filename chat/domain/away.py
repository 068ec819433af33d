"""An access number's away policies at work (a unit of work): what a customer's text does when the
agent who has the conversation is offline or not ready.

Rules:
- It runs for every inbound message (new conversations and those under way) whose conversation's
  agent (its assignee, else the owner it waits for) is away, in a unit that locks the conversation's
  row and checks again that it is still theirs and they are still away: once across nodes.
- The policy is the number's, or for a conversation handed to a user who does not own the number
  (a transfer, an assign, a forward) that user's own (chat.workers.automation.policy_of).
- `forward` hands the conversation over as a transfer does (chat.domain.transfers.hand_over), with a
  note saying why; the agent who loses it is told (`unassigned`, reason `away`).
- `auto_reply` sends its text at most once per conversation every `every_seconds` (away_replied_at).
- `hold` does nothing: the conversation waits for its agent; with `escalate_after_seconds` it goes
  to `to` if they are still away that long after the text.
- `reassign_after_seconds`: a customer's text that no agent answers within that long moves the
  conversation to `reassign_to`. Both deadlines share `away_due_at` (the earlier stands); an agent's
  reply clears it (chat.domain.outbound); the unit that finds it still due under the row's lock
  fires it: once across nodes.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from chat.config import AwayAction, AwayConfig
from chat.domain.conversations import ACTIVE, DISARM
from chat.domain.directory import Directory
from chat.domain.effects import After, queue_reply
from chat.domain.scenario_state import LOCK
from chat.domain.transfers import Available, Target, hand_over
from chat.store import as_utc, utcnow
from chat.store.tables import conversations


async def apply_away(conn, conversation_id: int, holder: int, state: str, action: AwayAction, directory: Directory,
                     teams: dict[str, tuple[str, ...]], presence: Available) -> After | None:
    """Apply `action` (the policy for `state`) to the conversation, if it is still `holder`'s and they are away."""
    conv = (await conn.execute(LOCK, {"cid": conversation_id})).first()
    if conv is None or conv.state == "closed" or (conv.assigned_id or conv.owner_id) != holder or presence.available(holder):
        return None
    after = After()
    if action.action == "forward" and action.to is not None:
        agent = directory.agents.get(holder)
        who = agent.display_name if agent else "The agent"
        done = await hand_over(conn, conv, holder, Target(action.to.user, action.to.team),
                               lambda label: f"{who} is {state.replace('_', ' ')}: forwarded to {label} by the number's away policy",
                               directory, teams, presence)
        after.pushes.append((holder, "unassigned", {"conversation_id": conv.id, "reason": "away", "to": done.label}))
        if done.holder is not None:
            after.pushes.append((done.holder, "conversation", done.conversation))
            after.pushes.append((done.holder, "messages", done.messages))  # one event, in order
        return after
    if action.action == "auto_reply" and action.text:
        last = as_utc(conv.away_replied_at)
        now = utcnow()
        if last is not None and now - last < timedelta(seconds=action.every_seconds):
            return None
        await conn.execute(conversations.update().where(conversations.c.id == conv.id).values(away_replied_at=now))
        await queue_reply(conn, conv, action.text, directory, after)
        return after
    return None


ARM = (conversations.update().where(conversations.c.id == sa.bindparam("cid"), ACTIVE,
                                    conversations.c.last_seq == sa.bindparam("seq"),
                                    sa.or_(conversations.c.away_due_at.is_(None), conversations.c.away_due_at > sa.bindparam("at")))
       .values(away_due_at=sa.bindparam("at")))


async def arm(conn, conversation_id: int, seconds: float, seq: int) -> None:
    """An away deadline `seconds` from now for the customer's message `seq`, unless an earlier one is set
    or anything came after that message (an agent's reply above all: it is answered)."""
    await conn.execute(ARM, {"cid": conversation_id, "at": utcnow() + timedelta(seconds=seconds), "seq": seq})


async def due_away(conn, now: datetime) -> list[int]:
    """Conversations whose away deadline has come (a read: the unit checks again)."""
    return list((await conn.scalars(sa.select(conversations.c.id)
                                    .where(conversations.c.away_due_at <= now, ACTIVE).limit(200))).all())


async def next_away_due(conn) -> datetime | None:
    return await conn.scalar(sa.select(sa.func.min(conversations.c.away_due_at)).where(ACTIVE))


async def fire_away(conn, conversation_id: int, now: datetime, policy_of: Callable[[Any], AwayConfig | None],
                    directory: Directory, teams: dict[str, tuple[str, ...]], presence) -> After | None:
    """The conversation's away deadline, if it is still due (see Rules): escalate a hold or reassign, by
    the policy it follows (`policy_of(conversation)`)."""
    conv = (await conn.execute(LOCK, {"cid": conversation_id})).first()
    if conv is None or conv.state == "closed" or conv.away_due_at is None or as_utc(conv.away_due_at) > now:
        return None
    await conn.execute(DISARM, {"cid": conversation_id})
    policy = policy_of(conv)
    if policy is None:
        return None
    holder = conv.assigned_id or conv.owner_id
    agent = directory.agents.get(holder) if holder is not None else None
    who = agent.display_name if agent else "nobody"
    away = holder is not None and not presence.available(holder)
    action = getattr(policy, presence.state(holder), None) if away and holder is not None else None
    if action is not None and action.action == "hold" and action.escalate_after_seconds and action.to is not None:
        target, why = action.to, f"{who} still away after {action.escalate_after_seconds:g} s"
    elif policy.reassign_to is not None and policy.reassign_after_seconds and holder is not None:
        target, why = policy.reassign_to, f"no reply from {who} in {policy.reassign_after_seconds:g} s"
    else:
        return None
    done = await hand_over(conn, conv, holder, Target(target.user, target.team),
                           lambda label: f"{why}: moved to {label} by the number's away policy", directory, teams, presence)
    after = After()
    if holder is not None and holder != done.holder:
        after.pushes.append((holder, "unassigned", {"conversation_id": conv.id, "reason": "away", "to": done.label}))
    if done.holder is not None:
        after.pushes.append((done.holder, "conversation", done.conversation))
        after.pushes.append((done.holder, "messages", done.messages))  # one event, in order
    return after
