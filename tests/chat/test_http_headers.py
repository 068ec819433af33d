"""Every answer carries the security headers: a CSP without inline script, no framing, no MIME
sniffing, no referrer, and a Server header that names no versions."""
from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from chat.config import Config
from chat.web import CSP, STATIC, security_headers

PAGES = [
    ("GET", "/", None, 200),
    ("GET", "/static/app.css", None, 200),
    ("GET", "/static/js/main.js", None, 200),
    ("POST", "/api/login", {"username": "alice", "password": "not-her-password"}, 401),
    ("GET", "/no/such/page", None, 404),
    ("GET", "/socket.io/?EIO=4&transport=polling", None, 200),
]


@pytest.mark.parametrize("method, path, body, status", PAGES)
async def test_security_headers_on_every_answer(didchat_server, method, path, body, status):
    async with aiohttp.ClientSession() as http:
        async with http.request(method, didchat_server.url + path, json=body) as answer:
            assert answer.status == status
            headers = answer.headers
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Server"] == "didchat"
    assert "Strict-Transport-Security" not in headers  # plain http: HSTS would be a lie


def test_the_policy_allows_no_inline_script_or_style_and_no_framing():
    rules = dict(rule.split(" ", 1) for rule in CSP.split("; "))
    assert rules["script-src"] == "'self'" and rules["style-src"] == "'self'"
    assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP
    assert rules["frame-ancestors"] == "'none'" and rules["default-src"] == "'none'" and rules["base-uri"] == "'none'"


def test_attachments_show_from_blob_urls_and_nothing_remote():
    """The client fetches media with the agent's token and shows it from blob: URLs (chat/static/js/media.js)."""
    rules = dict(rule.split(" ", 1) for rule in CSP.split("; "))
    assert rules["img-src"].split() == ["'self'", "data:", "blob:"]
    assert rules["media-src"].split() == ["'self'", "blob:"]


async def test_https_public_url_adds_hsts():
    response = web.Response()
    await security_headers(Config(public_url="https://chat.example.com"))(None, response)
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_the_page_has_no_inline_script_or_style():
    html = (STATIC / "index.html").read_text()
    assert "style=" not in html and "<style" not in html
    assert all("src=" in tag for tag in html.split("<script")[1:])
    assert not any(f" on{event}=" in html for event in ("click", "load", "error", "submit"))
