"""Configuration files: every problem named with file:line and key; `didchat config check` exits non-zero."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from chat.config import load_config
from scenarios import SourceError

GOOD = """\
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


def check(tmp_path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "didchat.yaml"
    path.write_text(textwrap.dedent(text))
    return subprocess.run([sys.executable, "-m", "chat", "config", "check", str(path)], capture_output=True, text=True)


def test_good_config_passes(tmp_path):
    result = check(tmp_path, GOOD)
    assert result.returncode == 0, result.stderr


def test_sms_number_pointing_at_an_extension_is_refused_with_file_and_line(tmp_path):
    text = GOOD.replace("    user: alice\nconnectors", "    extension: '1001'\nconnectors")
    result = check(tmp_path, text)
    assert result.returncode != 0
    assert f"{tmp_path / 'didchat.yaml'}:6: access_numbers[0].extension:" in result.stderr
    assert "extension 1001" in result.stderr and "voice only" in result.stderr


def test_voice_only_number_may_point_at_an_extension(tmp_path):
    text = GOOD + "  \n"
    text = text.replace('access_numbers:\n', 'access_numbers:\n  - {number: "+12125550155", sms: false, extension: "1001"}\n')
    assert check(tmp_path, text).returncode == 0


@pytest.mark.parametrize("broken, where", [
    (GOOD.replace('"+12125550101"\n    user', '"+1 555"\n    user'), ":5: access_numbers[0].number: '+1 555' is not a valid phone number"),
    (GOOD.replace("user: alice", "user: alicia"), ":6: access_numbers[0].user: no user named 'alicia'"),
    (GOOD.replace("type: generic", "type: smoke-signals"), ":8: connectors[0].type:"),
    (GOOD.replace("    password: a-long-password\n", "    pasword: a-long-password\n"), ":3: users[0].pasword: Extra inputs"),
    (GOOD.replace("users:", "users: [\n"), ": not valid YAML"),
])
def test_errors_name_line_and_key(tmp_path, broken, where):
    path = tmp_path / "c.yaml"
    path.write_text(broken)
    with pytest.raises(SourceError) as err:
        load_config(path)
    assert where in str(err.value), str(err.value)


def test_secrets_come_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text(GOOD.replace("0123456789abcdef0123", "${GEN_SECRET}"))
    with pytest.raises(SourceError, match="GEN_SECRET is not set"):
        load_config(path)
    monkeypatch.setenv("GEN_SECRET", "s" * 20)
    assert load_config(path).connectors[0].secret.get_secret_value() == "s" * 20
