"""API tokens for automation: scoped, expiring, revocable, shown once.

Rules:
- A token is `dct_ID_SECRET`; only the SHA-256 of SECRET is kept, beside ID (public: what `revoke`
  and the audit log name) and the token's name, scopes, creator and expiry.
- Scopes: `read` and `write` (every resource; write implies read), or `RESOURCE:read` and
  `RESOURCE:write` for one (users, teams, numbers, callback-numbers, connectors, config, audit,
  contacts, scenarios). A token acts as an admin within its scopes; it never manages tokens.
- A revoked or expired token is refused at once, on every node (the database is asked each call).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from chat.domain.audit import record
from chat.store import as_utc, utcnow
from chat.store.tables import api_tokens

PREFIX = "dct_"
RESOURCES = ("users", "teams", "numbers", "callback-numbers", "connectors", "config", "audit", "contacts", "scenarios", "canned-replies")
SCOPES = ("read", "write", *(f"{r}:{n}" for r in RESOURCES for n in ("read", "write")))


@dataclass(frozen=True)
class Token:
    id: str
    name: str
    scopes: tuple[str, ...]

    def allows(self, resource: str, need: str) -> bool:
        """Whether this token may `need` (read or write) `resource`."""
        wanted = {"write"} if need == "write" else {"read", "write"}
        return any(s in wanted or s in {f"{resource}:{w}" for w in wanted} for s in self.scopes)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create(conn, *, name: str, scopes: tuple[str, ...], created_by: str, days: float | None,
                 address: str = "") -> tuple[str, dict]:
    """A new token: the token itself (shown once, never stored) and its record."""
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + timedelta(days=days) if days else None
    await conn.execute(api_tokens.insert().values(id=token_id, name=name, secret_hash=_digest(secret), scopes=list(scopes),
                                                  created_by=created_by, created_at=now, expires_at=expires))
    await record(conn, actor=created_by, action="token.created", target=f"token:{token_id}", address=address,
                 details={"name": name, "scopes": list(scopes), "expires_at": expires.isoformat() if expires else None})
    return f"{PREFIX}{token_id}_{secret}", _shown(token_id, name, list(scopes), created_by, now, expires, None, None)


async def verify(conn, presented: str) -> Token | None:
    """The live token `presented` is, or None (unknown, wrong secret, revoked, expired)."""
    if not presented.startswith(PREFIX):
        return None
    token_id, _, secret = presented[len(PREFIX):].partition("_")
    row = (await conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id[:16]))).first()
    if row is None or not hmac.compare_digest(row.secret_hash, _digest(secret)) or row.revoked_at is not None:
        return None
    if row.expires_at is not None and as_utc(row.expires_at) <= utcnow():
        return None
    return Token(row.id, row.name, tuple(row.scopes))


async def used(conn, token_id: str, address: str, seen_before: datetime | None) -> None:
    """Note a token's use: its last use, and an audit record (once an hour per token: `seen_before`)."""
    now = utcnow()
    await conn.execute(api_tokens.update().where(api_tokens.c.id == token_id).values(last_used_at=now))
    if seen_before is None or now - seen_before > timedelta(hours=1):
        await record(conn, actor=f"token:{token_id}", action="token.used", target=f"token:{token_id}", address=address)


async def last_used(conn, token_id: str) -> datetime | None:
    value = await conn.scalar(sa.select(api_tokens.c.last_used_at).where(api_tokens.c.id == token_id))
    return as_utc(value) if value is not None else None


async def revoke(conn, *, token_id: str, by: str, address: str = "") -> bool:
    """Revoke a token (by id, or by name if no id matches); whether one was live."""
    where = sa.or_(api_tokens.c.id == token_id, api_tokens.c.name == token_id)
    done = await conn.execute(api_tokens.update().where(where, api_tokens.c.revoked_at.is_(None)).values(revoked_at=utcnow()))
    if done.rowcount:
        await record(conn, actor=by, action="token.revoked", target=f"token:{token_id}", address=address)
    return bool(done.rowcount)


async def listing(conn) -> list[dict]:
    rows = (await conn.execute(sa.select(api_tokens).order_by(api_tokens.c.created_at))).all()
    return [_shown(r.id, r.name, list(r.scopes), r.created_by, r.created_at, r.expires_at, r.revoked_at, r.last_used_at)
            for r in rows]


def _shown(token_id, name, scopes, created_by, created_at, expires_at, revoked_at, last_used_at) -> dict:
    def when(value):
        return as_utc(value).isoformat() if value is not None else None
    state = "revoked" if revoked_at else ("expired" if expires_at is not None and as_utc(expires_at) <= utcnow() else "live")
    return {"id": token_id, "name": name, "scopes": scopes, "created_by": created_by, "created_at": when(created_at),
            "expires_at": when(expires_at), "revoked_at": when(revoked_at), "last_used_at": when(last_used_at),
            "state": state}
