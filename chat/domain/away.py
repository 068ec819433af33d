"""An access number's away policies at work (a unit of work): what a customer's text does when the
agent who has the conversation is offline or not ready.

Rules:
- It runs for every inbound message (new conversations and those under way) whose conversation's
  agent (its assignee, else the owner it waits for) is away, in a unit that locks the conversation's
  row and checks again that it is still theirs and they are still away: once across nodes.
- `forward` hands the conversation over as a transfer does (chat.domain.transfers.hand_over), with a
  note saying why; the agent who loses it is told (`unassigned`, reason `away`).
- `auto_reply` sends its text at most once per conversation every `every_seconds` (away_replied_at).
- `hold` does nothing: the conversation waits for its agent.
"""
from __future__ import annotations

from datetime import timedelta

from chat.config import AwayAction
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
            after.pushes.extend((done.holder, "message", m) for m in done.messages)
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
