"""Agent login: name and password in, a session out.

Rules: a wrong name and a wrong password get the same answer (401) and cost the same hash.
Every failure is logged as `login.failed` with the name, the address and the reason ("wrong
password", "unknown user", "throttled", "busy"), never the password, and counted in
`LoginGate.guard.failures`. Too many failures (chat.agents.throttle) get 429 with Retry-After and cost
no hash; too many logins already waiting for a hash get 503 with Retry-After. The address is
the TCP peer (`request.remote`); X-Forwarded-For is read only when that peer is one of
`login.trusted_proxies`, and then from the right, up to the first address that is not a
trusted proxy (what a client writes further left is not believed). Behind a proxy that is not
listed, every login comes from the proxy's address and shares its limit.
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv4Network, IPv6Network, ip_address

import structlog
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from chat.agents.auth import Unauthorized, check_password
from chat.agents.sessions import start_session
from chat.agents.throttle import Busy, Hashing, LoginGuard, Throttled
from chat.config import Config
from chat.domain.audit import record_unit
from chat.domain.directory import hasher
from chat.replies import error
from chat.store.context import COMMIT, DB

log = structlog.get_logger()
MAX_NAME = 200  # longer than any user name the store holds
BUSY_RETRY_SECONDS = 1


@dataclass(frozen=True)
class LoginGate:
    """Who may try a password now, and the bounded hashing that checks it."""

    guard: LoginGuard
    hashing: Hashing
    trusted: tuple[IPv4Network | IPv6Network, ...] = ()  # proxies whose X-Forwarded-For is believed

    async def check(self, db, name: str, password: str, address: str) -> int:
        """The user id for a right password; Throttled, Busy or Unauthorized otherwise."""
        self.guard.admit(name, address, time.monotonic())
        outcome = "unchecked"
        try:
            with self.hashing.slot() as verify:
                uid = await check_password(db, name, password, verify)
            outcome = "ok"
            return uid
        except Unauthorized:
            outcome = "failed"
            raise
        finally:
            self.guard.settle(name, address, time.monotonic(), outcome)


LOGIN = web.AppKey("login", LoginGate)


def client_address(peer: str | None, forwarded: list[str], trusted: tuple) -> str:
    """Who a login came from: the TCP peer, or the nearest hop before it that is no trusted proxy."""
    hops = [hop.strip() for header in forwarded for hop in header.split(",")]
    chain = [*hops, peer or "unknown"]
    for hop in reversed(chain):
        if not _is_trusted(hop, trusted):
            return hop[:64]  # a bound on what a key (and a log line) may hold
    return chain[0][:64]


def _is_trusted(hop: str, trusted: tuple) -> bool:
    try:
        address = ip_address(hop)
    except ValueError:
        return False
    return any(address in network for network in trusted)


class BadCredentials(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


async def login(request: web.Request) -> web.Response:
    gate = request.app[LOGIN]
    try:
        name, password = await _credentials(request)
    except BadCredentials as err:
        return error(400, str(err), err.field)
    address = client_address(request.remote, request.headers.getall("X-Forwarded-For", []), gate.trusted)
    try:
        uid = await gate.check(request.app[DB], name, password, address)
    except Throttled as err:
        return _refused(gate, name, address, "throttled", 429, err.retry_after,
                        f"too many failed logins; try again in {math.ceil(err.retry_after)} s")
    except Busy:
        return _refused(gate, name, address, "busy", 503, BUSY_RETRY_SECONDS,
                        "too many logins at once; try again in a moment")
    except Unauthorized as err:
        await _audit(request, name, address, "login.failed", {"reason": str(err)})
        return _refused(gate, name, address, str(err), 401, None, "wrong username or password")
    except (SQLAlchemyError, OSError) as err:
        log.warning("login.store_failed", user=name, address=address, error=type(err).__name__)
        return error(503, "temporarily unavailable; try again", headers={"Retry-After": str(BUSY_RETRY_SECONDS)})
    answer = await start_session(request, uid)
    if answer.status == 200:
        await _audit(request, name, address, "login", None)
    return answer


async def _audit(request: web.Request, name: str, address: str, action: str, details: dict | None) -> None:
    """An audit record of a login or a checked failure (throttled and busy ones cost no hash and are not)."""
    try:
        await request.app[COMMIT].run(partial(record_unit, actor=name[:128], action=action, address=address,
                                              details=details))
    except (SQLAlchemyError, OSError) as err:
        log.warning("audit.failed", action=action, error=type(err).__name__)


async def _credentials(request: web.Request) -> tuple[str, str]:
    """The name and password of a login body, or BadCredentials naming the field."""
    try:
        body = await request.json()
    except ValueError:
        raise BadCredentials("send JSON with username and password") from None
    if not isinstance(body, dict):
        raise BadCredentials("send JSON with username and password")
    name, password = body.get("username"), body.get("password")
    if not isinstance(name, str) or not name:
        raise BadCredentials("username must be a non-empty string", "username")
    if len(name) > MAX_NAME:
        raise BadCredentials(f"username is longer than {MAX_NAME} characters", "username")
    if "\x00" in name or not _encodable(name):  # no store holds such a name: no user has it
        raise BadCredentials("username must be text without NUL or lone surrogates", "username")
    if not isinstance(password, str):
        raise BadCredentials("password must be a string", "password")
    return name, password


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refused(gate: LoginGate, name: str, address: str, reason: str, status: int,
             retry_after: float | None, message: str) -> web.Response:
    """Log and count a failed login, and answer it."""
    log.warning("login.failed", user=name, address=address, reason=reason)
    gate.guard.count(reason)
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    return error(status, message, headers=headers)


async def _hashing(app: web.Application):
    """The hashing threads: the unknown-user hash made before the first login; threads ended at stop."""
    hashing = app[LOGIN].hashing
    hashing.prepare()
    yield
    await asyncio.to_thread(hashing.close)


def setup(app: web.Application, config: Config) -> None:
    """The login route, its guard, and the hashing threads' cleanup context."""
    limits = config.login
    hashing = Hashing(hasher, limits.hash_concurrency, limits.hash_queue)
    app[LOGIN] = LoginGate(LoginGuard(limits), hashing, tuple(limits.trusted_proxies))
    app.cleanup_ctx.append(_hashing)
    app.router.add_post("/api/login", login)
