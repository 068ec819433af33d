"""Agent authentication: passwords (argon2), short-lived access tokens (JWT) and opaque refresh tokens.

Rules: an access token lives `token_minutes`, names its user and its session, and travels in
the Socket.IO `auth` payload (and the `auth` event); a refresh token is `<session id>.<random>`,
lives in an httpOnly, SameSite=Strict cookie scoped to /api (Secure behind https), and only its
SHA-256 is stored (chat.agents.sessions). No token or key appears in a repr, a log line or an error.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field

import jwt
from aiohttp import web

from chat.domain.directory import Agent, password_of
from chat.domain.sessions import REFRESH_SECONDS

REFRESH_COOKIE = "didchat_refresh"


class Unauthorized(Exception):
    pass


@dataclass(frozen=True)
class Claims:
    """What a valid access token says."""

    user_id: int
    session_id: str
    expires_at: float  # unix seconds


@dataclass(frozen=True)
class Tokens:
    secret: str = field(repr=False)
    access_seconds: float

    def issue(self, agent: Agent, session_id: str) -> tuple[str, float]:
        """A signed access token for `agent` in this session and when it expires (unix seconds)."""
        exp = time.time() + self.access_seconds
        claims = {"sub": str(agent.id), "sid": session_id, "name": agent.name, "role": agent.role,
                  "kind": "access", "exp": exp}
        return jwt.encode(claims, self.secret, algorithm="HS256"), exp

    def verify(self, token: object) -> Claims:
        """The claims of a valid, unexpired access token, or Unauthorized."""
        if not isinstance(token, str):
            raise Unauthorized("no token")
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"], options={"require": ["exp", "sub", "sid"]})
            if claims.get("kind") != "access":
                raise Unauthorized("wrong kind of token")
            return Claims(int(claims["sub"]), str(claims["sid"]), float(claims["exp"]))
        except (jwt.PyJWTError, TypeError, ValueError):
            raise Unauthorized("invalid or expired token") from None


REFRESH_FORM = re.compile(r"([0-9a-f]{32})\.[A-Za-z0-9_-]{43}")  # what new_refresh makes, and nothing else


def new_session_id() -> str:
    return secrets.token_hex(16)


def new_refresh(session_id: str) -> str:
    """A fresh refresh token for this session."""
    return f"{session_id}.{secrets.token_urlsafe(32)}"


def refresh_session(token: object) -> str:
    """The session a refresh token claims to belong to, or Unauthorized."""
    match = REFRESH_FORM.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise Unauthorized("no refresh token")
    return match.group(1)


def digest(token: str) -> str:
    """What is stored of a refresh token (it is random and long: a plain hash suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


async def check_password(db, name: str, password: str, verify) -> int:
    """The user id for a correct name and password, or Unauthorized.

    `verify(stored_hash | None, password)` (chat.agents.throttle.Hashing) checks an unknown name at the
    same cost as a known one: no user enumeration by timing. The database connection is given
    back before the hash, which may wait its turn.
    """
    async with db.read() as conn:
        row = await password_of(conn, name)
    if not await verify(row.password_hash if row else None, password):
        raise Unauthorized("unknown user" if row is None else "wrong password")
    return row.id


def session_payload(tokens: Tokens, agent: Agent, session_id: str, refresh: str, secure: bool,
                    response: web.Response) -> dict:
    """The login/refresh answer; sets the session's current refresh token as the cookie on `response`."""
    token, exp = tokens.issue(agent, session_id)
    response.set_cookie(REFRESH_COOKIE, refresh, max_age=REFRESH_SECONDS, path="/api", httponly=True,
                        samesite="Strict", secure=secure)
    user = {"name": agent.name, "display_name": agent.display_name, "role": agent.role}
    return {"token": token, "expires_at": exp, "user": user}


TOKENS = web.AppKey("tokens", Tokens)
