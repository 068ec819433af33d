"""The audit log: who did what, when, from where, and what changed.

Rules:
- Recorded: every change of the running configuration (with the fields that changed, before and
  after: the document holds no password, so neither does this), logins and failed logins, the use
  of an API token, tokens created and revoked, transfers, closes, exports, a contact's deletion.
- A record is written in the transaction of what it records, so nothing happens unrecorded and
  nothing is recorded that did not happen (a login's, on its own: a refused login changes nothing).
- `details` never holds a secret or a customer's text; a deleted contact is recorded by its id.
- Kept `audit_keep_days` (chat.workers.retention prunes older records).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from chat.store import as_utc, utcnow
from chat.store.tables import audit_log

MAX_CHANGES = 200  # changes listed in one record; more are counted
KEYS = ("name", "number")  # what tells apart the items of a list in the running document


async def record(conn, *, actor: str, action: str, target: str = "", address: str = "", details: dict | None = None) -> None:
    await conn.execute(audit_log.insert().values(at=utcnow(), actor=actor[:128], action=action[:48], target=target[:200],
                                                 address=(address or "")[:64], details=details))


async def record_unit(conn, **values) -> None:
    """`record` as a unit of work of its own (a login's)."""
    await record(conn, **values)


def changes(before: Any, after: Any, path: str = "") -> list[dict]:
    """What differs between two running documents: [{"field", "from", "to"}], fields named as the CLI names them."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in dict.fromkeys([*before, *after]):
            out += changes(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(before, list) and isinstance(after, list) and _keyed(before + after):
        key = next(k for k in KEYS if all(isinstance(i, dict) and k in i for i in before + after))
        old, new = {i[key]: i for i in before}, {i[key]: i for i in after}
        out = []
        for name in dict.fromkeys([*old, *new]):
            out += changes(old.get(name), new.get(name), f"{path}[{key}={name}]")
        return out
    if before == after:
        return []
    return [{"field": path, "from": before, "to": after}]


def _keyed(items: list) -> bool:
    return bool(items) and any(all(isinstance(i, dict) and k in i for i in items) for k in KEYS)


def summary(before: Any, after: Any) -> dict:
    found = changes(before, after)
    return {"changes": found[:MAX_CHANGES], "count": len(found)}


def _filters(actor: str | None, action: str | None, target: str | None, since: datetime | None,
             until: datetime | None) -> list:
    where = []
    if actor:
        where.append(audit_log.c.actor == actor)
    if action:
        where.append(audit_log.c.action.like(action.replace("*", "%")) if "*" in action else audit_log.c.action == action)
    if target:
        where.append(audit_log.c.target == target)
    if since:
        where.append(audit_log.c.at >= since)
    if until:
        where.append(audit_log.c.at < until)
    return where


async def query(conn, *, limit: int, offset: int, actor: str | None = None, action: str | None = None,
                target: str | None = None, since: datetime | None = None, until: datetime | None = None) -> tuple[list[dict], int]:
    """One page of records, newest first, and how many match."""
    where = _filters(actor, action, target, since, until)
    total = await conn.scalar(sa.select(sa.func.count()).select_from(audit_log).where(*where))
    rows = (await conn.execute(sa.select(audit_log).where(*where).order_by(audit_log.c.id.desc())
                               .limit(limit).offset(offset))).all()
    return [{"id": r.id, "at": as_utc(r.at).isoformat(), "actor": r.actor, "action": r.action, "target": r.target,
             "address": r.address, "details": r.details} for r in rows], int(total or 0)


async def prune(conn, before: datetime) -> int:
    """Delete the records older than `before`; how many."""
    return (await conn.execute(audit_log.delete().where(audit_log.c.at < before))).rowcount or 0
