"""Agent sessions in the store (units of work): one row per login, its refresh token rotated on every use.

Rules: only the SHA-256 of a refresh token is stored; a token that is not the current one ends
the whole session (a copy being reused); lapsed sessions of a user are dropped at their next login.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from chat.store import as_utc, utcnow
from chat.store.tables import sessions, users

REFRESH_SECONDS = 12 * 3600  # a session unused this long ends
# Built once: a statement object keeps its cache key, so each connect of a storm skips building it.
_LIVE_PRESENCE = (
    sa.select(users.c.presence).join_from(sessions, users, users.c.id == sessions.c.user_id)
    .where(sessions.c.id == sa.bindparam("session_id"), sessions.c.user_id == sa.bindparam("user_id"),
           sessions.c.revoked_at.is_(None), sessions.c.expires_at > sa.bindparam("now"))
)


def same_digest(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class Rotation:
    """What presenting a refresh token did: `user_id` set when it was current, `reused` when it was not."""

    user_id: int | None = None
    reused: bool = False


async def open_session(conn, session_id: str, user_id: int, token_hash: str) -> None:
    """Record a new login; its user's sessions that lapsed are dropped."""
    now = utcnow()
    await conn.execute(sessions.delete().where(sessions.c.user_id == user_id, sessions.c.expires_at < now))
    await conn.execute(sessions.insert().values(
        id=session_id, user_id=user_id, token_hash=token_hash, created_at=now, last_used_at=now,
        expires_at=now + timedelta(seconds=REFRESH_SECONDS)))


async def rotate_session(conn, session_id: str, presented: str, replacement: str) -> Rotation:
    """Replace the session's current token; a token that is not the current one ends the session."""
    row = (await conn.execute(sa.select(sessions).where(sessions.c.id == session_id))).first()
    now = utcnow()
    if row is None or row.revoked_at is not None or as_utc(row.expires_at) <= now:
        return Rotation()
    if not same_digest(row.token_hash, presented):
        await _revoke(conn, session_id, "reuse")
        return Rotation(row.user_id, reused=True)
    await conn.execute(sessions.update().where(sessions.c.id == session_id).values(
        token_hash=replacement, last_used_at=now, expires_at=now + timedelta(seconds=REFRESH_SECONDS)))
    return Rotation(row.user_id)


async def end_session(conn, session_id: str) -> None:
    """Log out: the session's tokens mint nothing more."""
    await _revoke(conn, session_id, "logout")


async def live_presence(conn, session_id: str, user_id: int) -> str | None:
    """At connect, in one read: the presence the user chose last if this session of theirs lives, else None."""
    params = {"session_id": session_id, "user_id": user_id, "now": utcnow()}
    return await conn.scalar(_LIVE_PRESENCE, params)


async def session_alive(conn, session_id: str, user_id: int) -> bool:
    """Whether this session of this user has neither ended nor lapsed."""
    return await live_presence(conn, session_id, user_id) is not None


async def _revoke(conn, session_id: str, reason: str) -> None:
    await conn.execute(sessions.update().where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
                       .values(revoked_at=utcnow(), revoked_reason=reason))
