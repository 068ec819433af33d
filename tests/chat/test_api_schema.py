"""schemathesis against a running didchat's /api/openapi.json, on both databases: every operation, with
examples, boundary cases, random bodies and stateful sequences (create, then read, change, delete what
was made); no 5xx, and every answer (status, content type, headers, body) as the document says.

didchat runs as its own process (schemathesis calls it synchronously, outside this test's event
loop), as an admin's access token and as an API token with every scope.
"""
from __future__ import annotations

import asyncio
import os
import sys

import aiohttp
import pytest

from tests.cluster.conftest import Node
from tests.conftest import PASSWORD, config_text, free_port

ST = os.path.join(os.path.dirname(sys.executable), "st")
CHECKS = ",".join(("not_a_server_error", "status_code_conformance", "content_type_conformance",
                   "response_schema_conformance", "response_headers_conformance", "negative_data_rejection"))


async def _token(url: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/login", json={"username": "ada", "password": PASSWORD}) as r:
            assert r.status == 200
            return (await r.json())["token"]


@pytest.mark.timeout(600)  # every operation fuzzed: minutes on a busy machine (the suite's 120 s is for hangs)
async def test_schemathesis_finds_no_server_error_and_no_answer_off_the_schema(tmp_path, twilio_api, database_url):
    port = free_port()
    path = tmp_path / "didchat.yaml"
    path.write_text(config_text(port, database_url, twilio_api, "token_minutes: 60\nteams: {support: [alice, bob]}\n"))
    node = Node(0, port, path, tmp_path / "node.log", tmp_path)
    await node.start()
    try:
        token = await _token(node.url)
        proc = await asyncio.create_subprocess_exec(
            ST, "run", f"{node.url}/api/openapi.json", "--url", node.url, "--header", f"Authorization: Bearer {token}",
            "--checks", CHECKS, "--max-examples", "15", "--seed", "1", "--no-color", "--suppress-health-check", "all",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path)
        out, _ = await asyncio.wait_for(proc.communicate(), 600)
        report = out.decode(errors="replace")
        assert proc.returncode == 0, report[-12000:] + "\n--- didchat log ---\n" + node.log_tail()
        print(report[-6000:])  # shown with -s, and on failure
        assert "No issues found" in report or " passed" in report, report[-4000:]
    finally:
        await node.stop()
