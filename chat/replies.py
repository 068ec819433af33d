"""The JSON error answer every HTTP handler gives."""
from __future__ import annotations

from aiohttp import web


def error(status: int, message: str, field: str | None = None, headers: dict | None = None) -> web.Response:
    """`{"error", "field"}` with `status`; `field` names the part of the request at fault."""
    return web.json_response({"error": message, "field": field}, status=status, headers=headers)
