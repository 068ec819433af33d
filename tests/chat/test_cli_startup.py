"""The CLI starts fast and says what it is: `--version`; `--help` and `simulate sms` import neither the
web stack nor the store (they took 5.8 s when the CLI imported the whole app); `demo --port` serves there."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import urllib.request
from importlib.metadata import version
from pathlib import Path

from tests.conftest import free_port, until

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("aiohttp", "sqlalchemy", "socketio", "argon2", "chat.app", "chat.store", "structlog")
CONFIG = """\
users: [{name: alice, password: a-long-password}]
access_numbers: [{number: "+12125550101", user: alice}]
connectors:
  - {type: generic, name: gen, secret: 0123456789abcdef0123, send_url: "http://127.0.0.1:9/send", numbers: ["+12125550101"]}
"""


def modules_after(*argv: str) -> dict:
    """Which heavy modules the CLI imported to run `argv`, and how it exited."""
    code = textwrap.dedent(f"""\
        import json, sys
        from chat.cli import app
        try:
            app({list(argv)!r})
        except SystemExit as done:
            code = done.code
        print(json.dumps({{"exit": code, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_version_comes_from_the_package_metadata():
    result = subprocess.run([sys.executable, "-m", "chat", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"didchat {version('didchat')}"


def test_help_imports_nothing_heavy():
    ran = modules_after("--help")
    assert ran == {"exit": 0, "heavy": []}


def test_simulate_sms_imports_nothing_heavy(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    ran = modules_after("simulate", "sms", "-c", str(path), "--from", "+12125550199", "--to", "+12125550101",
                        "--text", "hi", "--url", f"http://127.0.0.1:{free_port()}")
    assert ran == {"exit": 1, "heavy": []}  # 1: nothing listens there


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


async def test_demo_serves_on_the_port_given(tmp_path):
    port = free_port()
    demo = subprocess.Popen([sys.executable, "-m", "chat", "demo", "--port", str(port)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    try:
        await until(lambda: demo.poll() is not None or answers(f"http://127.0.0.1:{port}/"), 30, "the demo")
        assert demo.poll() is None
    finally:
        demo.send_signal(signal.SIGTERM)
        out, _ = demo.communicate(timeout=30)
    assert f"starting on http://127.0.0.1:{port}" in out and f"--url http://127.0.0.1:{port}" in out
