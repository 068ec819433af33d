"""Agents' sessions end: tokens expire on open sockets, logout and a reused refresh token revoke
the session and disconnect its sockets, in every tab (issue 8, points 7, 8 and 13's cookie)."""
from __future__ import annotations

import logging
import time
from functools import partial

import aiohttp
import socketio
from yarl import URL

from tests.conftest import PASSWORD, AgentClient, until

SHORT = "token_minutes: 0.02\n"  # 1.2 s


class Browser:
    """One browser: a cookie jar shared by its tabs, each tab a real Socket.IO client."""

    def __init__(self, server):
        self.server = server
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # 127.0.0.1 is an IP
        self.tabs: list[AgentClient] = []

    async def post(self, path: str, body: dict | None = None) -> tuple[int, dict | None, aiohttp.ClientResponse]:
        async with self.http.post(self.server.url + path, json=body) as r:
            data = await r.json() if r.content_type == "application/json" else None
            return r.status, data, r

    async def login(self, name: str = "alice") -> dict:
        status, body, _ = await self.post("/api/login", {"username": name, "password": PASSWORD})
        assert status == 200, body
        return body

    async def tab(self, token: str) -> AgentClient:
        client = AgentClient(self.server.url, token)
        await client.connect()
        self.tabs.append(client)
        return client

    def cookie(self) -> str:
        return next(c.value for c in self.http.cookie_jar if c.key == "didchat_refresh")

    def set_cookie(self, value: str) -> None:
        self.http.cookie_jar.update_cookies({"didchat_refresh": value}, URL(self.server.url + "/api/"))

    async def close(self) -> None:
        for tab in self.tabs:
            await tab.disconnect()
        await self.http.close()


async def browser(server) -> Browser:
    return Browser(server)


async def test_a_call_after_the_token_expired_is_refused_and_auth_renews_it(make_server):
    server = await make_server(extra=SHORT)
    b = await browser(server)
    try:
        session = await b.login()
        tab = await b.tab(session["token"])
        assert (await tab.call("sync"))["ok"]
        await until(lambda: time.time() > session["expires_at"] + 0.05, timeout=5)
        answer = await tab.call("sync")
        assert answer == {"ok": False, "error": "token expired", "field": "token", "reauth": True}
        assert (await tab.call("send", {"to": server.customer, "text": "x", "client_id": "c1"}))["reauth"]
        status, fresh, _ = await b.post("/api/refresh")
        assert status == 200
        renewed = await tab.call("auth", {"token": fresh["token"]})
        assert renewed["ok"] and renewed["expires_at"] == fresh["expires_at"]
        assert (await tab.call("sync"))["ok"]
        assert (await tab.call("auth", {"token": "not.a.token"}))["reauth"]
    finally:
        await b.close()


async def test_refresh_after_logout_is_refused_and_logout_disconnects_every_tab(didchat_server):
    b = await browser(didchat_server)
    try:
        first = await b.login()
        status, second, _ = await b.post("/api/refresh")  # a second tab of the same browser
        assert status == 200
        tabs = [await b.tab(first["token"]), await b.tab(second["token"])]
        old_cookie = b.cookie()
        status, _, _ = await b.post("/api/logout")
        assert status == 204
        await until(lambda: not any(t.sio.connected for t in tabs), timeout=5, what="tabs disconnected")
        assert all(t.pushed("session_ended") == [{"reason": "logged_out"}] for t in tabs)
        b.set_cookie(old_cookie)
        status, body, _ = await b.post("/api/refresh")
        assert status == 401 and "token" not in (body or {})
        refused = AgentClient(didchat_server.url, second["token"])  # an access token of the ended session
        try:
            await refused.connect()
            raise AssertionError("a token of an ended session connected")
        except socketio.exceptions.ConnectionError:
            pass
    finally:
        await b.close()


async def test_reusing_a_rotated_refresh_token_revokes_the_session_and_its_sockets(didchat_server):
    b = await browser(didchat_server)
    other = await browser(didchat_server)  # another login of the same agent: not touched
    try:
        session = await b.login()
        stolen = b.cookie()
        status, rotated, _ = await b.post("/api/refresh")
        assert status == 200 and b.cookie() != stolen
        current = b.cookie()
        tab = await b.tab(rotated["token"])
        bystander = await other.tab((await other.login())["token"])
        b.set_cookie(stolen)  # the old copy comes back, e.g. from a thief
        status, _, _ = await b.post("/api/refresh")
        assert status == 401
        await until(lambda: not tab.sio.connected, timeout=5, what="the family's socket disconnected")
        b.set_cookie(current)  # the family is revoked: its newest token is dead too
        status, _, _ = await b.post("/api/refresh")
        assert status == 401
        assert bystander.sio.connected and (await bystander.call("sync"))["ok"]
        assert session["token"] != rotated["token"]
    finally:
        await b.close()
        await other.close()


async def test_refresh_rotates_the_cookie_and_keeps_the_session(didchat_server):
    b = await browser(didchat_server)
    try:
        await b.login()
        seen = {b.cookie()}
        for _ in range(3):
            status, body, _ = await b.post("/api/refresh")
            assert status == 200 and body["token"]
            seen.add(b.cookie())
        assert len(seen) == 4
    finally:
        await b.close()


async def test_the_refresh_cookie_is_secure_when_the_public_url_is_https(make_server, didchat_server):
    b = await browser(didchat_server)
    try:
        _, _, answer = await b.post("/api/login", {"username": "alice", "password": PASSWORD})
        assert "Secure" not in answer.headers["Set-Cookie"] and "HttpOnly" in answer.headers["Set-Cookie"]
    finally:
        await b.close()
    await didchat_server.stop()
    server = await make_server(start=False)
    server.config = server.config.model_copy(update={"public_url": "https://chat.example.com"})
    await server.start()
    b = await browser(server)
    try:
        _, _, answer = await b.post("/api/login", {"username": "alice", "password": PASSWORD})
        assert "Secure" in answer.headers["Set-Cookie"]
    finally:
        await b.close()


async def test_a_session_ended_elsewhere_is_noticed_on_the_next_call(didchat_server, monkeypatch):
    import chat.agents.namespace
    from chat.domain.sessions import end_session

    monkeypatch.setattr(chat.agents.namespace, "SESSION_CHECK_SECONDS", 0.1)
    b = await browser(didchat_server)
    try:
        session = await b.login()
        tab = await b.tab(session["token"])
        assert (await tab.call("sync"))["ok"]
        sid = didchat_server.services.tokens.verify(session["token"]).session_id
        # As another node would: the row ends, this node's hub is not told.
        await didchat_server.services.commit.run(partial(end_session, session_id=sid))
        checked = time.monotonic()
        await until(lambda: time.monotonic() - checked > 0.15)
        answer = await tab.call("sync")
        assert answer["ok"] is False and answer["reauth"] and answer["error"] == "session ended"
        await until(lambda: not tab.sio.connected, timeout=5, what="the socket disconnected")
    finally:
        await b.close()


async def test_no_token_or_key_reaches_a_log_line_or_a_repr(didchat_server, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    b = await browser(didchat_server)
    try:
        session = await b.login()
        tab = await b.tab(session["token"])
        stolen = b.cookie()
        await b.post("/api/refresh")
        fresh = b.cookie()
        b.set_cookie(stolen)
        await b.post("/api/refresh")  # a reuse: logged, and the session ends
        await until(lambda: not tab.sio.connected, timeout=5)
    finally:
        await b.close()
    secrets = [session["token"], stolen, fresh, stolen.split(".")[1], "k" * 40]
    out, err = capfd.readouterr()
    logged = out + err + "\n".join(r.getMessage() for r in caplog.records)
    assert "session.token_reused" in logged
    assert [s for s in secrets if s in logged or s in repr(didchat_server.services)] == []
