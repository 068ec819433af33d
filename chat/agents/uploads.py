"""Attachments for replies: POST /api/uploads (an agent's file) and GET /media/out/{token} (what providers fetch).

Rules:
- An upload needs the agent's access token (401 without a live one), a type of chat.domain.uploads.TYPES as its
  Content-Type (415 otherwise, naming the types taken) and a body of at most `upload_max_bytes` (413): a
  declared length over it is refused before a byte is read, and a body without one is read only up to the
  limit (aiohttp discards what follows for a few seconds, so the client reads the answer) and the connection
  then closes.
- The answer is 201 {"id", "content_type", "size", "filename"}; the id is what `send` attaches (`media`).
- The public URL needs no session (a provider fetches it): its token is the key (chat.domain.uploads says which
  uploads it serves, and why). An unknown or malformed token is 404, as a token that never was.
- Nothing here logs a token, a file name or a byte of a file.
"""
from __future__ import annotations

from functools import partial

import structlog
from aiohttp import web

from chat.agents.api import STORE_ERRORS, ApiError, bearer, field_error, problem, session_agent
from chat.agents.media import served
from chat.domain.uploads import PUBLIC_PATH, allowed_types, media_type, store_upload, upload_by_token
from chat.store.context import COMMIT, CONFIG, DB

log = structlog.get_logger()
CHUNK = 64 * 1024
MAX_FILENAME = 200  # uploads.filename's width


async def upload(request: web.Request) -> web.Response:
    try:
        agent = await session_agent(request, bearer(request))
        content_type = media_type(request.headers.get("Content-Type"))
        if content_type is None:
            raise ApiError(415, "Unsupported Media Type", f"didchat sends these types of file: {allowed_types()}; "
                           "give the file's type as the Content-Type")
        filename = _filename(request.query.get("filename"))
        data = await _body(request, request.app[CONFIG].upload_max_bytes)
        stored = await request.app[COMMIT].run(partial(store_upload, user_id=agent.id, content_type=content_type,
                                                       filename=filename, data=data))
    except ApiError as err:
        answer = problem(err.status, err.title, err.detail, err.errors, err.headers)
        if err.status == 413:
            answer.force_close()  # the rest of the body is not read: this connection carries nothing more
        return answer
    except STORE_ERRORS as err:
        log.warning("upload.store_unavailable", error=type(err).__name__)
        return problem(503, "Service Unavailable", "the store did not answer: upload the file again in a moment")
    log.info("upload.stored", user=agent.name, upload_id=stored["id"], content_type=content_type, size=len(data))
    return web.json_response(stored, status=201)


async def _body(request: web.Request, limit: int) -> bytes:
    """The request's body, read no further than `limit` bytes (413 past it), or 400 when empty."""
    if (request.content_length or 0) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    if not size:
        raise ApiError(400, "Bad Request", "the body is empty: send the file's bytes as the body")
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "Content Too Large", f"the file is larger than {limit} bytes (upload_max_bytes)")


def _filename(given: str | None) -> str | None:
    """The file's name as shown (its last path part), or 400 naming `filename`."""
    if given is None or not given.strip():
        return None
    name = given.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or len(name) > MAX_FILENAME or not name.isprintable():
        raise ApiError(400, "Bad Request", f"filename must be 1 to {MAX_FILENAME} printable characters",
                       [field_error(["filename"], f"must be 1 to {MAX_FILENAME} printable characters")])
    return name


async def public(request: web.Request) -> web.Response:
    """An upload as the provider fetches it, by the token in its URL (the extension after it is the type's)."""
    token = request.match_info["name"].split(".", 1)[0]
    try:
        async with request.app[DB].read() as conn:
            found = await upload_by_token(conn, token)
    except STORE_ERRORS as err:  # the provider fetches again later (its own retries)
        log.warning("upload.store_unavailable", error=type(err).__name__)
        return web.Response(status=503, text="try again later\n", headers={"Retry-After": "5", "Cache-Control": "no-store"})
    if found is None:
        return web.Response(status=404, text="no such file\n", headers={"Cache-Control": "no-store"})
    log.info("upload.fetched", upload_id=found.id)
    return served(found.data, found.content_type, found.filename or f"attachment-{found.id}", "no-store")


def setup(app: web.Application) -> None:
    app.router.add_post("/api/uploads", upload)
    app.router.add_get(PUBLIC_PATH + "{name}", public)
