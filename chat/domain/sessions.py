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
from chat.store.tables import sessions

REFRESH_SECONDS = 12 * 3600  # a session unused this long ends


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


async def session_alive(conn, session_id: str, user_id: int) -> bool:
    """Whether this session of this user has neither ended nor lapsed."""
    row = (await conn.execute(sa.select(sessions.c.revoked_at, sessions.c.expires_at)
                              .where(sessions.c.id == session_id, sessions.c.user_id == user_id))).first()
    return row is not None and row.revoked_at is None and as_utc(row.expires_at) > utcnow()


async def _revoke(conn, session_id: str, reason: str) -> None:
    await conn.execute(sessions.update().where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
                       .values(revoked_at=utcnow(), revoked_reason=reason))
