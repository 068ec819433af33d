"""`didchat config apply|export` and `didchat user …` against a running didchat's database, on both databases.

The commands run as real processes on the node file's database while the node runs; the node
sees their change without a restart (no Redis here: it looks for a newer revision every 2 s).
"""
from __future__ import annotations

import asyncio
import os
import sys

from tests.chat.test_admin_api import api_as
from tests.conftest import PASSWORD, until


async def didchat(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chat", *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})})
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def revision(server) -> int:
    api = await api_as(server, "ada")
    return (await api("GET", "/api/v1/config"))[1]["revision"]


async def test_export_then_apply_of_the_export_is_a_no_op(make_server, tmp_path):
    server = await make_server()
    exported = tmp_path / "running.yaml"
    code, _, err = await didchat("config", "export", "-c", str(server.config_path), "-o", str(exported))
    assert code == 0, err
    text = exported.read_text()
    assert text.startswith("# didchat running configuration, revision 1") and PASSWORD not in text
    assert server.twilio_api.auth_token not in text and "auth_token: ${didchat:stored}" in text  # the secret stays put
    code, out, err = await didchat("config", "apply", str(exported), "-c", str(server.config_path))
    assert code == 0, err
    assert "no changes" in out
    assert await revision(server) == 1
    api = await api_as(server, "ada")
    [exported_record] = (await api("GET", "/api/v1/audit?action=config.exported"))[1]["items"]
    assert exported_record["actor"] == "cli" and exported_record["target"] == "revision:1"


async def test_apply_shows_the_difference_and_the_running_node_takes_it(make_server, tmp_path):
    server = await make_server()
    exported = tmp_path / "running.yaml"
    assert (await didchat("config", "export", "-c", str(server.config_path), "-o", str(exported)))[0] == 0
    exported.write_text(exported.read_text().replace("display_name: Bob", "display_name: Robert"))
    code, out, err = await didchat("config", "apply", str(exported), "-c", str(server.config_path))
    assert code == 0, err
    assert "-  display_name: Bob\n" in out and "+  display_name: Robert\n" in out and "applied: revision 2" in out
    await until(lambda: server.services.directory.by_name["bob"].display_name == "Robert", 5.0, "the node took it")
    code, out, _ = await didchat("config", "apply", str(exported), "-c", str(server.config_path), "--dry-run")
    assert code == 0 and "no changes" in out


async def test_apply_of_a_new_secret_shows_that_it_changes_and_not_the_secret(make_server, tmp_path):
    server = await make_server()
    exported = tmp_path / "running.yaml"
    assert (await didchat("config", "export", "-c", str(server.config_path), "-o", str(exported)))[0] == 0
    exported.write_text(exported.read_text().replace("${didchat:stored}", "${DIDCHAT_TEST_NEW_TOKEN}"))
    code, out, err = await didchat("config", "apply", str(exported), "-c", str(server.config_path),
                                   env={"DIDCHAT_TEST_NEW_TOKEN": "a-new-twilio-token"})
    assert code == 0, err
    assert "-  auth_token: ${didchat:stored}\n" in out and "+  auth_token: (new secret)\n" in out, out
    assert "a-new-twilio-token" not in out + err
    assert "applied: revision 2" in out


async def test_export_then_apply_keeps_a_secret_given_as_a_reference(make_server, tmp_path, monkeypatch):
    from tests.chat.test_admin_connectors import SECRET, generic

    server = await make_server()
    monkeypatch.setenv("DIDCHAT_TEST_GEN_SECRET", SECRET)
    api = await api_as(server, "ada")
    assert (await api("POST", "/api/v1/connectors", generic(secret="${DIDCHAT_TEST_GEN_SECRET}")))[0] == 201
    exported = tmp_path / "running.yaml"
    assert (await didchat("config", "export", "-c", str(server.config_path), "-o", str(exported)))[0] == 0
    assert SECRET not in exported.read_text()
    code, out, err = await didchat("config", "apply", str(exported), "-c", str(server.config_path))
    assert code == 0 and "no changes" in out, out + err  # (it checks what it applies as a node would: with the variable)
    assert (await api("GET", "/api/v1/connectors/gen"))[1]["secret"] == "${DIDCHAT_TEST_GEN_SECRET}"


async def test_apply_of_a_bad_file_names_its_line_and_changes_nothing(make_server, tmp_path):
    server = await make_server()
    bad = tmp_path / "bad.yaml"
    bad.write_text("users:\n  - name: alice\n  - name: Not A Name\naccess_numbers: []\n")
    code, out, err = await didchat("config", "apply", str(bad), "-c", str(server.config_path))
    assert code == 2 and out == ""
    assert f"{bad}:3: users[1].name:" in err
    assert "Traceback" not in err
    assert await revision(server) == 1


async def test_user_add_passwd_disable_from_the_command_line(make_server):
    server = await make_server()
    node = str(server.config_path)
    code, _, err = await didchat("user", "add", "carol", "-c", node, "--team", "support", "--password-stdin",
                                 stdin="carol-secret-1\n")
    assert code == 0, err

    async def logs_in(name: str, password: str) -> bool:
        return (await server.login(name, password))[0] == 200
    async with asyncio.timeout(5):
        while not await logs_in("carol", "carol-secret-1"):
            await asyncio.sleep(0.2)
    assert (await didchat("user", "passwd", "carol", "-c", node, "--password-stdin", stdin="carol-secret-2\n"))[0] == 0
    assert await logs_in("carol", "carol-secret-2") and not await logs_in("carol", "carol-secret-1")
    assert (await didchat("user", "disable", "carol", "-c", node))[0] == 0
    await until(lambda: "carol" not in server.services.directory.by_name, 5.0, "the node took it")
    assert not await logs_in("carol", "carol-secret-2")
    code, out, _ = await didchat("user", "list", "-c", node)
    assert code == 0 and "carol\tagent\tcarol\tsupport (disabled)" in out.splitlines()
    code, _, err = await didchat("user", "add", "dave", "-c", node, "--password-stdin", stdin="short\n")
    assert code == 2 and "at least 8 characters" in err
    code, _, err = await didchat("user", "disable", "alice", "-c", node)
    assert code == 2 and "access_numbers[0].user: user 'alice' is disabled" in err
