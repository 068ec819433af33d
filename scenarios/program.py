"""Scenario files to `Scenario` values: validate the shape, compile every expression, collect
every problem with its line.

Rules: `parse_scenario` raises only `SourceError`, whatever the text; all problems of a file are
reported at once; names an expression may read are the facts (contact, conversation, message,
owner, params, vars, now) plus the variables the scenario itself defines.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ValidationError

from scenarios import models as m
from scenarios import steps as s
from scenarios.calendar import parse_hours
from scenarios.expressions import FACTS, ExprError, Template, compile_expr, compile_template
from scenarios.source import Document, Problem, SourceError, parse

TRIGGERS = ("conversation_started", "message_received", "agent_unavailable", "no_agent_reply",
            "conversation_closed", "timer")
SYSTEM_TRIGGERS = ("opt_out", "opt_in", "help")
SYSTEM_DIR = Path(__file__).resolve().parent / "system"
Loc = tuple[str | int, ...]


@dataclass(frozen=True, eq=False)  # compared and hashed by identity (usable as a cache key)
class Scenario:
    """A loaded scenario: its parameters and its compiled step blocks."""

    name: str
    path: str
    params: Mapping[str, object]
    no_agent_reply_after: timedelta | None
    blocks: Mapping[str, tuple[s.Step, ...]] = field(repr=False)
    variables: tuple[str, ...] = ()
    fingerprint: str = ""
    templated: Mapping[str, Template] = field(default_factory=dict, repr=False)  # params with {{ }}

    def with_params(self, overrides: Mapping[str, object]) -> Scenario:
        """The same scenario with some parameters set (per-number settings)."""
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            known = ", ".join(sorted(self.params)) or "none"
            raise ValueError(f"scenario {self.name}: unknown parameter {', '.join(unknown)} (declared: {known})")
        params = {**self.params, **s.plain(dict(overrides))}
        try:
            templated = _param_templates(params)
        except ExprError as err:
            raise ValueError(f"scenario {self.name}: parameter {err}") from None
        return replace(self, params=MappingProxyType(params), templated=templated)

    def block_for(self, trigger: str, data: Mapping[str, Any] | None = None) -> str | None:
        """The block a trigger starts, or None when the scenario does nothing on it."""
        if trigger == "timer":
            key = f"on.timer.{(data or {}).get('name', '')}"
        elif trigger == "no_agent_reply":
            key = "on.no_agent_reply.steps"
        else:
            key = f"on.{trigger}"
        return key if self.blocks.get(key) else None


def parse_scenario(text: str, path: str) -> Scenario:
    """A scenario from YAML text; SourceError lists every problem as FILE:LINE: FIELD: MESSAGE."""
    try:
        doc = parse(text, path)
        return _compile(doc, _validate(doc))
    except SourceError:
        raise
    except RecursionError:
        raise SourceError([Problem(path, 1, "", "nested too deeply (or a YAML alias refers to itself)")]) from None
    except Exception as err:  # the promise is SourceError only, whatever the bytes
        raise SourceError([Problem(path, 1, "", f"cannot read this scenario: {type(err).__name__}: {err}")]) from None


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and compile a scenario file."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SourceError([Problem(name, 0, "", f"cannot read: {err}")]) from None
    return parse_scenario(text, name)


@cache  # shipped files never change, and a Scenario is immutable: one parse serves every number
def system_scenario(name: str) -> Scenario:
    """One of the scenarios shipped with didchat: "default" or "optout"."""
    path = SYSTEM_DIR / f"{name}.yaml"
    if not re.fullmatch(r"[a-z_]+", name) or not path.is_file():
        raise ValueError(f"no system scenario {name!r} (there are: default, optout)")
    return load_scenario(path)


# -- shape ---------------------------------------------------------------------------------

def _validate(doc: Document) -> m.ScenarioFile:
    if not isinstance(doc.data, dict):
        raise SourceError([Problem(doc.path, 1, "", "a scenario is a mapping with at least `on:` (see docs/scenarios.md)")])
    try:
        return m.ScenarioFile.model_validate(doc.data)
    except ValidationError as err:
        problems = [doc.problem(*_explain(e)) for e in err.errors()]
        raise SourceError(_unique(problems)) from None


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _explain(error: Mapping[str, Any]) -> tuple[Loc, str]:
    """A pydantic error as (location without union tags, a message for people)."""
    loc: list[str | int] = []
    model: type[BaseModel] | None = m.ScenarioFile
    for part in error["loc"]:
        if isinstance(part, str) and part.startswith(m.TAG):
            model = m.KINDS[part.removeprefix(m.TAG)]
            continue
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        loc.append(part)
    return tuple(loc), _message(error, tuple(loc), model)


def _message(error: Mapping[str, Any], loc: Loc, model: type[BaseModel] | None) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return _unknown_key(str(loc[-1]), loc, model)
    return str(error["msg"]).removeprefix("Value error, ")


def _unknown_key(key: str, loc: Loc, model: type[BaseModel] | None) -> str:
    if loc[:1] == ("on",) and len(loc) == 2:
        allowed = list(m.Triggers.model_fields)
        what = "trigger"
    elif len(loc) == 1:
        allowed, what = list(m.ScenarioFile.model_fields), "key"
    elif model is not None and model is not m.ScenarioFile:
        allowed, what = [f.alias or n for n, f in model.model_fields.items()], "key for this step"
    else:
        return "unknown key"
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown {what} ({hint}allowed: {', '.join(allowed)})"


# -- compile -------------------------------------------------------------------------------

class _Compiler:
    """Walks the validated model, compiling blocks and collecting problems with their lines."""

    def __init__(self, doc: Document, known: tuple[str, ...], timers: set[str]):
        self.doc, self.known, self.timers = doc, known, timers
        self.blocks: dict[str, tuple[s.Step, ...]] = {}
        self.problems: list[Problem] = []

    def fail(self, loc: Loc, message: str) -> None:
        self.problems.append(self.doc.problem(loc, message))

    def block(self, steps: list[Any], loc: Loc) -> str:
        name = _dotted(loc)
        compiled = []
        for i, step in enumerate(steps):
            try:
                compiled.append(self.step(step, (*loc, i)))
            except ExprError as err:
                self.fail((*loc, i), str(err))
        self.blocks[name] = tuple(c for c in compiled if c is not None)
        return name

    def expr(self, source: str, loc: Loc) -> Any:
        try:
            return compile_expr(source, self.known)
        except ExprError as err:
            self.fail(loc, str(err))
            return compile_expr("false", ())

    def template(self, source: str, loc: Loc) -> Any:
        try:
            return compile_template(source, self.known)
        except ExprError as err:
            self.fail(loc, str(err))
            return compile_template("", ())

    def value(self, data: Any, loc: Loc) -> s.Value:
        if isinstance(data, str):
            return s.Value(self.template(data, loc))
        if isinstance(data, (list, tuple)):
            return s.Value(tuple(self.value(v, (*loc, i)) for i, v in enumerate(data)))
        if isinstance(data, Mapping):
            return s.Value({str(k): self.value(v, (*loc, str(k))) for k, v in data.items()})
        return s.Value(s.plain(data))

    def headers(self, headers: Mapping[str, str], loc: Loc) -> Mapping[str, Any]:
        return MappingProxyType({k: self.template(v, (*loc, "headers", k)) for k, v in headers.items()})

    def step(self, step: BaseModel, loc: Loc) -> s.Step | None:
        line = self.doc.problem(loc, "").line
        return getattr(self, "_" + type(step).__name__.lower())(step, loc, line)

    def _reply(self, st: m.Reply, loc: Loc, line: int) -> s.Step:
        return s.ReplyStep(line, self.template(st.reply, (*loc, "reply")))

    def _if(self, st: m.If, loc: Loc, line: int) -> s.Step:
        return s.IfStep(line, self.expr(st.if_, (*loc, "if")), self.block(st.then, (*loc, "then")),
                        self.block(st.else_, (*loc, "else")))

    def _switch(self, st: m.Switch, loc: Loc, line: int) -> s.Step:
        cases = {_norm(k): self.block(v, (*loc, "cases", k)) for k, v in st.cases.items()}
        return s.SwitchStep(line, self.expr(st.switch, (*loc, "switch")), MappingProxyType(cases),
                            self.block(st.default, (*loc, "default")))

    def _keywords(self, st: m.Keywords, loc: Loc, line: int) -> s.Step:
        words = "|".join(re.escape(k.strip()) for k in st.keywords if k.strip())
        pattern = re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE)
        return self._match("keywords", pattern, st, loc, line)

    def _regex(self, st: m.Regex, loc: Loc, line: int) -> s.Step | None:
        try:
            pattern = re.compile(st.regex)
        except re.error as err:
            self.fail((*loc, "regex"), f"not a valid regular expression: {err}")
            return None
        return self._match("regex", pattern, st, loc, line)

    def _match(self, kind: str, pattern: re.Pattern[str], st: Any, loc: Loc, line: int) -> s.Step:
        text = self.template(st.text, (*loc, "text")) if st.text is not None else None
        return s.MatchStep(line, kind, pattern, text, self.block(st.then, (*loc, "then")),
                           self.block(st.else_, (*loc, "else")))

    def _businesshours(self, st: m.BusinessHours, loc: Loc, line: int) -> s.Step | None:
        h = st.business_hours
        try:
            hours = parse_hours(h.timezone, h.weekly, h.holidays)
        except ValueError as err:
            self.fail((*loc, "business_hours"), str(err))
            return None
        return s.HoursStep(line, hours, self.block(st.open, (*loc, "open")), self.block(st.closed, (*loc, "closed")))

    def _setvars(self, st: m.SetVars, loc: Loc, line: int) -> s.Step:
        values = {k: self.value(v, (*loc, "set", k)) for k, v in st.set.items()}
        return s.SetStep(line, MappingProxyType(values))

    def _waitreply(self, st: m.WaitReply, loc: Loc, line: int) -> s.Step:
        assert st.timeout is not None
        return s.WaitStep(line, st.wait_reply, st.timeout, self.block(st.on_timeout, (*loc, "on_timeout")))

    def _http(self, st: m.Http, loc: Loc, line: int) -> s.Step:
        body = self.value(st.body, (*loc, "body")) if st.body is not None else None
        return s.HttpStep(line, self.template(st.http, (*loc, "http")), st.method, self.headers(st.headers, loc),
                          body, st.timeout, st.save_as, tuple(st.keep), self.block(st.on_error, (*loc, "on_error")))

    def _saveactivity(self, st: m.SaveActivity, loc: Loc, line: int) -> s.Step:
        body = self.value(st.body, (*loc, "body")) if st.body is not None else None
        return s.SaveStep(line, self.template(st.save_activity, (*loc, "save_activity")),
                          self.headers(st.headers, loc), self.template(st.outcome, (*loc, "outcome")), body)

    def _route(self, st: m.Route, loc: Loc, line: int) -> s.Step:
        if st.route == "owner":
            return s.RouteStep(line, "owner", None)
        target, name = next(iter(st.route.items()))
        return s.RouteStep(line, target, self.template(name, (*loc, "route", target)))

    def _notify(self, st: m.Notify, loc: Loc, line: int) -> s.Step:
        return s.TextStep(line, "notify", self.template(st.notify, (*loc, "notify")))

    def _tagstep(self, st: m.TagStep, loc: Loc, line: int) -> s.Step:
        return s.TextStep(line, "tag", self.template(st.tag, (*loc, "tag")))

    def _presentstep(self, st: m.PresentStep, loc: Loc, line: int) -> s.Step:
        return s.TextStep(line, "present", self.template(st.present, (*loc, "present")))

    def _close(self, st: m.Close, loc: Loc, line: int) -> s.Step:
        return s.CloseStep(line)

    def _stop(self, st: m.Stop, loc: Loc, line: int) -> s.Step:
        return s.StopStep(line)

    def _settimer(self, st: m.SetTimer, loc: Loc, line: int) -> s.Step:
        if st.set_timer not in self.timers:
            self.fail((*loc, "set_timer"), f"no `timer: {st.set_timer}:` steps under `on:` to run when it fires")
        return s.TimerStep(line, st.set_timer, st.after)

    def _optoutstep(self, st: m.OptOutStep, loc: Loc, line: int) -> s.Step:
        return s.OptOutStep(line, st.opt_out)


def _norm(text: Any) -> str:
    return str(text).strip().casefold()


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _compile(doc: Document, model: m.ScenarioFile) -> Scenario:
    defined = dict(_defined_names(model.on, ("on",)))
    problems = [doc.problem(loc, f"{name!r} is a fact's name; choose another variable name")
                for name, loc in defined.items() if name in FACTS]
    known = tuple(sorted({*FACTS, *defined}))
    c = _Compiler(doc, known, set(model.on.timer))
    for trigger in (*TRIGGERS, *SYSTEM_TRIGGERS):
        steps = getattr(model.on, trigger)
        if trigger == "timer":
            for name, block in steps.items():
                c.block(block, ("on", "timer", name))
        elif trigger == "no_agent_reply":
            if steps is not None:
                c.block(steps.steps, ("on", "no_agent_reply", "steps"))
        else:
            c.block(steps, ("on", trigger))
    try:
        templated = _param_templates(model.params)
    except ExprError as err:
        problems.append(doc.problem(("params", err.args[0].split(":")[0]), str(err).split(": ", 1)[1]))
    if problems or c.problems:
        raise SourceError(sorted(_unique(problems + c.problems), key=lambda p: p.line))
    name = model.name or Path(doc.path).name.split(".")[0]
    after = model.on.no_agent_reply.after if model.on.no_agent_reply else None
    digest = hashlib.sha256(model.on.model_dump_json().encode()).hexdigest()[:16]
    params = MappingProxyType(s.plain(dict(model.params)))
    return Scenario(name, doc.path, params, after, MappingProxyType(c.blocks),
                    tuple(sorted(n for n in defined if n not in FACTS)), digest, templated)


def _param_templates(params: Mapping[str, Any]) -> Mapping[str, Template]:
    """Parameters whose text has {{ }}: rendered with the facts each time they are read."""
    known = tuple(n for n in FACTS if n not in ("params", "vars"))
    out = {}
    for name, value in params.items():
        if isinstance(value, str) and "{{" in value:
            try:
                out[name] = compile_template(value, known)
            except ExprError as err:
                raise ExprError(f"{name}: {err}") from None
    return MappingProxyType(out)


def _defined_names(node: Any, loc: Loc) -> Iterator[tuple[str, Loc]]:
    """Variables a scenario defines: set, wait_reply, http save_as, regex named groups."""
    if isinstance(node, m.SetVars):
        yield from ((k, (*loc, "set", k)) for k in node.set)
    elif isinstance(node, m.WaitReply):
        yield node.wait_reply, (*loc, "wait_reply")
    elif isinstance(node, m.Http):
        yield node.save_as, (*loc, "save_as")
    elif isinstance(node, m.Regex):
        yield from ((g, (*loc, "regex")) for g in _groups(node.regex))
    if isinstance(node, BaseModel):
        for key in type(node).model_fields:
            yield from _defined_names(getattr(node, key), (*loc, key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _defined_names(item, (*loc, i))
    elif isinstance(node, dict):
        for key, item in node.items():
            yield from _defined_names(item, (*loc, key))


def _groups(pattern: str) -> list[str]:
    try:
        return list(re.compile(pattern).groupindex)
    except re.error:
        return []


__all__ = ["SYSTEM_TRIGGERS", "TRIGGERS", "Scenario", "load_scenario", "parse_scenario", "system_scenario"]
