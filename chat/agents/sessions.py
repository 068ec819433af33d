"""Agent sessions, kept on the server: a login starts one, refresh rotates its token, logout ends it.

Rules: a session is one login and the one family of its refresh tokens; the cookie holds the
current token, replaced on every refresh. A token that was already replaced (a copy being
reused) ends the whole session, as logout does; either way every socket of the session is told
(`session_ended`) and disconnected. Only the SHA-256 of a refresh token is stored.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import sqlalchemy as sa
import structlog
from aiohttp import web

from chat.agents.auth import (
    REFRESH_COOKIE,
    REFRESH_SECONDS,
    TOKENS,
    Unauthorized,
    digest,
    new_refresh,
    new_session_id,
    refresh_session,
    same_digest,
    session_payload,
)
from chat.config import Config
from chat.domain.directory import DIRECTORY
from chat.replies import error
from chat.store import as_utc, utcnow
from chat.store.context import COMMIT, CONFIG
from chat.store.tables import sessions
from chat.workers.hub import HUB

log = structlog.get_logger()


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


async def start_session(request: web.Request, uid: int) -> web.Response:
    """Issue a session for a user who just proved who they are."""
    app = request.app
    if uid not in app[DIRECTORY].agents:
        return error(401, "this user no longer exists")
    session_id = new_session_id()
    refresh = new_refresh(session_id)
    await app[COMMIT].run(partial(open_session, session_id=session_id, user_id=uid, token_hash=digest(refresh)))
    return _answer(app, uid, session_id, refresh)


async def refresh(request: web.Request) -> web.Response:
    """A new access token (and refresh cookie) for the session the cookie names."""
    app = request.app
    try:
        presented = request.cookies.get(REFRESH_COOKIE)
        session_id = refresh_session(presented)
    except Unauthorized:
        return error(401, "not logged in")
    assert presented is not None  # refresh_session refused a missing cookie
    replacement = new_refresh(session_id)
    rotation = await app[COMMIT].run(partial(rotate_session, session_id=session_id, presented=digest(presented),
                                            replacement=digest(replacement)))
    if rotation.reused:
        log.warning("session.token_reused", user=_name(app, rotation.user_id), address=request.remote)
        await app[HUB].end_session(session_id, "ended")
    if rotation.user_id is None or rotation.reused or rotation.user_id not in app[DIRECTORY].agents:
        return _logged_out(app, 401)
    return _answer(app, rotation.user_id, session_id, replacement)


async def logout(request: web.Request) -> web.Response:
    """End the cookie's session and disconnect its sockets, in every tab."""
    app = request.app
    try:
        session_id = refresh_session(request.cookies.get(REFRESH_COOKIE))
    except Unauthorized:
        return _logged_out(app, 204)
    await app[COMMIT].run(partial(end_session, session_id=session_id))
    await app[HUB].end_session(session_id, "logged_out")
    return _logged_out(app, 204)


def _answer(app: web.Application, uid: int, session_id: str, refresh_token: str) -> web.Response:
    response = web.Response(content_type="application/json")
    payload = session_payload(app[TOKENS], app[DIRECTORY].agents[uid], session_id, refresh_token, _secure(app), response)
    response.text = json.dumps(payload)
    return response


def _logged_out(app: web.Application, status: int) -> web.Response:
    response = error(401, "not logged in") if status == 401 else web.Response(status=status)
    response.del_cookie(REFRESH_COOKIE, path="/api", secure=_secure(app), httponly=True, samesite="Strict")
    return response


def _secure(app: web.Application) -> bool:
    """Browsers send a Secure cookie only over https: set it whenever the public URL is https."""
    return app[CONFIG].public_url.lower().startswith("https://")


def _name(app: web.Application, uid: int | None) -> str | None:
    agent = app[DIRECTORY].agents.get(uid) if uid is not None else None
    return agent.name if agent else None


def setup(app: web.Application, config: Config) -> None:
    """The session routes."""
    app.router.add_post("/api/refresh", refresh)
    app.router.add_post("/api/logout", logout)
