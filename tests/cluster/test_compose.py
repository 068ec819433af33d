"""docker-compose.yml without Docker: valid against the Compose Specification's JSON Schema (as shipped,
third-party, in the check-jsonschema package), and it says what matters: two didchat nodes on one
image and one read-only config, health checks on /readyz, restart policies, nginx the only published
port with deploy/nginx.conf mounted and its placeholders filled; deploy/didchat.yaml loads; the
Dockerfile is multi-stage, non-root, without Node.js at run time."""
from __future__ import annotations

import ipaddress
import json
import re
from importlib import resources

import jsonschema
import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from chat import cli
from chat.config import load_config
from tests.cluster.conftest import NGINX_TEMPLATE, PLACEHOLDER, REPO
from tests.conftest import unavailable

NODES = ("didchat-1", "didchat-2")
CONFIG = "./deploy/didchat.yaml"
ENV_REF = re.compile(r"\$\{([A-Z0-9_]+)\}")  # a reference without a default: it must be set


def compose_schema() -> dict:
    """compose-spec.json, vendored by check-jsonschema (a pinned test dependency): never committed here."""
    try:
        schema = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
        return json.loads(schema.read_text())
    except ModuleNotFoundError:
        unavailable("check-jsonschema (pip install -e '.[test]'), which ships the Compose Specification's schema")
        raise


@pytest.fixture(scope="module")
def compose() -> dict:
    return YAML(typ="safe").load((REPO / "docker-compose.yml").read_text())  # merge keys (<<) resolved


def mounts(service: dict) -> dict[str, str]:
    """target -> "source[:ro]" of a service's short-syntax volumes."""
    out = {}
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        out[target] = source + (":" + mode[0] if mode else "")
    return out


def test_the_compose_file_is_valid_against_the_compose_specification(compose):
    schema = compose_schema()
    assert schema.get("title") == "Compose Specification"
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_catches_a_broken_file(compose):
    schema = compose_schema()
    broken = {**compose, "services": {**compose["services"], "didchat-1": {**compose["services"]["didchat-1"], "restart": 3}}}
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))


def test_two_didchat_nodes_run_one_image_and_one_read_only_config(compose):
    services = compose["services"]
    nodes = [services[name] for name in NODES]
    assert len({json.dumps([n["build"], n["image"], n["command"]]) for n in nodes}) == 1
    for name, node in zip(NODES, nodes):
        assert node["command"][:2] == ["didchat", "run"] and "--log-format" in node["command"], name
        assert mounts(node)["/etc/didchat/didchat.yaml"] == f"{CONFIG}:ro", name
        assert "/app/data" in mounts(node) and mounts(node)["/app/scenarios"] == "scenarios:ro", name
        assert node["restart"] == "unless-stopped", name
        assert "/readyz" in " ".join(node["healthcheck"]["test"]), name
        assert "ports" not in node, f"{name} publishes a port: only the load balancer may"
        assert node["depends_on"]["postgres"]["condition"] == node["depends_on"]["redis"]["condition"] == "service_healthy"
        assert node["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert node["logging"]["driver"] == "json-file"
    assert mounts(nodes[0])["/app/data"] != mounts(nodes[1])["/app/data"], "each node has its own data volume"


def test_postgres_and_redis_are_health_checked_and_restarted(compose):
    for name in ("postgres", "redis"):
        service = compose["services"][name]
        assert service["healthcheck"]["test"] and service["restart"] == "unless-stopped", name
        assert "ports" not in service, name


def test_nginx_is_the_one_published_port_and_fills_every_placeholder_of_its_config(compose):
    lb = compose["services"]["nginx"]
    published = {name for name, s in compose["services"].items() if s.get("ports")}
    assert published == {"nginx"} and lb["ports"] == ["8080:8080"]
    assert mounts(lb)["/etc/nginx/templates/default.conf.template"] == "./deploy/nginx.conf:ro"
    template = NGINX_TEMPLATE.read_text()
    assert set(PLACEHOLDER.findall(template)) == set(lb["environment"])
    assert {lb["environment"]["DIDCHAT_NODE_1"], lb["environment"]["DIDCHAT_NODE_2"]} == {f"{n}:8080" for n in NODES}
    assert lb["environment"]["DIDCHAT_LISTEN"] == "8080" and lb["restart"] == "unless-stopped"
    for header in ("Upgrade $http_upgrade", "X-Forwarded-For", "ip_hash", "proxy_buffering off", "proxy_read_timeout"):
        assert header in template, header


@pytest.fixture
def compose_environment(compose, monkeypatch) -> dict[str, str]:
    """The nodes' environment as compose would give it, with .env's values made up."""
    made_up = {"POSTGRES_PASSWORD": "pg-secret", "DIDCHAT_SECRET_KEY": "s" * 40, "DIDCHAT_ADMIN_PASSWORD": "admin-password",
               "DIDCHAT_ALICE_PASSWORD": "alice-password", "DIDCHAT_LOOPBACK_SECRET": "l" * 24}
    env = {}
    for key, value in compose["services"]["didchat-1"]["environment"].items():
        env[key] = re.sub(r"\$\{([A-Z0-9_]+)(?::[?-][^}]*)?\}", lambda m: made_up.get(m.group(1), "http://127.0.0.1:8080"), value)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_the_shipped_config_loads_with_the_environment_compose_gives(compose, compose_environment):
    text = json.dumps(YAML(typ="safe").load((REPO / "deploy" / "didchat.yaml").read_text()))  # comments dropped
    assert set(ENV_REF.findall(text)) <= set(compose_environment), "didchat.yaml needs a variable the nodes are not given"
    config = load_config(REPO / "deploy" / "didchat.yaml")
    assert config.host == "0.0.0.0" and config.port == 8080 and config.secret_key.get_secret_value() == "s" * 40
    assert config.redis() == "redis://redis:6379/0" and config.database().startswith("postgresql+asyncpg://didchat:")
    assert config.log_format == "json" and config.scenarios.directory == "/app/scenarios"
    [subnet] = compose["networks"]["didchat"]["ipam"]["config"]
    assert ipaddress.ip_network(subnet["subnet"]) in config.login.trusted_proxies
    checked = CliRunner().invoke(cli.app, ["config", "check", str(REPO / "deploy" / "didchat.yaml")])  # as `run` loads it
    assert checked.exit_code == 0, checked.output


def stages(dockerfile: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split into build stages."""
    lines = re.sub(r"\\\n\s*", " ", dockerfile).splitlines()
    out: list[list[str]] = []
    for line in (x.strip() for x in lines):
        if line.startswith("FROM "):
            out.append([])
        if line and not line.startswith("#") and out:
            out[-1].append(line)
    return out


def test_the_image_is_multi_stage_non_root_and_has_no_node_at_run_time():
    *builders, runtime = stages((REPO / "Dockerfile").read_text())
    assert any("npm ci" in line for stage in builders for line in stage)
    assert runtime[0].startswith("FROM python:") and "slim" in runtime[0]
    assert not any(re.search(r"\b(node|npm|nodejs)\b", line) and "COPY --from=" not in line for line in runtime[1:])
    copied = [line for line in runtime if line.startswith("COPY --from=client")]
    assert copied and all("socket.io-client/dist" in line or "swagger-ui-dist/swagger-ui" in line for line in copied)  # browser
    # files only, never a node_modules tree
    user = next(line for line in runtime if line.startswith("USER "))
    assert user.split()[1] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") and "/readyz" in line for line in runtime)
    assert any(line.startswith("VOLUME") and "/app/data" in line and "/app/scenarios" in line for line in runtime)
