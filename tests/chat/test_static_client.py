"""The agent client is served as a graph of ES modules: every module that main.js reaches answers
200 as JavaScript, and browsers revalidate each one on every load (no-cache, a 304 by its ETag), so
after an upgrade a page never runs old modules beside new ones."""
from __future__ import annotations

import re
import tomllib

import aiohttp

from chat.web import REPO, STATIC

IMPORT = re.compile(r'^import [^;]*? from "(\./[\w-]+\.js)";', re.M)


def module_graph() -> set[str]:
    """The /static paths of every module main.js imports, directly or not."""
    seen: set[str] = set()
    todo = ["main.js"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += [path[2:] for path in IMPORT.findall((STATIC / "js" / name).read_text())]
    return {f"/static/js/{name}" for name in seen}


async def test_every_module_is_served_as_javascript_and_revalidated(didchat_server):
    graph = module_graph()
    assert len(graph) == len(list((STATIC / "js").glob("*.js"))), "every module file is reached from main.js"
    async with aiohttp.ClientSession() as http:
        for path in sorted(graph):
            async with http.get(didchat_server.url + path) as answer:
                assert answer.status == 200, path
                assert answer.content_type in ("application/javascript", "text/javascript"), path
                assert answer.headers["Cache-Control"] == "no-cache", path
                etag = answer.headers["ETag"]
            async with http.get(didchat_server.url + path, headers={"If-None-Match": etag}) as again:
                assert again.status == 304, path


async def test_the_page_and_its_style_are_revalidated_too(didchat_server):
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/static/app.css", "/static/vendor/socket.io.min.js"):
            async with http.get(didchat_server.url + path) as answer:
                assert answer.status == 200, path
                assert answer.headers["Cache-Control"] == "no-cache", path
        async with http.get(didchat_server.url + "/static/app.js") as answer:
            assert answer.status == 404  # the one-script client is gone: nothing may load it any more


def test_an_installed_didchat_has_every_client_file():
    """pip install . (the Docker image) ships only the package-data patterns: they must cover every file."""
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["chat"]
    shipped = {path for pattern in patterns for path in (REPO / "chat").glob(pattern) if path.is_file()}
    assert sorted(str(p.relative_to(STATIC)) for p in STATIC.rglob("*") if p.is_file() and p not in shipped) == []
