"""Agent authentication: passwords (argon2), short-lived access tokens and a refresh cookie (JWT).

Rules: access tokens live `token_minutes` and travel in the Socket.IO `auth` payload; the
refresh token lives 12 hours in an httpOnly, SameSite=Strict cookie scoped to /api.
"""
from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
import sqlalchemy as sa
from aiohttp import web
from argon2.exceptions import VerificationError

from chat.directory import Agent, hasher
from chat.store.tables import users

REFRESH_COOKIE = "didchat_refresh"
REFRESH_SECONDS = 12 * 3600


class Unauthorized(Exception):
    pass


@dataclass(frozen=True)
class Tokens:
    secret: str
    access_seconds: float

    def issue(self, agent: Agent, kind: str = "access") -> tuple[str, float]:
        """A signed token for `agent` and when it expires (unix seconds)."""
        lifetime = self.access_seconds if kind == "access" else REFRESH_SECONDS
        exp = time.time() + lifetime
        claims = {"sub": str(agent.id), "name": agent.name, "role": agent.role, "kind": kind, "exp": int(exp)}
        return jwt.encode(claims, self.secret, algorithm="HS256"), exp

    def verify(self, token: object, kind: str = "access") -> int:
        """The user id a valid token names, or Unauthorized."""
        if not isinstance(token, str):
            raise Unauthorized("no token")
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
        except jwt.PyJWTError as err:
            raise Unauthorized(str(err)) from None
        if claims.get("kind") != kind:
            raise Unauthorized("wrong kind of token")
        return int(claims["sub"])


def secret_key(configured: str | None, data_dir: str) -> str:
    """The configured signing key, or one generated once and kept in the data folder."""
    if configured:
        return configured
    path = Path(data_dir) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


async def check_password(conn, name: str, password: str) -> int:
    """The user id for a correct name and password, or Unauthorized."""
    row = (await conn.execute(sa.select(users.c.id, users.c.password_hash).where(users.c.name == name))).first()
    if row is None:
        await asyncio.to_thread(hasher.hash, password)  # same cost either way: no user enumeration by timing
        raise Unauthorized("unknown user")
    try:
        await asyncio.to_thread(hasher.verify, row.password_hash, password)
    except VerificationError:
        raise Unauthorized("wrong password") from None
    return row.id


def session_payload(tokens: Tokens, agent: Agent, response: web.Response) -> dict:
    """The login/refresh answer; sets a fresh refresh cookie on `response`."""
    token, exp = tokens.issue(agent)
    refresh, _ = tokens.issue(agent, "refresh")
    response.set_cookie(
        REFRESH_COOKIE, refresh, max_age=REFRESH_SECONDS, path="/api", httponly=True, samesite="Strict"
    )
    user = {"name": agent.name, "display_name": agent.display_name, "role": agent.role}
    return {"token": token, "expires_at": exp, "user": user}
