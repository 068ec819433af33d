"""No secret in the log (invariant 9): a real `didchat run` whose store fails answers webhooks 503 and
logs the failure with its traceback, and the whole log holds no password, token or key, nor any
20 characters of one. On SQLite and PostgreSQL, in both log formats."""
from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import textwrap

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from chat.cli import signed_sms
from chat.config import load_config
from tests.conftest import ALICE, BOB, CUSTOMER, free_port, until

PRIVATE = "my card number is 4111-0000"  # held only in local variables on the failing path


def secret(n: int = 40) -> str:
    return secrets.token_urlsafe(n)[:n]


def windows(value: str, width: int = 20) -> list[str]:
    """`value` and every `width`-character substring of it."""
    return [value] + [value[i:i + width] for i in range(max(0, len(value) - width) + 1)]


@pytest.fixture
def secrets_config(tmp_path, database_url):
    """A config full of secrets, and the secrets."""
    given = {"alice": secret(), "bob": secret(24), "twilio": secret(32), "generic": secret(), "key": secret(48)}
    if "postgresql" in database_url:  # the test server trusts 127.0.0.1, so any password connects
        given["database"] = secret(30)
        database_url = database_url.replace("://postgres@", f"://postgres:{given['database']}@")
    port = free_port()
    text = textwrap.dedent(f"""\
        public_url: http://127.0.0.1:{port}
        port: {port}
        database_url: "{database_url}"
        data_dir: {tmp_path / 'data'}
        secret_key: "{given['key']}"
        users:
          - {{name: alice, password: "{given['alice']}"}}
          - {{name: bob, password: "{given['bob']}"}}
        access_numbers:
          - {{number: "{ALICE}", user: alice}}
          - {{number: "{BOB}", user: bob}}
        connectors:
          - {{type: twilio, name: tw, account_sid: AC{'0' * 32}, auth_token: "{given['twilio']}",
              api_base: "http://127.0.0.1:9", numbers: ["{ALICE}"]}}
          - {{type: generic, name: gen, secret: "{given['generic']}", send_url: "http://127.0.0.1:9/send",
              numbers: ["{BOB}"]}}
        """)
    return tmp_path, text, given


async def start(tmp_path, text: str, log_format: str):
    """`didchat run`; json is asked for on the command line (as docker-compose does), console in the file."""
    path = tmp_path / "didchat.yaml"
    path.write_text(text + ("log_format: console\n" if log_format == "console" else ""))
    log = (tmp_path / "didchat.log").open("w")
    flags = ["--log-format", "json"] if log_format == "json" else []
    proc = subprocess.Popen([sys.executable, "-m", "chat", "run", "--config", str(path), *flags],
                            stdout=log, stderr=subprocess.STDOUT)
    cfg = load_config(path)
    await until(lambda: proc.poll() is not None or _answers(cfg.public_url), 30, "didchat to answer")
    assert proc.poll() is None, (tmp_path / "didchat.log").read_text()
    return proc, cfg, tmp_path / "didchat.log"


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/", timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


async def break_store(database_url: str) -> None:
    """The messages table goes away under the running server: every inbound SMS fails to store."""
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(sa.text("ALTER TABLE messages RENAME TO messages_away"))
    await engine.dispose()


async def post(url: str, body: bytes, headers: dict) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=body, headers=headers) as answer:
            return answer.status


@pytest.mark.parametrize("log_format", ["console", "json"])
async def test_a_store_failure_logs_no_secret(secrets_config, database_url, log_format):
    tmp_path, text, given = secrets_config
    proc, cfg, log_path = await start(tmp_path, text, log_format)
    try:
        async with aiohttp.ClientSession() as http:
            for password in (given["alice"], "wrong-" + given["bob"]):
                async with http.post(f"{cfg.public_url}/api/login", json={"username": "alice", "password": password}):
                    pass
        await break_store(database_url)
        for to in (ALICE, BOB):  # one webhook signed with the Twilio token, one with the generic secret
            assert await post(*signed_sms(cfg, cfg.connector_of(to), CUSTOMER, to, PRIVATE)) == 503
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    log = log_path.read_text()
    assert "webhook.store_failed" in log and ("Traceback" in log or '"exception"' in log), log
    for name, value in {**given, "wrong password": "wrong-" + given["bob"]}.items():
        for part in windows(value):
            assert part not in log, f"{name} is in the log: {part!r}"
    assert PRIVATE not in log, "a traceback showed local variables"
    if log_format == "json":
        assert all(isinstance(json.loads(line), dict) for line in log.splitlines() if line.strip())
