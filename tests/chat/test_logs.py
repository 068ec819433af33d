"""The one logging set-up: our events and the libraries' stdlib records in one format, tracebacks
without local variables (they held every secret of the config), the configured level."""
from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from chat import logs

SECRET = "pa55-w0rd-that-must-never-be-logged"


@pytest.fixture
def output():
    """A stream to log to; afterwards, logging as it was (other tests capture structlog's events)."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    yield stream
    structlog.reset_defaults()
    for handler in [h for h in root.handlers if isinstance(h, logs.Handler)]:
        root.removeHandler(handler)
    root.setLevel(level)


def fail_with_a_secret_in_scope() -> None:
    password = SECRET  # noqa: F841 - a local a rich traceback would print
    raise RuntimeError("the store is gone")


def log_failures() -> None:
    for logger in (structlog.get_logger().bind(), logging.getLogger("aiohttp.server")):
        try:
            fail_with_a_secret_in_scope()
        except RuntimeError:
            logger.exception("webhook.store_failed")


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_tracebacks_show_no_local_variables(output, log_format):
    logs.setup(log_format, "info", output)
    log_failures()
    text = output.getvalue()
    assert SECRET not in text
    assert text.count("webhook.store_failed") == 2 and "the store is gone" in text  # still a useful traceback
    assert "fail_with_a_secret_in_scope" in text


def test_json_puts_ours_and_the_libraries_records_one_object_a_line(output):
    logs.setup("json", "info", output)
    structlog.get_logger().info("didchat.started", agents=2)
    logging.getLogger("alembic.runtime.migration").info("Running upgrade %s -> %s", "0006", "0007")
    log_failures()
    records = [json.loads(line) for line in output.getvalue().splitlines()]
    assert [r["event"] for r in records] == ["didchat.started", "Running upgrade 0006 -> 0007",
                                             "webhook.store_failed", "webhook.store_failed"]
    assert records[1]["logger"] == "alembic.runtime.migration" and records[0]["agents"] == 2
    assert all(r["level"] and r["timestamp"] for r in records)
    assert records[3]["exception"][0]["exc_value"] == "the store is gone"


def test_the_level_holds_for_ours_and_the_libraries(output):
    logs.setup("console", "warning", output)
    structlog.get_logger().info("not.shown")
    logging.getLogger("aiohttp.server").info("not shown either")
    structlog.get_logger().warning("login.failed", user="alice")
    assert output.getvalue().count("\n") == 1 and "login.failed" in output.getvalue()


def test_socketio_packet_chatter_stays_out(output):
    logs.setup("console", "debug", output)
    chatty = logging.getLogger("socketio.server")
    chatty.addHandler(logging.StreamHandler(io.StringIO()))  # what python-socketio adds when it finds no level
    logs.setup("console", "debug", output)
    chatty.info("emitting event to all")
    chatty.error("a real error")
    assert "emitting" not in output.getvalue() and "a real error" in output.getvalue()
    assert chatty.handlers == []


def test_docker_compose_runs_with_json_logs():
    from pathlib import Path

    from ruamel.yaml import YAML

    compose = YAML(typ="safe").load(Path(__file__).resolve().parents[2] / "docker-compose.yml")
    nodes = [service for name, service in compose["services"].items() if name.startswith("didchat-")]
    assert len(nodes) == 2
    for node in nodes:
        command = node["command"]
        assert command[:2] == ["didchat", "run"] and command[command.index("--log-format") + 1] == "json"
