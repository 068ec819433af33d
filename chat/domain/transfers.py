"""An agent hands a conversation to a colleague or a team (a unit of work).

Rules:
- Only the agent a conversation is assigned to transfers it, and only while it is not closed.
- To a user: theirs at once if they are available, otherwise it waits for them (offered when they
  become ready, as a conversation that waits for its owner). To a team: dealt by the team's rule
  (chat.domain.teams) to a member other than the giver, otherwise it waits in the team's queue.
- The giver loses it in the same transaction (their late reply is refused: chat.domain.outbound),
  and a note, which only agents see and which is never sent, says who transferred it to whom and why.
- The customer keeps texting the same number: their messages go to whoever holds the conversation
  now, and its replies go on presenting the number it presents (chat.domain.outbound._sender).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from chat.domain.audit import record
from chat.domain.conversations import append_message, conversation_payload, get_conversation, transcript_payload
from chat.domain.directory import Agent, Directory, TeamRule
from chat.domain.lifecycle import assigned_to
from chat.domain.outbound import Refused
from chat.domain.teams import pick_member
from chat.store import utcnow
from chat.store.tables import conversations

MAX_NOTE = 1000


class Available(Protocol):
    """What a transfer asks of presence (chat.workers.presence.Presence has it)."""

    def available(self, user_id: int) -> bool: ...


@dataclass(frozen=True)
class Target:
    user: str | None = None  # a user's name
    team: str | None = None  # a team's name (a key of the configuration's teams)


@dataclass(frozen=True)
class Transferred:
    previous: int | None  # the agent who had it (None: it was waiting)
    label: str  # whom it went to, as the giver is told
    holder: int | None  # who has it now (None: it waits)
    conversation: dict
    messages: list[dict]  # the whole transcript, for the new holder (the note last)


async def transfer_conversation(conn, agent: Agent, conversation_id: int, target: Target, note: str | None,
                                directory: Directory, teams: Mapping[str, tuple[str, ...]], presence: Available) -> Transferred:
    """Give the agent's conversation to `target`; what to tell whom once committed."""
    conv = await assigned_to(conn, agent, conversation_id)
    if conv.state == "closed":
        raise Refused(f"conversation {conversation_id} is closed; reopen it to transfer it", "conversation_id")
    if target.user is not None and directory.by_name.get(target.user) is agent:
        raise Refused("the conversation is yours already", "to.user")
    reason = f": {note.strip()}" if note and note.strip() else ""
    done = await hand_over(conn, conv, agent.id, target, lambda label: f"Transferred by {agent.display_name or agent.name} "
                           f"to {label}{reason}", directory, teams, presence, user_id=agent.id)
    await record(conn, actor=agent.name, action="conversation.transferred", target=f"conversation:{conversation_id}",
                 details={"to": target.user or f"team:{target.team}"})
    return done


async def hand_over(conn, conv, giver: int | None, target: Target, note: Callable[[str], str], directory: Directory,
                    teams: Mapping[str, tuple[str, ...]], presence: Available, user_id: int | None = None) -> Transferred:
    """Move `conv` from `giver` to `target` (see Rules), with the note `note(label)`; a transfer's or an away policy's."""
    values: dict = {"updated_at": utcnow(), "reply_due_at": None, "snoozed_until": None}
    if target.user is not None:
        to = directory.by_name.get(target.user)
        if to is None:
            raise Refused(f"no user named {target.user[:64]!r}", "to.user")
        holder = to.id if presence.available(to.id) else None
        values |= {"owner_id": to.id, "assigned_id": holder, "team": None, "state": "open" if holder else "waiting"}
        label = to.display_name or to.name
    else:
        name = target.team or ""
        if name not in teams:
            raise Refused(f"no team named {name[:64]!r}", "to.team")
        rule = directory.teams.get(name) or TeamRule(tuple(directory.by_name[m].id for m in teams[name] if m in directory.by_name))
        holder = await pick_member(conn, name, rule, directory, presence.available, exclude=giver, moving=conv.id)
        values |= {"owner_id": None, "assigned_id": holder, "team": name, "state": "open" if holder else "waiting"}
        label = f"team {name}"
    await conn.execute(conversations.update().where(conversations.c.id == conv.id).values(**values))
    await append_message(conn, conv.id, direction="note", text=note(label)[:MAX_NOTE + 200], status="note", sender="",
                         recipient="", connector="", user_id=user_id)
    fresh = await get_conversation(conn, conv.id)
    return Transferred(giver, label, holder, conversation_payload(fresh), await transcript_payload(conn, conv.id))
