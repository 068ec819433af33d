from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from scenarios import Engine, Result, Scenario, parse_scenario

NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York


def facts(text: str = "Hi", message_id: int | None = 1, presence: str = "ready", **extra) -> dict:
    base = {
        "contact": {"number": "+15555550123", "name": None, "fields": {}},
        "conversation": {"id": 7, "access_number": "+15555550100", "tags": [], "new": True},
        "message": {"text": text, "id": message_id},
        "owner": {"name": "alice", "display_name": "Alice", "presence": presence},
    }
    base.update(extra)
    return base


class Runner:
    """Feeds events to one conversation's run, checking every returned run is JSON."""

    def __init__(self, scenario: Scenario, **kw):
        self.engine = Engine(scenario, **kw)
        self.run: dict | None = None
        self.wake_at = None

    def __call__(self, event, f: dict | None = None, now: datetime = NOW) -> Result:
        result = self.engine.handle(self.run, event, f if f is not None else facts(), now)
        assert json.loads(json.dumps(result.run)) == result.run
        self.run, self.wake_at = result.run, result.wake_at
        return result


@pytest.fixture
def compile_yaml():
    def make(text: str, path: str = "t.yaml") -> Scenario:
        return parse_scenario(text, path)
    return make
