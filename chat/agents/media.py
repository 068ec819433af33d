"""Inbound media, fetched through didchat: GET /api/media/{message_id}/{n} with the agent's access token.

Rules: the provider's media URLs need the provider's credentials (gateway.providers: each provider's
`media_headers`), which never reach a browser; an agent gets a message's attachment only if they may see
its conversation (chat.domain.media), else 404 as for a message that does not exist; media larger than
`media_max_bytes` is refused (413) without being read whole; what the provider answers otherwise is a
plain problem (404 gone, 502, 504). The answer is never sniffed (nosniff), runs nothing (a sandbox CSP), and
only images (not SVG), audio and video are shown inline; anything else downloads.
"""
from __future__ import annotations

import structlog
from aiohttp import web

from chat.agents.api import ApiError, bearer, problem, session_agent
from chat.domain.media import attachment
from chat.store.context import CONFIG, DB
from chat.workers.running import DIRECTORY
from gateway import PROVIDERS
from gateway.providers.http import MediaError, fetch_media

log = structlog.get_logger()
INLINE = ("image/", "audio/", "video/")


async def media(request: web.Request) -> web.StreamResponse:
    try:
        agent = await session_agent(request, bearer(request))
        try:
            message_id, index = int(request.match_info["message"]), int(request.match_info["index"])
        except ValueError:
            raise ApiError(404, "Not Found", "no such attachment") from None
        async with request.app[DB].read() as conn:
            found = await attachment(conn, agent, message_id, index)
        if found is None:
            raise ApiError(404, "Not Found", "no such attachment")
        running = request.app[DIRECTORY].current.config
        conn_settings = next((c for c in running.connectors if c.name == found.connector), None) if running else None
        provider = PROVIDERS.get(conn_settings.type) if conn_settings is not None else None
        headers = provider.media_headers(conn_settings) if provider is not None and provider.media_headers else {}
        try:
            content_type, body = await fetch_media(found.url, headers, request.app[CONFIG].media_max_bytes)
        except MediaError as err:
            log.warning("media.fetch_failed", message_id=message_id, connector=found.connector, status=err.status)
            raise ApiError(err.status, _title(err.status), err.message) from None
    except ApiError as err:
        return problem(err.status, err.title, err.detail, err.errors, err.headers)
    inline = content_type.startswith(INLINE) and "svg" not in content_type  # an SVG may hold script: it downloads
    return web.Response(body=body, content_type=content_type, headers={
        "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="media-{message_id}-{index}"',
        "Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox"})


def _title(status: int) -> str:
    return {404: "Not Found", 413: "Content Too Large", 502: "Bad Gateway", 504: "Gateway Timeout"}.get(status, "Error")


def setup(app: web.Application) -> None:
    app.router.add_get("/api/media/{message}/{index}", media)
