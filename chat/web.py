"""HTTP: the browser client's files, and the routes of every HTTP module.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from chat import login, ops, sessions, webhooks
from chat.config import Config
from chat.replies import error
from chat.services import SERVICES

STATIC = Path(__file__).resolve().parent / "static"


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def vendor_socketio(request: web.Request) -> web.StreamResponse:
    path = request.app[SERVICES].vendor_dir / "socket.io.min.js"
    if not path.exists():
        return error(500, f"{path} is missing: run `npm ci` in the didchat folder (make demo does it)")
    return web.FileResponse(path)


def add_routes(app: web.Application, config: Config) -> None:
    """Every HTTP route; each module adds its own (and its cleanup context, if it owns a long-lived part)."""
    webhooks.setup(app, config)
    login.setup(app, config)
    sessions.setup(app, config)
    ops.setup(app, config)
    app.router.add_get("/", index)
    app.router.add_get("/static/vendor/socket.io.min.js", vendor_socketio)
    app.router.add_static("/static/", STATIC)
