"""The operator's view: health.
"""
from __future__ import annotations

from aiohttp import web

from chat.config import Config


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def setup(app: web.Application, config: Config) -> None:
    """The operator's routes (and, for a long-lived part, its cleanup context)."""
    app.router.add_get("/healthz", health)
