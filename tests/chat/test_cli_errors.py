"""No user mistake ends in a traceback: the real `didchat` command answers each with one line that
names the file, line or option, and exit code 2; `config check` finds what `run` would meet."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "scenarios" / "examples"
GOOD = """\
secret_key: "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
users:
  - name: alice
    password: a-long-password
access_numbers:
  - number: "+12125550101"
    user: alice
connectors:
  - type: generic
    name: gen
    secret: 0123456789abcdef0123
    send_url: http://127.0.0.1:9/send
    numbers: ["+12125550101"]
"""


def didchat(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chat", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=_env())


def _env() -> dict:
    env = dict(os.environ)
    env.pop("DIDCHAT_DATABASE_URL", None)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


def write(tmp_path: Path, text: str, name: str = "didchat.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def one_line(result: subprocess.CompletedProcess) -> str:
    """The single line a failed command printed; fails on a traceback or on several lines."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- config check loads the scenario files and params that start-up loads ----------------------

def with_number(scenario: str = "", params: str = "") -> str:
    extra = f"    scenario: {scenario}\n" if scenario else ""
    extra += f"    scenario_params:\n      {params}\n" if params else ""
    return GOOD.replace("    user: alice\n", "    user: alice\n" + extra)


@pytest.mark.parametrize("text, expected", [
    (with_number("menu"), ":8: access_numbers[0].scenario: cannot read"),
    (with_number(params='away_reply: "Hi {{ owner.display_name( }}"'),
     ":8: access_numbers[0].scenario_params: scenario default: parameter away_reply: not a valid expression"),
    (with_number(params="colour: blue"), ":8: access_numbers[0].scenario_params: scenario default: unknown parameter colour"),
    (GOOD + "teams:\n  sales:\n    members: [alice]\n    select: [{tag: vip, number: nowhere}]\n",
     ":17: teams.sales.select[0].number: 'nowhere' is neither a callback name nor a number"),
    (GOOD + "teams:\n  sales:\n    members: [alice]\n    select:\n      - {tag: vip, last_used: true}\n",
     ":18: teams.sales.select[0]: last_used takes no prefix, country or tag"),
])
def test_config_check_finds_what_run_would_crash_on(tmp_path, text, expected):
    path = write(tmp_path, text)
    checked = didchat("config", "check", str(path), cwd=tmp_path)
    assert one_line(checked).startswith(f"{path}:") and expected in checked.stderr
    started = didchat("run", "--config", str(path), cwd=tmp_path)
    assert one_line(started) == checked.stderr.strip()


def test_config_check_reports_a_broken_scenario_file_at_its_own_line(tmp_path):
    (tmp_path / "scenarios").mkdir()
    shutil.copy(EXAMPLES / "broken" / "broken.yaml", tmp_path / "scenarios" / "broken.yaml")
    result = didchat("config", "check", str(write(tmp_path, with_number("broken"))), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "scenarios/broken.yaml:6: on.message_received[1].timeout: required for a wait" in result.stderr


def test_config_check_passes_a_good_scenario_file(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "scenarios", ignore=shutil.ignore_patterns("broken"))
    result = didchat("config", "check", str(write(tmp_path, with_number("menu"))), cwd=tmp_path)
    assert result.returncode == 0, result.stderr


# -- every user mistake: one line, exit 2 -----------------------------------------------------

def test_missing_config_file(tmp_path):
    line = one_line(didchat("run", "--config", str(tmp_path / "nope.yaml")))
    assert str(tmp_path / "nope.yaml") in line and "cannot read" in line


def test_config_path_that_is_a_folder(tmp_path):
    line = one_line(didchat("config", "check", str(tmp_path)))
    assert str(tmp_path) in line and "cannot read" in line


def test_bad_yaml_names_the_line(tmp_path):
    path = write(tmp_path, GOOD.replace("users:\n", "users: [\n"))
    line = one_line(didchat("run", "--config", str(path)))
    assert line.startswith(f"{path}:") and "not valid YAML" in line


@pytest.mark.parametrize("url, expected", [
    ("not a url", "database_url: not a database URL"),
    ("postgresql+asyncpg://postgres:hunter2hunter2@127.0.0.1:1/didchat", "database_url: cannot connect to postgresql+asyncpg://postgres:***@127.0.0.1:1/didchat"),
    ("mysql+nosuchdriver://x@127.0.0.1/db", "database_url: "),
])
@pytest.mark.parametrize("command", ["run", "migrate"])
def test_bad_or_unreachable_database(tmp_path, url, expected, command):
    path = write(tmp_path, GOOD + f'database_url: "{url}"\nport: {free_port()}\n')
    line = one_line(didchat(command, "--config", str(path), cwd=tmp_path))
    assert line.startswith("error: ") and expected in line
    assert "hunter2" not in line


def test_data_dir_that_cannot_be_created(tmp_path):
    (tmp_path / "a-file").write_text("")
    path = write(tmp_path, GOOD + f"data_dir: {tmp_path / 'a-file' / 'data'}\nport: {free_port()}\n")
    line = one_line(didchat("run", "--config", str(path), cwd=tmp_path))
    assert line.startswith(f"error: data_dir: cannot create {tmp_path / 'a-file' / 'data'}")


def test_port_in_use(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        path = write(tmp_path, GOOD + f"port: {port}\n")
        assert one_line(didchat("run", "--config", str(path), cwd=tmp_path)) == \
            f"error: 127.0.0.1:{port} is already in use (choose another with --port)"
        assert one_line(didchat("demo", "--port", str(port), cwd=tmp_path)) == \
            f"error: 127.0.0.1:{port} is already in use (choose another with --port)"


def test_simulate_to_a_number_no_connector_owns(tmp_path):
    line = one_line(didchat("simulate", "sms", "-c", str(write(tmp_path, GOOD)), "--from", "+12125550199",
                            "--to", "+12125550177", "--text", "hi"))
    assert line == f"error: --to: no webhook connector of the running configuration (or {tmp_path / 'didchat.yaml'}) owns +12125550177"


def test_a_crash_nobody_foresaw_prints_no_local_variables():
    from chat.cli import app

    assert app.pretty_exceptions_show_locals is False  # typer's default prints every frame's locals: the config's secrets
