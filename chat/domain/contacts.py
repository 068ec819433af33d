"""The contact of a conversation, as the agent's contact panel shows it, and its name (units of work).

Rules:
- An agent reads and renames only the contact of a conversation they may see: theirs (assigned or owned), or
  any for supervisors and admins, the rule of chat.domain.media; for any other, the answer is the one for a
  conversation that does not exist.
- A name is stripped and 1-200 characters, with no control character: none of C0/C1, line or paragraph
  separators, lone surrogates, or the bidirectional embeddings, overrides and isolates that would reorder the
  text shown after it in a list (the marks LRM, RLM and ALM are kept: right-to-left names need them). Empty or
  null clears it. HTML is text like any other: the client never renders it as HTML (invariant 7).
- A rename is told to every agent with the contact in their list (the assignees of its conversations, the owners
  of its active ones) and recorded in the audit log by the contact's id, without the name: names are personal
  data, and the audit log outlives a contact's erasure (chat.domain.erasure).
- Numbers are shown in E.164 and nationally (phonenumbers' NATIONAL format) with their country; CRM fields as a
  flat dict of strings: nested objects by dotted keys, lists as JSON text, each shown value bounded.
"""
from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa

from chat.domain.audit import record
from chat.domain.conversations import ACTIVE
from chat.domain.directory import Agent
from chat.domain.lifecycle import earlier_conversations, visible
from chat.domain.optouts import ALL
from chat.domain.outbound import Refused
from chat.store.tables import contacts, conversations, opt_outs
from gateway import national

MAX_NAME = 200  # contacts.name's length
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
REFUSED_CATEGORIES = ("Cc", "Cs", "Zl", "Zp")
MAX_FIELDS = 100  # CRM fields shown
MAX_VALUE = 1000  # characters of one field's value shown
MAX_DEPTH = 3  # nesting flattened into dotted keys; deeper is JSON text


@dataclass(frozen=True)
class Renamed:
    contact: dict  # {"number", "name"}: the contact of every Conversation that has it
    users: tuple[int, ...]  # whom to tell


def clean_name(raw: str | None) -> str | None:
    """The name to store (None: cleared), or Refused naming `name` (see Rules)."""
    name = (raw or "").strip()
    if not name:
        return None
    if len(name) > MAX_NAME:
        raise Refused(f"a name is {MAX_NAME} characters at most; this one has {len(name)}", "name")
    bad = next((c for c in name if c in BIDI_CONTROLS or unicodedata.category(c) in REFUSED_CATEGORIES), None)
    if bad is not None:
        raise Refused(f"the name holds a control character (U+{ord(bad):04X}); remove it", "name")
    return name


def flat_fields(fields) -> dict[str, str]:
    """CRM fields for display (see Rules)."""
    out: dict[str, str] = {}

    def walk(prefix: str, value, depth: int) -> None:
        if isinstance(value, dict) and value and depth < MAX_DEPTH:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner, depth + 1)
        elif len(out) < MAX_FIELDS:
            out[prefix] = _shown(value)
    if isinstance(fields, dict):
        walk("", fields, 0)
    return out


def _shown(value) -> str:
    if isinstance(value, str):
        text = value
    elif value is None:
        text = ""
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + "…"


async def contact_panel(conn, agent: Agent, conversation_id: int) -> dict:
    """The contact of a conversation the agent may see, with its fields, tags, opt-outs and earlier conversations."""
    conv = await visible(conn, agent, conversation_id)
    shown, country = national(conv.contact_number)
    stops = sorted((await conn.scalars(sa.select(opt_outs.c.number).where(opt_outs.c.contact_id == conv.contact_id))).all())
    earlier = await earlier_conversations(conn, agent, conv.id)  # as `history` gives them, to whoever may see it
    return {"id": conv.contact_id, "name": conv.contact_name, "number": conv.contact_number, "national": shown,
            "country": country, "fields": flat_fields(conv.contact_fields), "tags": list(conv.tags or []),
            "opted_out": bool(set(stops) & {conv.presented_number, ALL}), "opted_out_of": stops,
            "conversations": earlier}


async def rename_contact(conn, agent: Agent, conversation_id: int, name: str | None) -> Renamed:
    """Give the contact of a conversation the agent may see a name (None: none), cleaned by `clean_name` already."""
    conv = await visible(conn, agent, conversation_id)
    await conn.execute(contacts.update().where(contacts.c.id == conv.contact_id).values(name=name))
    await record(conn, actor=agent.name, action="contact.renamed", target=f"contact:{conv.contact_id}",
                 details={"conversation_id": conv.id, "cleared": name is None})
    return Renamed({"number": conv.contact_number, "name": name}, await _listing(conn, conv.contact_id, agent.id))


async def _listing(conn, contact_id: int, agent_id: int) -> tuple[int, ...]:
    """The agents with this contact in their list, and the one renaming it."""
    mine = conversations.c.contact_id == contact_id
    assigned = sa.select(conversations.c.assigned_id.label("uid")).where(mine, conversations.c.assigned_id.is_not(None))
    owning = sa.select(conversations.c.owner_id.label("uid")).where(mine, ACTIVE, conversations.c.owner_id.is_not(None))
    users = set((await conn.scalars(sa.union(assigned, owning))).all())
    return tuple(sorted(users | {agent_id}))
