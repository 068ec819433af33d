"""Scenario engine cost per inbound message: opt-out classification plus the default scenario.

Pure CPU, no I/O: for each inbound message the chat layer calls `classify(text)` and then
`Engine.handle(...)` with Trigger("message_received") (and, for a conversation's first message,
Trigger("conversation_started"), plus agent_unavailable when the owner is offline). Three mixes:

  steady     every message is a follow-up in an open conversation (classify + message_received)
  first      every message opens a conversation, owner ready (+ conversation_started -> route)
  away       every message opens a conversation, owner offline (+ agent_unavailable: auto-reply
             with the owner's name rendered, forward to a backup user)

Prints µs/message for each mix and the machine; the issue's target is <= 200 µs per message.

    .venv/bin/python bench/scenario_eval.py [--messages 20000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scenarios import Engine, Trigger, classify, system_scenario  # noqa: E402

TEXTS = ["Hi, is the store open today?", "STOP", "Can I change my order to Friday?", "help", "thanks!"]


def facts(text: str, presence: str, params: dict) -> dict:
    return {
        "contact": {"number": "+15555550123", "name": "Carol", "fields": {"tier": "gold", "crm_id": "C-1001"}},
        "conversation": {"id": 42, "access_number": "+15555550100", "tags": ["sms"], "new": True},
        "message": {"text": text, "id": 1},
        "owner": {"name": "alice", "display_name": "Alice", "presence": presence},
        "params": params,
    }


def one_message(engines: dict, text: str, mix: str, now: datetime) -> int:
    """What the chat layer asks of the scenarios package for one inbound message."""
    kind = classify(text)
    if kind:
        return len(engines["optout"].handle(None, Trigger(kind), engines["optout_facts"], now).effects)
    engine = engines["default"]
    f = engines["facts_" + ("away" if mix == "away" else "ready")]
    n = 0
    if mix != "steady":
        n += len(engine.handle(None, Trigger("conversation_started"), f, now).effects)
    if mix == "away":
        n += len(engine.handle(None, Trigger("agent_unavailable"), f, now).effects)
    return n + len(engine.handle(None, Trigger("message_received"), f, now).effects)


def measure(mix: str, messages: int) -> float:
    default = system_scenario("default").with_params({"backup_user": "bob"})
    optout = system_scenario("optout")
    engines = {
        "default": Engine(default), "optout": Engine(optout),
        "optout_facts": facts("STOP", "ready", dict(optout.params)),
        "facts_ready": facts("Hi", "ready", dict(default.params)),
        "facts_away": facts("Hi", "offline", dict(default.params)),
    }
    now = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    for text in TEXTS * 200:  # warm up
        one_message(engines, text, mix, now)
    start = time.perf_counter()
    for i in range(messages):
        one_message(engines, TEXTS[i % len(TEXTS)], mix, now)
    return (time.perf_counter() - start) / messages * 1e6


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "platform": platform.platform()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    args = parser.parse_args()
    results = {mix: round(measure(mix, args.messages), 2) for mix in ("steady", "first", "away")}
    info = machine()
    print(f"machine: {info['nproc']} cpu, {info['cpu']}, Python {info['python']}")
    for mix, us in results.items():
        print(f"{mix:>7}: {us:8.2f} µs/message  (target <= 200)")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "scenario_eval.json").write_text(json.dumps({"machine": info, "us_per_message": results}, indent=2))


if __name__ == "__main__":
    main()
