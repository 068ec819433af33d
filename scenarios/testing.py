"""Scenario tests: conversations written as YAML, played against a scenario with no network and
no real clock, each case reported as passed or failed with a readable difference.

Rule: the simulated chat does what didchat's chat layer does around the engine: the first
customer message fires conversation_started then message_received; opt-out keywords go to the
`optout` system scenario (cancelling the running execution); routing to an owner who is offline
fires agent_unavailable once per conversation; a Close ends the conversation and fires
conversation_closed; the owner not answering for the scenario's `no_agent_reply.after` fires
no_agent_reply; `advance` fires due waits, timers and no_agent_reply in time order.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from scenarios import events as ev
from scenarios.engine import Engine
from scenarios.models import Duration, Model, RouteTarget, Text
from scenarios.optout import classify
from scenarios.program import Scenario, load_scenario, system_scenario
from scenarios.source import Document, SourceError, load

DEFAULT_NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York
Presence = Literal["ready", "not_ready", "offline"]
VISIBLE = (ev.SendReply, ev.Route, ev.Notify, ev.Tag, ev.Present, ev.Close, ev.SaveActivity, ev.OptOut)


def _aware(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("give the UTC offset, e.g. 2026-11-23T23:30:00-05:00")
        return datetime.fromtimestamp(value.timestamp(), value.tzinfo)
    return value


Instant = Annotated[datetime, BeforeValidator(_aware)]


class CrmAnswer(Model):
    status: int = 200
    body: Any = None


class TestStep(Model):
    """One line of a test conversation: something happens, or something is expected."""
    customer: Text | None = None
    agent: Text | None = None
    owner: Presence | None = None
    trigger: Literal["conversation_started", "message_received", "agent_unavailable", "no_agent_reply",
                     "conversation_closed"] | None = None
    advance: Duration | None = None
    crm_answers: CrmAnswer | None = None
    close: Literal[True] | None = None
    expect_reply: Text | None = None
    expect_reply_matches: str | None = None
    expect_route: RouteTarget = None
    expect_notify: Text | None = None
    expect_tag: Text | None = None
    expect_present: Text | None = None
    expect_activity: dict[str, Any] | None = None
    expect_request: dict[str, Any] | None = None
    expect_fields: dict[str, Any] | None = None
    expect_opt_out: bool | None = None
    expect_closed: Literal[True] | None = None
    expect_nothing: Literal[True] | None = None

    @model_validator(mode="before")
    @classmethod
    def _one(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) != 1:
            raise ValueError(f"one action or expectation per list item, found {len(data)}: {', '.join(map(str, data))}")
        return data

    @property
    def kind(self) -> str:
        return next(iter(self.model_fields_set))


class Contact(Model):
    number: Text = "+15555550123"
    name: Text | None = None
    fields: dict[str, Any] = {}


class Case(Model):
    name: Text
    now: Instant = DEFAULT_NOW
    owner: Presence = "ready"
    contact: Contact | None = None
    params: dict[str, Any] = {}
    steps: list[TestStep] = Field(min_length=1)


class TestFile(Model):
    scenario: Text
    params: dict[str, Any] = {}
    contact: Contact = Contact()
    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True)
class CaseResult:
    name: str
    passed: bool
    message: str = ""
    line: int = 0

    def __str__(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        return f"{mark} {self.name}" + (f"\n{_indent(self.message)}" if self.message else "")


class Failed(Exception):
    """An expectation that did not hold; the message is for the scenario's author."""


def run_test_file(path: str | os.PathLike[str]) -> list[CaseResult]:
    """Play every case of a test file; a file that cannot be loaded is one failed result."""
    try:
        doc = load(path)
        spec = _validate(doc)
        base = _scenario(doc, spec)
    except SourceError as err:
        return [CaseResult(f"{path} (loading)", False, str(err), _first_line(err))]
    return [_run_case(doc, base, spec, i, case) for i, case in enumerate(spec.cases)]


def _first_line(err: SourceError) -> int:
    return err.problems[0].line if err.problems else 0


def _validate(doc: Document) -> TestFile:
    if not isinstance(doc.data, dict):
        raise SourceError([doc.problem((), "a test file is a mapping with `scenario:` and `cases:`")])
    try:
        return TestFile.model_validate(doc.data)
    except ValidationError as err:
        raise SourceError([doc.problem(_loc(e["loc"]), _msg(e)) for e in err.errors()]) from None


def _loc(loc: tuple) -> tuple:
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))


def _msg(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown key (allowed: {', '.join(TestStep.model_fields)})" if "steps" in error["loc"] else "unknown key"
    return "required" if error["type"] == "missing" else str(error["msg"]).removeprefix("Value error, ")


def _scenario(doc: Document, spec: TestFile) -> Scenario:
    path = Path(doc.path).parent / spec.scenario
    scenario = load_scenario(path)
    try:
        return scenario.with_params(spec.params)
    except ValueError as err:
        raise SourceError([doc.problem(("params",), str(err))]) from None


def _run_case(doc: Document, base: Scenario, spec: TestFile, i: int, case: Case) -> CaseResult:
    try:
        scenario = base.with_params(case.params)
    except ValueError as err:
        return CaseResult(case.name, False, f"{doc.path}:{doc.problem(('cases', i, 'params'), '').line}: {err}")
    contact = (case.contact or spec.contact).model_dump()
    chat = Chat(scenario, case.now, case.owner, contact)
    for j, step in enumerate(case.steps):
        line = doc.problem(("cases", i, "steps", j), "").line
        try:
            chat.step(step)
        except Failed as err:
            return CaseResult(case.name, False, f"{doc.path}:{line}: {step.kind}: {err}", line)
    return CaseResult(case.name, True)


@dataclass
class Seen:
    effect: Any
    checked: bool = False


class Chat:
    """A simulated chat layer around the engine: one contact, one access number, one owner."""

    def __init__(self, scenario: Scenario, now: datetime, presence: str, contact: dict[str, Any]):
        self.scenario, self.engine = scenario, Engine(scenario)
        self.optout = Engine(system_scenario("optout"))
        self.now, self.presence, self.contact = now, presence, contact
        self.run: dict | None = None
        self.wake_at: datetime | None = None
        self.timers: list[tuple[datetime, str]] = []
        self.calls: list[ev.Call] = []
        self.requests_checked = 0
        self.seen: list[Seen] = []
        self.conversation: dict[str, Any] | None = None
        self.conversations = 0
        self.messages = 0
        self.message: dict[str, Any] = {"text": ""}
        self.opted_out = False
        self.no_reply_at: datetime | None = None
        self.unavailable_fired = False
        self.follow_ups: list[str] = []

    # -- facts and the engine --------------------------------------------------------------

    def facts(self, engine: Engine) -> dict[str, Any]:
        conversation = self.conversation or {"id": 0, "access_number": "+15555550100", "tags": [], "new": False,
                                              "outcome": "", "transcript": []}
        return {"contact": self.contact, "conversation": conversation, "message": self.message,
                "owner": {"name": "alice", "display_name": "Alice", "presence": self.presence},
                "params": dict(engine.scenario.params)}

    def feed(self, event: Any, engine: Engine | None = None) -> None:
        engine = engine or self.engine
        result = engine.handle(self.run, event, self.facts(engine), self.now)
        if engine is self.engine:
            self.run, self.wake_at = result.run, result.wake_at
        for effect in result.effects:
            if isinstance(effect, ev.SendReply) and self.opted_out and engine is not self.optout:
                continue  # the outbox never sends to an opted-out contact (the STOP confirmation excepted)
            self.apply(effect)
        while self.follow_ups:
            self.feed(ev.Trigger(self.follow_ups.pop(0)))

    def apply(self, effect: Any) -> None:
        self.seen.append(Seen(effect))
        if isinstance(effect, ev.SendReply):
            self._say("scenario", effect.text)
        elif isinstance(effect, ev.Route) and effect.target == "owner":
            if self.presence == "offline" and not self.unavailable_fired:
                self.unavailable_fired = True
                self.follow_ups.append("agent_unavailable")
        elif isinstance(effect, ev.Tag) and self.conversation is not None:
            self.conversation["tags"].append(effect.tag)
        elif isinstance(effect, ev.Close):
            self._close()
        elif isinstance(effect, ev.SetContactFields):
            self.contact["fields"].update(effect.fields)
        elif isinstance(effect, ev.Call):
            self.calls.append(effect)
        elif isinstance(effect, ev.SetTimer):
            self.timers.append((effect.at, effect.name))
        elif isinstance(effect, ev.OptOut):
            self.opted_out = effect.opted_out

    def _say(self, who: str, text: str) -> None:
        if self.conversation is not None:
            self.conversation["transcript"].append({"from": who, "text": text, "at": self.now.isoformat()})

    def _close(self) -> None:
        if self.conversation is not None and self.conversation.get("open"):
            self.conversation["open"] = False
            self.follow_ups.append("conversation_closed")

    def _open(self) -> None:
        self.conversations += 1
        self.conversation = {"id": self.conversations, "access_number": "+15555550100", "tags": [], "new": True,
                             "outcome": "", "transcript": [], "open": True}
        self.run, self.wake_at, self.unavailable_fired = None, None, False

    # -- actions ---------------------------------------------------------------------------

    def step(self, step: TestStep) -> None:
        getattr(self, "do_" + step.kind)(getattr(step, step.kind))

    def do_customer(self, text: str) -> None:
        self.messages += 1
        self.message = {"text": text, "id": self.messages}
        keyword = classify(text)
        if self.conversation is None or not self.conversation["open"]:
            self._open()
            if not keyword:
                self._say("customer", text)
                self.feed(ev.Trigger("conversation_started"))
        else:
            self._say("customer", text)
        if keyword:
            self.run, self.wake_at = None, None  # opt-out pre-empts the running scenario
            self.feed(ev.Trigger(keyword), self.optout)
            return
        self.feed(ev.Trigger("message_received"))
        self.conversation["new"] = False
        after = self.scenario.no_agent_reply_after
        if after and self.no_reply_at is None:
            self.no_reply_at = self.now + after

    def do_agent(self, text: str) -> None:
        self._say("agent", text)
        self.no_reply_at = None

    def do_owner(self, presence: str) -> None:
        self.presence = presence

    def do_trigger(self, name: str) -> None:
        self.feed(ev.Trigger(name))

    def do_close(self, _: Any) -> None:
        self._close()
        while self.follow_ups:
            self.feed(ev.Trigger(self.follow_ups.pop(0)))

    def do_crm_answers(self, answer: CrmAnswer) -> None:
        wait = (self.run or {}).get("wait") or {}
        if wait.get("kind") != "call":
            raise Failed("no request is waiting for an answer" + self._pending())
        self.feed(ev.CallResult(wait["call_id"], answer.status, answer.body))

    def do_advance(self, delta: timedelta) -> None:
        target = self.now + delta
        while (due := self._next_due(target)) is not None:
            self.now, what = due
            self._fire(what)
        self.now = target

    def _next_due(self, target: datetime) -> tuple[datetime, Any] | None:
        due: list[tuple[datetime, Any]] = [(at, ("timer", name)) for at, name in self.timers]
        if self.wake_at is not None:
            due.append((self.wake_at, ("timeout",)))
        if self.no_reply_at is not None:
            due.append((self.no_reply_at, ("no_reply",)))
        due = [d for d in due if d[0] <= target]
        return min(due, key=lambda d: d[0]) if due else None

    def _fire(self, what: tuple) -> None:
        if what[0] == "timer":
            self.timers.remove((self.now, what[1]))
            self.feed(ev.Trigger("timer", {"name": what[1]}))
        elif what[0] == "timeout":
            self.feed(ev.Timeout())
        else:
            self.no_reply_at = None
            self.feed(ev.Trigger("no_agent_reply"))

    # -- expectations ----------------------------------------------------------------------

    def take(self, kind: type, what: str) -> Any:
        for seen in self.seen:
            if not seen.checked and isinstance(seen.effect, kind):
                seen.checked = True
                return seen.effect
        raise Failed(f"expected {what}, got none" + self._pending())

    def _pending(self) -> str:
        left = [describe(s.effect) for s in self.seen if not s.checked and isinstance(s.effect, VISIBLE)]
        return "\n  not yet checked: " + ("; ".join(left) if left else "nothing")

    def do_expect_reply(self, text: str) -> None:
        got = self.take(ev.SendReply, f"the reply {text!r}").text
        if got != text:
            raise Failed(_diff(text, got) + self._pending())

    def do_expect_reply_matches(self, pattern: str) -> None:
        got = self.take(ev.SendReply, f"a reply matching {pattern!r}").text
        if not re.search(pattern, got):
            raise Failed(f"the reply does not match {pattern!r}\n  got:      {got!r}" + self._pending())

    def do_expect_route(self, target: Any) -> None:
        want = ("owner", None) if target == "owner" else next(iter(target.items()))
        got = self.take(ev.Route, f"a route to {_route_text(want)}")
        if (got.target, got.name) != tuple(want):
            raise Failed(_diff(_route_text(want), _route_text((got.target, got.name))) + self._pending())

    def do_expect_notify(self, text: str) -> None:
        got = self.take(ev.Notify, f"a note containing {text!r}").text
        if text not in got:
            raise Failed(f"the note does not contain {text!r}\n  got:      {got!r}" + self._pending())

    def do_expect_tag(self, tag: str) -> None:
        got = self.take(ev.Tag, f"the tag {tag!r}").tag
        if got != tag:
            raise Failed(_diff(tag, got) + self._pending())

    def do_expect_present(self, number: str) -> None:
        got = self.take(ev.Present, f"to present {number!r}").number
        if got != number:
            raise Failed(_diff(number, got) + self._pending())

    def do_expect_activity(self, want: dict[str, Any]) -> None:
        got = self.take(ev.SaveActivity, "an activity saved to the CRM")
        _subset(want, got.body, "activity")

    def do_expect_request(self, want: dict[str, Any]) -> None:
        if self.requests_checked >= len(self.calls):
            raise Failed("expected a request, none was made")
        call = self.calls[self.requests_checked]
        self.requests_checked += 1
        _subset(want, {"method": call.method, "url": call.url, "headers": dict(call.headers), "body": call.body},
                "request")

    def do_expect_fields(self, want: dict[str, Any]) -> None:
        _subset(want, self.contact["fields"], "contact fields")

    def do_expect_opt_out(self, value: bool) -> None:
        got = self.take(ev.OptOut, f"opt-out {str(value).lower()}")
        if got.opted_out != value:
            raise Failed(_diff(str(value).lower(), str(got.opted_out).lower()) + self._pending())

    def do_expect_closed(self, _: Any) -> None:
        self.take(ev.Close, "the conversation to be closed")

    def do_expect_nothing(self, _: Any) -> None:
        left = [s for s in self.seen if not s.checked and isinstance(s.effect, VISIBLE)]
        if left:
            raise Failed("expected nothing more" + self._pending())


def _subset(want: Any, got: Any, what: str, path: str = "") -> None:
    """Every key of `want` has the same value in `got` (recursively); extra keys are fine."""
    if isinstance(want, dict) and isinstance(got, dict):
        for key, value in want.items():
            if key not in got:
                raise Failed(f"{what}: no {path + str(key)!r} in {got!r}")
            _subset(value, got[key], what, f"{path}{key}.")
        return
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (w, g) in enumerate(zip(want, got)):
            _subset(w, g, what, f"{path.rstrip('.')}[{i}].")
        return
    if want != got:
        raise Failed(f"{what} {path.rstrip('.') or 'value'}:\n" + _diff(want, got))


def _diff(want: Any, got: Any) -> str:
    return f"  expected: {want!r}\n  got:      {got!r}"


def _route_text(route: tuple) -> str:
    return "owner" if route[0] == "owner" else f"{route[0]} {route[1]}"


def describe(effect: Any) -> str:
    """An effect in a few words, for failure messages."""
    if isinstance(effect, ev.SendReply):
        return f"reply {effect.text!r}"
    if isinstance(effect, ev.Route):
        return "route " + _route_text((effect.target, effect.name))
    if isinstance(effect, ev.Notify):
        return f"note {effect.text!r}"
    if isinstance(effect, ev.Tag):
        return f"tag {effect.tag!r}"
    if isinstance(effect, ev.Present):
        return f"present {effect.number!r}"
    if isinstance(effect, ev.SaveActivity):
        return f"activity {effect.body!r}"
    if isinstance(effect, ev.OptOut):
        return f"opt-out {str(effect.opted_out).lower()}"
    return type(effect).__name__.lower()


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


__all__ = ["CaseResult", "Chat", "run_test_file"]
