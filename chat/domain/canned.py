"""Canned replies (units of work): global ones, a team's and an agent's own, which the agent inserts with "/".

Rules:
- An agent may use the global replies, those of the teams they are a member of (the running configuration's
  teams) and their own; no other agent's, no other team's.
- A shortcut is 1-32 ASCII letters, digits, - and _, once per scope whatever its case: once among the global
  replies, once in each team, once among each agent's own (a unique index backs it, across nodes). A more
  personal one shadows the others: in an agent's list one reply per shortcut wins (their own, then their teams'
  in the configuration's order, then the global one); the rest say `shadowed`.
- A text is 1-1600 characters a store holds, not blank; its variables (VARIABLES, as `{contact.name}`) are filled
  in by the client when it inserts the reply; a text naming any other variable is refused, naming it.
- Agents write only their own replies; administrators (chat.agents.canned_admin) the global and team ones, each
  write recorded in the audit log (without its text). A write says whose lists changed (`Saved.owners`), so
  their clients can be told (`concerned`).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import sqlalchemy as sa
from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from chat.domain.audit import record
from chat.domain.conversations import iso
from chat.domain.directory import Directory
from chat.domain.outbound import Refused
from chat.store import utcnow
from chat.store.tables import canned_replies
from gateway import storable

GLOBAL, TEAM, PERSONAL = "global", "team", "personal"
SHARED = (GLOBAL, TEAM)  # what administrators write
VARIABLES = ("contact.name", "contact.number", "agent.name", "agent.display_name")
VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")  # other braces ("{}", "{ x }") are text
SHORTCUT = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_TEXT = 1600  # a send's longest text (chat.domain.outbound.SendRequest)
MAX_PERSONAL = 200  # an agent's own replies


def _shortcut(value: str) -> str:
    if not SHORTCUT.fullmatch(value):
        raise PydanticCustomError("shortcut", "a shortcut is 1-32 letters (a-z, A-Z), digits, - and _: what the agent "
                                              "types after /")
    return value


def _storable(value):
    """Refuse what no store holds (gateway.text.storable), before pydantic's own cryptic refusal of a surrogate."""
    if isinstance(value, str) and storable(value)[1]:
        raise PydanticCustomError("unstorable", "the text holds U+0000 or a lone surrogate, which cannot be sent; remove it")
    return value


def _text(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "the text is blank: write the reply")
    unknown = [name for name in dict.fromkeys(VARIABLE.findall(value)) if name not in VARIABLES]
    if unknown:
        known = ", ".join(f"{{{v}}}" for v in VARIABLES)
        raise PydanticCustomError("variable", f"unknown variable {{{unknown[0][:40]}}}; the variables are {known}")
    return value


Shortcut = Annotated[str, Field(strict=True, min_length=1, max_length=32, json_schema_extra={"pattern": SHORTCUT.pattern}),
                     AfterValidator(_shortcut)]
Text = Annotated[str, BeforeValidator(_storable), Field(strict=True, min_length=1, max_length=MAX_TEXT),
                 AfterValidator(_text)]
Scope = Literal["global", "team"]  # a shared reply's


class NoSuchReply(Refused):
    """No reply with this id that the editor may change."""


class ShortcutTaken(Refused):
    """Another reply of the same scope has this shortcut."""


@dataclass(frozen=True)
class Owner:
    """Whose reply: everyone's (global), a team's, or one agent's (personal)."""

    scope: str
    team: str | None = None
    user_id: int | None = None

    def rows(self):
        """An SQL condition: the replies of this owner."""
        return sa.and_(canned_replies.c.scope == self.scope, _equal(canned_replies.c.team, self.team),
                       _equal(canned_replies.c.user_id, self.user_id))

    def editable(self):
        """An SQL condition: the replies this owner's editor may change (an agent: their own; an admin: the shared)."""
        return self.rows() if self.scope == PERSONAL else canned_replies.c.scope.in_(SHARED)

    def label(self) -> str:
        return {GLOBAL: "among the global replies", TEAM: f"in team {self.team}"}.get(self.scope, "among yours")


def _equal(column, value):
    return column.is_(None) if value is None else column == value


def owner_of(row) -> Owner:
    return Owner(row.scope, row.team, row.user_id)


@dataclass(frozen=True)
class Saved:
    reply: dict
    owners: tuple[Owner, ...]  # whose lists changed: the reply's owner, and its owner before if that changed


def reply_payload(row) -> dict:
    """A reply as the agent protocol shows it."""
    return {"id": row.id, "scope": row.scope, "team": row.team, "shortcut": row.shortcut, "text": row.text}


def shared_payload(row) -> dict:
    """A shared reply as the admin API shows it."""
    return reply_payload(row) | {"created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}


async def usable_replies(conn, user_id: int, teams: Sequence[str]) -> list[dict]:
    """Every reply this agent may use, by shortcut, the one that wins first (see Rules), each saying if it is shadowed."""
    rows = (await conn.execute(sa.select(canned_replies).where(sa.or_(
        canned_replies.c.scope == GLOBAL,
        sa.and_(canned_replies.c.scope == TEAM, canned_replies.c.team.in_(list(teams))),
        Owner(PERSONAL, user_id=user_id).rows())))).all()
    rows.sort(key=lambda r: (r.shortcut.lower(), _rank(r, teams), r.id))
    out, seen = [], set()
    for row in rows:
        out.append(reply_payload(row) | {"shadowed": row.shortcut.lower() in seen})
        seen.add(row.shortcut.lower())
    return out


def _rank(row, teams: Sequence[str]) -> int:
    """Which reply of a shortcut wins: 0 (the agent's own) first, then their teams' in order, then the global one."""
    if row.scope == TEAM:
        return 1 + list(teams).index(row.team)
    return 0 if row.scope == PERSONAL else 1 + len(teams)


async def save_reply(conn, *, owner: Owner, shortcut: str, text: str, reply_id: int | None = None, actor: str,
                     address: str = "") -> Saved:
    """Create a reply (`reply_id` None) or change one the owner's editor may change; shared ones are audited."""
    before = None
    if reply_id is not None:
        before = (await conn.execute(sa.select(canned_replies).where(canned_replies.c.id == reply_id,
                                                                     owner.editable()))).first()
        if before is None:
            raise NoSuchReply(f"no canned reply {reply_id} that you may change", "id")
    await _check_free(conn, owner, shortcut, reply_id)
    now, values = utcnow(), {"scope": owner.scope, "team": owner.team, "user_id": owner.user_id, "shortcut": shortcut,
                             "text": text}
    if before is None:
        reply_id = (await conn.execute(canned_replies.insert().values(**values, created_at=now, updated_at=now))
                    ).inserted_primary_key[0]
    else:
        await conn.execute(canned_replies.update().where(canned_replies.c.id == reply_id).values(**values, updated_at=now))
    row = (await conn.execute(sa.select(canned_replies).where(canned_replies.c.id == reply_id))).one()
    if owner.scope != PERSONAL:
        await record(conn, actor=actor, action="canned.created" if before is None else "canned.changed",
                     target=f"canned:{reply_id}", address=address, details=_audited(row))
    owners = (owner,) if before is None or owner_of(before) == owner else (owner, owner_of(before))
    return Saved(reply_payload(row) if owner.scope == PERSONAL else shared_payload(row), owners)


async def _check_free(conn, owner: Owner, shortcut: str, reply_id: int | None) -> None:
    """Refuse a shortcut another reply of the owner has (any case), and an agent's reply past MAX_PERSONAL."""
    taken = await conn.scalar(sa.select(canned_replies.c.id).where(
        owner.rows(), sa.func.lower(canned_replies.c.shortcut) == shortcut.lower(),
        canned_replies.c.id != (reply_id or 0)).limit(1))
    if taken is not None:
        raise ShortcutTaken(f"/{shortcut} is taken {owner.label()} (reply {taken}): change that one or pick another "
                            "shortcut", "shortcut")
    if owner.scope == PERSONAL and reply_id is None:
        mine = await conn.scalar(sa.select(sa.func.count()).select_from(canned_replies).where(owner.rows()))
        if mine >= MAX_PERSONAL:
            raise Refused(f"you have {MAX_PERSONAL} canned replies of your own, the most there may be: delete one first",
                          "shortcut")


def _audited(row) -> dict:
    """What the audit log keeps of a reply: never its text."""
    return {"scope": row.scope, "team": row.team, "shortcut": row.shortcut}


async def delete_reply(conn, *, editor: Owner, reply_id: int, actor: str, address: str = "") -> Owner:
    """Delete a reply the editor may change (an agent: one of theirs; an admin: a shared one); whose it was."""
    row = (await conn.execute(sa.select(canned_replies).where(canned_replies.c.id == reply_id, editor.editable()))).first()
    if row is None:
        raise NoSuchReply(f"no canned reply {reply_id} that you may delete", "id")
    await conn.execute(canned_replies.delete().where(canned_replies.c.id == reply_id))
    if row.scope != PERSONAL:
        await record(conn, actor=actor, action="canned.deleted", target=f"canned:{reply_id}", address=address,
                     details=_audited(row))
    return owner_of(row)


def _shared_filters(scope: str | None, team: str | None, q: str | None) -> list:
    where: list[sa.ColumnElement[bool]] = [canned_replies.c.scope.in_(SHARED)]
    if scope is not None:
        where.append(canned_replies.c.scope == scope)
    if team is not None:
        where.append(canned_replies.c.team == team)
    if q:
        where.append(sa.func.lower(canned_replies.c.shortcut).contains(q.lower(), autoescape=True))
    return where


async def shared_replies(conn, *, limit: int, offset: int, scope: str | None = None, team: str | None = None,
                         q: str | None = None) -> tuple[list[dict], int]:
    """One page of the global and team replies (by scope, team, then shortcut), and how many match."""
    where = _shared_filters(scope, team, q)
    total = await conn.scalar(sa.select(sa.func.count()).select_from(canned_replies).where(*where))
    rows = (await conn.execute(sa.select(canned_replies).where(*where).order_by(
        canned_replies.c.scope, canned_replies.c.team, sa.func.lower(canned_replies.c.shortcut), canned_replies.c.id)
        .limit(limit).offset(offset))).all()
    return [shared_payload(r) for r in rows], int(total or 0)


async def shared_reply(conn, reply_id: int) -> dict | None:
    row = (await conn.execute(sa.select(canned_replies).where(
        canned_replies.c.id == reply_id, canned_replies.c.scope.in_(SHARED)))).first()
    return None if row is None else shared_payload(row)


def concerned(directory: Directory, owners: Iterable[Owner]) -> set[int]:
    """The agents whose lists these owners' replies are in: every agent for a global one, a team's members."""
    users: set[int] = set()
    for owner in owners:
        if owner.scope == GLOBAL:
            users |= set(directory.agents)
        elif owner.scope == TEAM and owner.team in directory.teams:
            users |= set(directory.teams[owner.team].members)
        elif owner.user_id is not None:
            users.add(owner.user_id)
    return users
