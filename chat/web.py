"""HTTP: the browser client's files, the routes of every HTTP module, and the headers every answer carries.

Rules: every response, whatever route or error produced it, carries the security headers: a CSP
with no inline script or style (the client is /static files only), no framing, no MIME sniffing,
no referrer, and a `Server` header that names no versions. Files under /static are revalidated on
every load (`no-cache`; their ETag makes that a 304): the agent client is a graph of ES modules, and
after an upgrade a browser must never run old modules beside new ones.
"""
from __future__ import annotations

import os
from pathlib import Path

from aiohttp import web

from chat.agents import admin, login, media, ops, sessions, uploads
from chat.config import Config
from chat.connectors import receipts, webhooks
from chat.replies import error

STATIC = Path(__file__).resolve().parent / "static"
REPO = Path(__file__).resolve().parent.parent
VENDOR_DIR = Path(os.environ.get("DIDCHAT_VENDOR_DIR", REPO / "node_modules" / "socket.io-client" / "dist"))
NODE_MODULES = Path(os.environ.get("DIDCHAT_NODE_MODULES", REPO / "node_modules"))
# The API reference page's script and style, from the npm package (installed by `npm ci`, never a CDN).
SWAGGER_FILES = {"swagger-ui-bundle.js", "swagger-ui.css"}
CSP = "; ".join((
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:", "font-src 'self'",
    "media-src 'self' blob:",  # attachments: fetched with the agent's token, shown from blob: URLs (js/media.js)
    "connect-src 'self'", "manifest-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Server": "didchat",
}
HSTS = "max-age=31536000"


def security_headers(config: Config):
    """The on_response_prepare hook that puts the security headers on every answer (HSTS behind https)."""
    headers = dict(SECURITY_HEADERS)
    if config.public_url.startswith("https://"):
        headers["Strict-Transport-Security"] = HSTS

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        own = response.headers.get("Content-Security-Policy")  # an answer's own is stricter (media: a sandbox)
        response.headers.update(headers)  # before aiohttp's own default Server header is set
        if own is not None:
            response.headers["Content-Security-Policy"] = own

    return add


async def revalidate_static(request: web.Request, response: web.StreamResponse) -> None:
    """The on_response_prepare hook that makes browsers revalidate /static files before using them."""
    if request.path.startswith("/static/") and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-cache"


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def admin_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "admin.html", headers={"Cache-Control": "no-cache"})


async def vendor_socketio(request: web.Request) -> web.StreamResponse:
    path = VENDOR_DIR / "socket.io.min.js"
    if not path.exists():
        return error(500, f"{path} is missing: run `npm ci` in the didchat folder (make demo does it)")
    return web.FileResponse(path)


async def api_docs(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "api-docs.html", headers={"Cache-Control": "no-cache"})


async def vendor_swagger(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = NODE_MODULES / "swagger-ui-dist" / name
    if name not in SWAGGER_FILES:
        raise web.HTTPNotFound()
    if not path.exists():
        return error(500, f"{path} is missing: run `npm ci` in the didchat folder (make demo does it)")
    return web.FileResponse(path)


def add_routes(app: web.Application, config: Config) -> None:
    """Every HTTP route; each module adds its own (and its cleanup context, if it owns a long-lived part)."""
    webhooks.setup(app, config)
    login.setup(app, config)
    sessions.setup(app, config)
    ops.setup(app, config)
    admin.setup(app, config)
    media.setup(app)
    uploads.setup(app)  # attachments for replies, and the public URLs providers fetch them from
    receipts.setup(app, config)  # no route: the expiry sweep of parked status reports
    app.router.add_get("/", index)
    app.router.add_get("/admin", admin_page)
    app.router.add_get("/static/vendor/socket.io.min.js", vendor_socketio)
    app.router.add_get("/api/docs", api_docs)
    app.router.add_get("/static/vendor/swagger-ui/{name}", vendor_swagger)
    app.router.add_static("/static/", STATIC)
    app.on_response_prepare.append(security_headers(config))
    app.on_response_prepare.append(revalidate_static)
