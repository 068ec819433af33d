"""Agent login: name and password in, a session out.

Rules: a wrong name and a wrong password get the same answer and cost the same time.
"""
from __future__ import annotations

import structlog
from aiohttp import web

from chat.config import Config
from chat.auth import Unauthorized, check_password
from chat.replies import error
from chat.services import SERVICES
from chat.sessions import start_session

log = structlog.get_logger()


async def login(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    try:
        body = await request.json()
        name, password = str(body["username"]), str(body["password"])
    except (ValueError, KeyError, TypeError):
        return error(400, "send JSON with username and password")
    try:
        async with svc.db.read() as conn:
            uid = await check_password(conn, name, password)
    except Unauthorized:
        return error(401, "wrong username or password")
    return start_session(svc, uid)


def setup(app: web.Application, config: Config) -> None:
    """The login route."""
    app.router.add_post("/api/login", login)
