"""One configuration across the cluster: with Redis configured an explicit secret_key is required (a
file:line refusal at load); a node whose configuration or scenario files differ from the running
cluster's is refused at start with what to do; a whole-cluster restart with new files works, after
a clean stop at once and after a SIGKILL once the record lapses; an unreachable Redis is named."""
from __future__ import annotations

import asyncio
import shutil
import textwrap
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from chat.config import load_config
from chat.workers.cluster import config_hash
from scenarios import SourceError
from tests.cluster.conftest import REPO, Node
from tests.conftest import free_port

EXIT_SECONDS = 60.0  # a refused node's start-up: imports, then the check
BASE = """\
secret_key: "{key}"
redis_url: "redis://127.0.0.1:6379/0"
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


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_redis_without_a_secret_key_is_refused_with_file_and_line(tmp_path):
    path = write(tmp_path, BASE.replace('secret_key: "{key}"\n', ""))
    with pytest.raises(SourceError) as err:
        load_config(path)
    assert f"{path}:1: redis_url: secret_key must be set when Redis is configured" in str(err.value)
    assert "the same value on every node" in str(err.value)


def test_redis_from_the_environment_needs_a_secret_key_too(tmp_path, monkeypatch):
    path = write(tmp_path, BASE.replace('secret_key: "{key}"\nredis_url: "redis://127.0.0.1:6379/0"\n', ""))
    assert load_config(path).secret_key is None  # one node on its own: a generated key is fine
    monkeypatch.setenv("DIDCHAT_REDIS_URL", "redis://127.0.0.1:6379/0")
    with pytest.raises(SourceError, match="DIDCHAT_REDIS_URL is set"):
        load_config(path)
    write(tmp_path, BASE.format(key="s" * 40))
    assert load_config(tmp_path / "c.yaml").secret_key is not None


def test_the_hash_leaves_out_node_fields_and_takes_in_secrets_and_scenario_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scenarios").mkdir()
    shutil.copy(REPO / "scenarios/system/default.yaml", tmp_path / "scenarios/greet.yaml")
    text = BASE.format(key="s" * 40).replace("    user: alice\n", "    user: alice\n    scenario: greet\n")

    def digest(changed: str, also: str = "") -> str:
        return config_hash(load_config(write(tmp_path, changed + also, "h.yaml")))()

    first = digest(text)
    assert first == digest(text, "host: 0.0.0.0\nport: 9999\ncluster: {node_name: other}\n")
    assert first != digest(text.replace("s" * 40, "t" * 40))  # another secret key
    assert first != digest(text.replace("0123456789abcdef0123", "0123456789abcdef0124"))  # another provider secret
    assert first != digest(text, "token_minutes: 20\n")
    (tmp_path / "scenarios/greet.yaml").write_text((tmp_path / "scenarios/greet.yaml").read_text() + "\n# edited\n")
    assert first != digest(text)
    assert "s" * 40 not in first


async def exits(node: Node) -> str:
    """Start `node`, expect it to exit with an error; its log."""
    await node.start(wait=False)
    assert node.proc is not None
    code = await asyncio.wait_for(node.proc.wait(), EXIT_SECONDS)
    assert code != 0, node.log_tail()
    return node.log_tail()


def other_node(cluster, tmp_path: Path, config_path: Path, cwd: Path | None = None, index: int = 9) -> Node:
    node = Node(index, free_port(), config_path, tmp_path / f"node-{index}.log", cwd or tmp_path)
    cluster.nodes.append(node)  # stopped with the cluster whatever happens
    return node


async def test_a_node_with_another_configuration_is_refused_and_a_stopped_cluster_restarts_with_it(make_cluster, tmp_path):
    cluster = await make_cluster(nodes=1)
    changed = tmp_path / "changed.yaml"
    changed.write_text(cluster.config_path.read_text() + "\ntoken_minutes: 20\n")
    log = await exits(other_node(cluster, tmp_path, changed))
    assert "configuration differs from the running cluster's" in log and "stop every node" in log
    assert cluster.redis_prefix in log
    assert "k" * 40 not in log and cluster.twilio_api.auth_token not in log  # no secret in the refusal

    await cluster.nodes[0].stop()  # the last node stopped cleanly: the record goes with it
    await other_node(cluster, tmp_path, changed, index=10).start()


async def test_other_scenario_files_are_refused_and_a_killed_cluster_restarts_with_them(make_cluster, tmp_path):
    cluster = await make_cluster(nodes=1, alice=", scenario: greet", start=False)
    for where, reply in ((tmp_path, ""), (tmp_path / "elsewhere", "Away.")):
        (where / "scenarios").mkdir(parents=True)
        text = (REPO / "scenarios/system/default.yaml").read_text().replace('away_reply: ""', f'away_reply: "{reply}"')
        (where / "scenarios/greet.yaml").write_text(text.replace("name: default", "name: greet"))
    await cluster.nodes[0].start()
    elsewhere = other_node(cluster, tmp_path, cluster.config_path, cwd=tmp_path / "elsewhere")
    log = await exits(elsewhere)
    assert "same scenario files" in log

    await cluster.nodes[0].kill()  # no clean stop: the record lapses presence_ttl_seconds after its last heartbeat
    client = aioredis.from_url(cluster.redis_url)
    try:
        async with asyncio.timeout(10):  # presence_ttl_seconds is 2 here
            while await client.exists(f"{cluster.redis_prefix}:config"):
                await asyncio.sleep(0.1)
    finally:
        await client.aclose()
    await other_node(cluster, tmp_path, cluster.config_path, cwd=tmp_path / "elsewhere", index=10).start()


async def test_an_unreachable_redis_is_named_and_the_node_does_not_start(make_cluster, tmp_path):
    cluster = await make_cluster(nodes=1, start=False)
    closed = free_port()
    broken = tmp_path / "broken.yaml"
    broken.write_text(cluster.config_path.read_text().replace(cluster.redis_url, f"redis://:hunter2@127.0.0.1:{closed}/0"))
    log = await exits(other_node(cluster, tmp_path, broken))
    assert f"Redis at 127.0.0.1:{closed} cannot be reached" in log and "redis_url" in log
    assert "hunter2" not in log


def test_a_presence_ttl_within_one_heartbeat_is_refused(tmp_path):
    path = write(tmp_path, BASE.format(key="s" * 40) + "cluster:\n  heartbeat_seconds: 2\n  presence_ttl_seconds: 2\n")
    with pytest.raises(SourceError) as err:
        load_config(path)
    assert f"{path}:17: cluster.presence_ttl_seconds: presence_ttl_seconds (2) must be longer" in str(err.value)
