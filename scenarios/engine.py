"""The scenario engine: (run, event, facts, now) in, (next run, effects, wake_at) out.

Rules:
1. Pure and deterministic: no I/O, no clock, no randomness; call ids and activity keys come
   from the run's own counter.
2. At most one execution per conversation. A trigger arriving while the run is suspended waits
   in the run's queue (FIFO) and starts when the current execution ends; the exception is
   `message_received` while the run waits for a reply: that message is the answer.
3. Every wait ends: a returned run is always suspended on a wait with a deadline (wake_at).
4. A run never loops forever: at most `max_steps` steps per handle() call.
5. Nothing a scenario does at run time raises out of handle(): errors become Notify effects.
"""
from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from scenarios import events as ev
from scenarios import steps as s
from scenarios.actions import ACTIONS
from scenarios.expressions import ExprError, jsonable
from scenarios.program import Scenario

MAX_STEPS = 1000
KINDS = {s.ReplyStep: "reply", s.IfStep: "if", s.SwitchStep: "switch", s.HoursStep: "business_hours",
         s.SetStep: "set", s.WaitStep: "wait_reply", s.HttpStep: "http", s.SaveStep: "save_activity",
         s.RouteStep: "route", s.CloseStep: "close", s.StopStep: "stop", s.TimerStep: "set_timer",
         s.OptOutStep: "opt_out"}


class Engine:
    """Runs one scenario for any number of conversations; holds no per-conversation state."""

    def __init__(self, scenario: Scenario, max_steps: int = MAX_STEPS):
        self.scenario = scenario
        self.max_steps = max_steps

    def handle(self, run: dict | None, event: Any, facts: dict, now: datetime) -> ev.Result:
        """Feed one event to a conversation's run; returns the next state and the effects."""
        if run is None and not (isinstance(event, ev.Trigger) and self.scenario.block_for(event.name, event.data)):
            return ev.Result(None, (), None)
        x = _Execution(self, copy.deepcopy(run), facts, _aware(now))
        x.feed(event)
        x.loop()
        return x.result()


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)


class _Execution:
    """One handle() call: the run being advanced and the effects gathered."""

    def __init__(self, engine: Engine, run: dict | None, facts: Mapping[str, Any], now: datetime):
        self.sc, self.max_steps = engine.scenario, engine.max_steps
        self.run, self.facts, self.now = run, facts, now
        self.effects: list[Any] = []
        self.count = 0
        self._scope: dict[str, Any] | None = None
        if run is not None and run.get("scenario") != self.sc.fingerprint:
            self.note("the scenario changed while a step was waiting; that run was dropped")
            self.run = None

    # -- events ----------------------------------------------------------------------------

    def feed(self, event: Any) -> None:
        run = self.run
        if isinstance(event, ev.Trigger):
            self._trigger(event)
        elif run is None:
            return  # a late answer to a run that has ended
        elif isinstance(event, ev.CustomerReply):
            if run["wait"]["kind"] == "reply":
                self._answer({"text": event.text})
        elif isinstance(event, ev.Timeout):
            self._timeout()
        elif isinstance(event, ev.CallResult) and run["wait"].get("call_id") == event.call_id:
            self._call_done(event.status, event.body)

    def _trigger(self, event: ev.Trigger) -> None:
        message = self._fact_message()
        if isinstance(event.data, Mapping) and "text" in event.data:  # the message may come with the trigger
            message = {**message, "text": str(event.data["text"] or "")}
        if self.run is None:
            self._start(event.name, dict(event.data), message)
            return
        wait = self.run["wait"]
        if event.name == "message_received" and wait["kind"] == "reply" and not self._echo(message, wait):
            self.run["got_message"] = True
            self._answer(message)
        elif self.sc.block_for(event.name, event.data):
            self.run["got_message"] = self.run.get("got_message") or event.name == "message_received"
            self.run["queue"].append({"trigger": event.name, "data": jsonable(event.data), "message": message})

    def _echo(self, message: Mapping[str, Any], wait: Mapping[str, Any]) -> bool:
        """Is this message_received the message that started the conversation, not an answer?

        The caller fires conversation_started and then message_received for a conversation's
        first message; a wait_reply in conversation_started must not take that message as its
        answer. With message ids this is exact; without, the first message_received after
        conversation_started is that message.
        """
        if message.get("id") is not None and wait.get("after") is not None:
            return message["id"] == wait["after"]
        return self.run["trigger"] == "conversation_started" and not self.run.get("got_message")

    def _fact_message(self) -> dict[str, Any]:
        message = self.facts.get("message") or {}
        out = {"text": str(message.get("text") or "")}
        if message.get("id") is not None:
            out["id"] = jsonable(message["id"])
        return out

    def _start(self, trigger: str, data: Mapping[str, Any], message: dict[str, Any]) -> None:
        block = self.sc.block_for(trigger, data)
        if block is None:
            return
        run = self.run or {"v": 1, "scenario": self.sc.fingerprint, "queue": [], "seq": 0, "kept": {}}
        got = any(q["trigger"] == "message_received" for q in run["queue"])
        run.update(trigger=trigger, started=self.now.isoformat(), frames=[[block, 0]], wait=None, got_message=got,
                   message=message, vars={name: None for name in self.sc.variables})
        self.run, self._scope = run, None

    def _answer(self, message: dict[str, Any]) -> None:
        run = self.run
        run["vars"][run["wait"]["var"]] = message["text"]
        run["message"], run["wait"], self._scope = message, None, None

    def _timeout(self) -> None:
        wait = self.run["wait"]
        if wait["kind"] == "call":
            self._call_done(0, None)
            return
        self.run["wait"] = None
        self.enter(wait["on_timeout"])

    def _call_done(self, status: int, body: Any) -> None:
        wait, run = self.run["wait"], self.run
        ok = 200 <= status < 300
        run["vars"][wait["save_as"]] = {"status": status, "body": jsonable(body), "ok": ok}
        run["wait"], self._scope = None, None
        kept = {k: jsonable(body[k]) for k in wait["keep"] if ok and isinstance(body, Mapping) and k in body}
        if kept:
            run["kept"].update(kept)
            self.effects.append(ev.SetContactFields(kept))
        if not ok:
            self.enter(wait["on_error"])

    # -- the loop --------------------------------------------------------------------------

    def loop(self) -> None:
        while self.run is not None and self.run["wait"] is None:
            frames = self.run["frames"]
            if not frames:
                self._next_execution()
                continue
            frame = frames[-1]
            block = self.sc.blocks.get(frame[0])
            if block is None or frame[1] >= len(block):
                frames.pop()
                continue
            step = block[frame[1]]
            frame[1] += 1
            self.count += 1
            if self.count > self.max_steps:
                self.note(f"stopped after {self.max_steps} steps in one go; does a step repeat forever?")
                self.run = None
                return
            self.do(step)

    def _next_execution(self) -> None:
        queue = self.run["queue"]
        if not queue:
            self.run = None
            return
        item = queue.pop(0)
        self.run["frames"] = []
        self._start(item["trigger"], item["data"], item["message"])

    def enter(self, block: str) -> None:
        if self.sc.blocks.get(block):
            self.run["frames"].append([block, 0])

    def result(self) -> ev.Result:
        run = self.run
        wake = datetime.fromisoformat(run["wait"]["until"]) if run else None
        return ev.Result(run, tuple(self.effects), wake)

    # -- facts -----------------------------------------------------------------------------

    @property
    def scope(self) -> dict[str, Any]:
        """Facts, the run's variables and now, as expressions see them."""
        if self._scope is None:
            self._scope = self._build_scope()
        return self._scope

    def _build_scope(self) -> dict[str, Any]:
        run = self.run
        scope = dict(self.facts)
        params = scope.get("params", self.sc.params)
        scope["params"] = params if isinstance(params, dict) else dict(params)
        if self.sc.templated:
            scope["params"] = self._render_params(scope)
        if run["kept"]:
            contact = dict(scope.get("contact") or {})
            contact["fields"] = {**(contact.get("fields") or {}), **run["kept"]}
            scope["contact"] = contact
        scope.update(run["vars"])
        scope.update(message=run["message"], vars=run["vars"], now=self.now)
        return scope

    def _render_params(self, scope: dict[str, Any]) -> dict[str, Any]:
        params = dict(scope["params"])
        for name, template in self.sc.templated.items():
            if params.get(name) == template.source:
                errors: list[str] = []
                params[name] = template.render(scope, errors)
                for error in errors:
                    self.note(f"params.{name}: {error}")
        return params

    def note(self, text: str, step: s.Step | None = None) -> None:
        where = f" ({self.sc.path}:{step.line}, {_kind(step)})" if step else ""
        self.effects.append(ev.Notify(f"Scenario {self.sc.name}{where}: {text}"))

    def render(self, template: Any, step: s.Step) -> str:
        errors: list[str] = []
        text = template.render(self.scope, errors)
        self._report(errors, step)
        return text

    def value(self, value: s.Value, step: s.Step) -> Any:
        errors: list[str] = []
        out = value.render(self.scope, errors)
        self._report(errors, step)
        return out

    def _report(self, errors: list[str], step: s.Step) -> None:
        for error in errors:
            self.note(error, step)

    def evaluate(self, step: s.Step, expr: Any) -> Any:
        try:
            return expr.evaluate(self.scope)
        except ExprError as err:
            self.note(f"{expr.source}: {err}", step)
            return None

    def set_var(self, name: str, value: Any) -> None:
        self.run["vars"][name] = value
        self._scope = None

    def do(self, step: s.Step) -> None:
        ACTIONS[type(step)](self, step)

    def next_id(self) -> str:
        """A deterministic id for this run's next call or activity."""
        run = self.run
        run["seq"] += 1
        conversation = (self.facts.get("conversation") or {}).get("id")
        seed = f"{self.sc.name}|{conversation}|{run['started']}|{run['trigger']}|{run['message']}|{run['seq']}"
        return hashlib.sha256(seed.encode()).hexdigest()[:24]


def _kind(step: s.Step) -> str:
    return getattr(step, "kind", None) or KINDS.get(type(step), type(step).__name__)


__all__ = ["Engine", "MAX_STEPS"]
