"""Media, fetched through didchat: GET /api/media/{message_id}/{n} with the agent's access token.

Rules: an inbound message's media URLs need the provider's credentials (gateway.providers: each provider's
`media_headers`), which never reach a browser; an outbound message's attachments are the agent's uploads,
read from the store (chat.domain.uploads), no provider asked. An agent gets a message's attachment only if
they may see its conversation (chat.domain.media), else 404 as for a message that does not exist; media
larger than `media_max_bytes` is refused (413) without being read whole; what the provider answers otherwise
is a plain problem (404 gone, 502, 504). Every answer (`served`, also the providers' public URL of uploads) is
never sniffed (nosniff), runs nothing (a sandbox CSP), and only images (not SVG), audio and video are shown
inline; anything else downloads.
"""
from __future__ import annotations

from urllib.parse import quote

import structlog
from aiohttp import web

from chat.agents.api import ApiError, bearer, problem, session_agent
from chat.domain.media import Attachment, attachment
from chat.domain.uploads import upload_by_id
from chat.store.context import CONFIG, DB
from chat.workers.running import DIRECTORY
from gateway import PROVIDERS
from gateway.providers.http import MediaError, fetch_media

log = structlog.get_logger()
INLINE = ("image/", "audio/", "video/")
SANDBOX = "default-src 'none'; sandbox"


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
        content_type, body = await (_uploaded(request, found) if found.upload_id is not None else
                                    _fetched(request, found, message_id))
    except ApiError as err:
        return problem(err.status, err.title, err.detail, err.errors, err.headers)
    return served(body, content_type, found.filename or f"media-{message_id}-{index}", "private, max-age=3600")


async def _uploaded(request: web.Request, found: Attachment) -> tuple[str, bytes]:
    """An outbound attachment: the agent's upload, from the store."""
    async with request.app[DB].read() as conn:
        upload = await upload_by_id(conn, found.upload_id) if found.upload_id is not None else None
    if upload is None:
        raise ApiError(404, "Not Found", "this attachment was deleted")
    return upload.content_type, upload.data


async def _fetched(request: web.Request, found: Attachment, message_id: int) -> tuple[str, bytes]:
    """An inbound attachment: fetched from the provider with the connector's credentials."""
    running = request.app[DIRECTORY].current.config
    conn_settings = next((c for c in running.connectors if c.name == found.connector), None) if running else None
    provider = PROVIDERS.get(conn_settings.type) if conn_settings is not None else None
    headers = provider.media_headers(conn_settings) if provider is not None and provider.media_headers else {}
    try:
        return await fetch_media(found.url, headers, request.app[CONFIG].media_max_bytes)
    except MediaError as err:
        log.warning("media.fetch_failed", message_id=message_id, connector=found.connector, status=err.status)
        raise ApiError(err.status, _title(err.status), err.message) from None


def served(body: bytes, content_type: str, filename: str, cache: str) -> web.Response:
    """Media as didchat answers it: never sniffed, running nothing, inline only when it is safe to show."""
    kind = content_type.split(";")[0].strip().lower()
    inline = kind.startswith(INLINE) and "svg" not in kind  # an SVG may hold script: it downloads
    return web.Response(body=body, headers={
        "Content-Type": content_type, "Content-Disposition": disposition("inline" if inline else "attachment", filename),
        "Cache-Control": cache, "X-Content-Type-Options": "nosniff", "Content-Security-Policy": SANDBOX})


def disposition(kind: str, filename: str) -> str:
    """A Content-Disposition with the file's name (RFC 6266: an ASCII fallback, and the name itself in UTF-8)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _title(status: int) -> str:
    return {404: "Not Found", 413: "Content Too Large", 502: "Bad Gateway", 504: "Gateway Timeout"}.get(status, "Error")


def setup(app: web.Application) -> None:
    app.router.add_get("/api/media/{message}/{index}", media)
