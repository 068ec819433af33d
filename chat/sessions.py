"""Agent sessions over HTTP: refresh a short-lived access token from the refresh cookie; log out.
"""
from __future__ import annotations

import json

from aiohttp import web

from chat.config import Config
from chat.auth import REFRESH_COOKIE, Unauthorized, session_payload
from chat.replies import error
from chat.services import SERVICES, Services


async def refresh(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    try:
        uid = svc.tokens.verify(request.cookies.get(REFRESH_COOKIE), "refresh")
    except Unauthorized:
        return error(401, "not logged in")
    return start_session(svc, uid)


def start_session(svc: Services, uid: int) -> web.Response:
    agent = svc.directory.agents.get(uid)
    if agent is None:
        return error(401, "this user no longer exists")
    response = web.Response(content_type="application/json")
    response.text = json.dumps(session_payload(svc.tokens, agent, response))
    return response


async def logout(request: web.Request) -> web.Response:
    response = web.Response(status=204)
    response.del_cookie(REFRESH_COOKIE, path="/api")
    return response


def setup(app: web.Application, config: Config) -> None:
    """The session routes (and, for a long-lived part, its cleanup context)."""
    app.router.add_post("/api/refresh", refresh)
    app.router.add_post("/api/logout", logout)
