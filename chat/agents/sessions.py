"""Agent sessions, kept on the server: a login starts one, refresh rotates its token, logout ends it.

Rules: a session is one login and the one family of its refresh tokens; the cookie holds the
current token, replaced on every refresh. A token that was already replaced (a copy being
reused) ends the whole session, as logout does; either way every socket of the session is told
(`session_ended`) and disconnected. Only the SHA-256 of a refresh token is stored.
"""
from __future__ import annotations

import json
from functools import partial

import structlog
from aiohttp import web

from chat.agents.auth import (
    REFRESH_COOKIE,
    TOKENS,
    Unauthorized,
    digest,
    new_refresh,
    new_session_id,
    refresh_session,
    session_payload,
)
from chat.config import Config
from chat.domain.sessions import end_session, open_session, rotate_session
from chat.replies import error
from chat.store.context import COMMIT, CONFIG
from chat.workers.hub import HUB
from chat.workers.running import DIRECTORY

log = structlog.get_logger()


async def start_session(request: web.Request, uid: int) -> web.Response:
    """Issue a session for a user who just proved who they are."""
    app = request.app
    if uid not in app[DIRECTORY].current.agents:
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
    if rotation.user_id is None or rotation.reused or rotation.user_id not in app[DIRECTORY].current.agents:
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
    payload = session_payload(app[TOKENS], app[DIRECTORY].current.agents[uid], session_id, refresh_token, _secure(app), response)
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
    agent = app[DIRECTORY].current.agents.get(uid) if uid is not None else None
    return agent.name if agent else None


def setup(app: web.Application, config: Config) -> None:
    """The session routes."""
    app.router.add_post("/api/refresh", refresh)
    app.router.add_post("/api/logout", logout)
