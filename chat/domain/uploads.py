"""Files agents attach to replies: which types are taken, storing them, and reading them back (the uploads table).

Rules:
- An upload is its agent's: a send attaches only its sender's own uploads (`owned_uploads`); another agent's id
  is answered as one that does not exist, so nobody learns which ids do.
- Its token (32 random bytes, url-safe) is the only key of its public URL (`public_url`), which MMS providers
  fetch: it leaves didchat only in a send to the provider, never in an answer to an agent, a message payload
  or a log line. So any upload may be served by its token: nobody holds the token of one that was not sent.
  It is served for PUBLIC_SECONDS after the upload (providers fetch at once; the outbox gives up long before).
- The types taken are a table (TYPES: the media type and the extension its public URL ends with, which
  providers that guess a type from the URL read): images (no SVG, which may hold script), audio, video, PDF,
  vCard and plain text. Anything else is refused before the body is read.
- Messages keep what they attached as `media: [{"upload_id", "content_type", "filename"}]` (never the token).
- An upload goes with one message: the send that attaches it marks it (`attached_at`, in the send's transaction,
  so a refused send attaches nothing, and of two sends racing for it one gets it), and it is deleted with that
  message (chat.domain.erasure: a contact's deletion, retention). One no send attached is deleted UNSENT_SECONDS
  after it came (`expire_unsent`, on the retention sweep: each node deletes rows no other node holds).
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message

import sqlalchemy as sa

from chat.store import as_utc, utcnow
from chat.store.tables import uploads

MAX_ATTACHMENTS = 10  # Twilio's, Telnyx's and Plivo's most media on one message
PUBLIC_SECONDS = 7 * 86400
PUBLIC_PATH = "/media/out/"
UNSENT_SECONDS = 86400  # an upload no send attached is deleted a day after it came
SWEEP_BATCH = 200  # unsent uploads deleted per transaction (each holds a file)
DELETE_CHUNK = 1000  # ids per statement (SQLite's bound parameters are limited)
TYPES = {
    "image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
    "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/aac": ".aac", "audio/ogg": ".ogg", "audio/wav": ".wav",
    "audio/amr": ".amr", "audio/3gpp": ".3gp", "audio/webm": ".weba",
    "video/mp4": ".mp4", "video/mpeg": ".mpeg", "video/quicktime": ".mov", "video/webm": ".webm",
    "video/3gpp": ".3gp", "video/ogg": ".ogv",
    "application/pdf": ".pdf", "text/vcard": ".vcf", "text/plain": ".txt",
}
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "audio/mp3": "audio/mpeg",
           "audio/x-wav": "audio/wav", "text/x-vcard": "text/vcard", "text/directory": "text/vcard"}
CHARSET = re.compile(r"[A-Za-z0-9_.:-]{1,40}")
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # what secrets.token_urlsafe(32) makes, and nothing else
ADD_UPLOAD = uploads.insert()
UNSENT = uploads.c.attached_at.is_(None)


@dataclass(frozen=True)
class Stored:
    """An upload's bytes, as served."""

    id: int
    user_id: int
    content_type: str
    filename: str | None
    data: bytes
    created_at: datetime


def media_type(header: str | None) -> str | None:
    """The type of TYPES a Content-Type header names (its charset kept for text), or None when it is not one."""
    if not header:
        return None
    named = header.split(";", 1)[0].strip().lower()
    kind = ALIASES.get(named, named)
    if kind not in TYPES:
        return None
    parsed = Message()
    parsed["Content-Type"] = header
    charset = parsed.get_param("charset")
    if kind.startswith("text/") and isinstance(charset, str) and CHARSET.fullmatch(charset):
        return f"{kind}; charset={charset.lower()}"
    return kind


def allowed_types() -> str:
    """The types taken, for a refusal's words."""
    return ", ".join(sorted(TYPES))


def public_url(base: str, token: str, content_type: str) -> str:
    """The absolute URL a provider fetches an upload from, below the configuration's public_url."""
    return f"{base.rstrip('/')}{PUBLIC_PATH}{token}{TYPES.get(content_type.split(';')[0], '')}"


async def store_upload(conn, user_id: int, content_type: str, filename: str | None, data: bytes) -> dict:
    """Keep an agent's file; what the upload's answer says of it (never its token)."""
    values = {"token": secrets.token_urlsafe(32), "user_id": user_id, "content_type": content_type,
              "filename": filename, "size": len(data), "data": data, "created_at": utcnow()}
    added = await conn.execute(ADD_UPLOAD, values)
    return {"id": added.inserted_primary_key[0], "content_type": content_type, "size": len(data), "filename": filename}


async def owned_uploads(conn, user_id: int, ids: list[int]) -> list[dict] | None:
    """The messages.media items of these uploads, in the order given, marked attached, if every one is the agent's
    and attached to no message yet; else None (the send is then refused, and its transaction marks nothing)."""
    rows = (await conn.execute(sa.select(uploads.c.id, uploads.c.content_type, uploads.c.filename)
                               .where(uploads.c.id.in_(ids), uploads.c.user_id == user_id, UNSENT))).all()
    found = {row.id: row for row in rows}
    if len(found) != len(set(ids)):
        return None
    # Under the rows' locks (PostgreSQL): a send beside this one that marked one first leaves it out of the count.
    marked = await conn.execute(uploads.update().where(uploads.c.id.in_(list(found)), UNSENT).values(attached_at=utcnow()))
    if marked.rowcount != len(found):
        return None
    return [{"upload_id": i, "content_type": found[i].content_type, "filename": found[i].filename} for i in ids]


async def upload_tokens(conn, ids: list[int]) -> dict[int, str]:
    """upload id -> its token, for the URLs a send hands the provider."""
    rows = (await conn.execute(sa.select(uploads.c.id, uploads.c.token).where(uploads.c.id.in_(ids)))).all()
    return {row.id: row.token for row in rows}


async def upload_by_id(conn, upload_id: int) -> Stored | None:
    return _stored((await conn.execute(_SELECT.where(uploads.c.id == upload_id))).first())


async def upload_by_token(conn, token: str) -> Stored | None:
    """The upload a public URL names while it is served (PUBLIC_SECONDS), else None."""
    if not TOKEN.fullmatch(token):
        return None
    found = _stored((await conn.execute(_SELECT.where(uploads.c.token == token))).first())
    if found is None or utcnow() - found.created_at > timedelta(seconds=PUBLIC_SECONDS):
        return None
    return found


_SELECT = sa.select(uploads.c.id, uploads.c.user_id, uploads.c.content_type, uploads.c.filename, uploads.c.data,
                    uploads.c.created_at)


def _stored(row) -> Stored | None:
    if row is None:
        return None
    return Stored(row.id, row.user_id, row.content_type, row.filename, bytes(row.data), as_utc(row.created_at))


def attached_ids(media_lists) -> list[int]:
    """The upload ids that messages' `media` values name (inbound media names none)."""
    return sorted({item["upload_id"] for media in media_lists if isinstance(media, list) for item in media
                   if isinstance(item, dict) and isinstance(item.get("upload_id"), int)})


async def delete_uploads(conn, ids: list[int]) -> int:
    """Delete these uploads (those of messages being deleted); how many there were."""
    gone = 0
    for start in range(0, len(ids), DELETE_CHUNK):
        gone += (await conn.execute(uploads.delete().where(uploads.c.id.in_(ids[start:start + DELETE_CHUNK])))).rowcount
    return gone


async def expire_unsent(conn, now: datetime | None = None) -> int:
    """Delete up to SWEEP_BATCH uploads no send attached within UNSENT_SECONDS; how many."""
    cutoff = (now or utcnow()) - timedelta(seconds=UNSENT_SECONDS)
    picked = (sa.select(uploads.c.id).where(UNSENT, uploads.c.created_at < cutoff).order_by(uploads.c.created_at)
              .limit(SWEEP_BATCH).with_for_update(skip_locked=True).correlate(None))
    return (await conn.execute(uploads.delete().where(uploads.c.id.in_(picked)))).rowcount
