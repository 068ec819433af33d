"""Compiled steps: what the engine executes, with expressions compiled and each step's line kept.

A step list is a *block*, named by where it sits in the file (`on.message_received[2].then`);
a running execution remembers block names and positions, so its state is plain JSON.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from scenarios.calendar import Hours
from scenarios.expressions import Expr, Template, jsonable


@dataclass(frozen=True)
class Value:
    """A JSON-like value whose strings are templates (request bodies, `set` values)."""

    shape: Any  # Template | list[Value] | dict[str, Value] | plain constant

    def render(self, scope: Mapping[str, Any], errors: list[str]) -> Any:
        shape = self.shape
        if isinstance(shape, Template):
            return shape.value(scope, errors)
        if isinstance(shape, tuple):
            return [v.render(scope, errors) for v in shape]
        if isinstance(shape, dict):
            return {k: v.render(scope, errors) for k, v in shape.items()}
        return shape


@dataclass(frozen=True)
class Step:
    line: int


@dataclass(frozen=True)
class ReplyStep(Step):
    text: Template


@dataclass(frozen=True)
class IfStep(Step):
    condition: Expr
    then: str
    else_: str


@dataclass(frozen=True)
class SwitchStep(Step):
    value: Expr
    cases: Mapping[str, str]  # normalised case text -> block
    default: str


@dataclass(frozen=True)
class MatchStep(Step):
    """keywords and regex: a compiled pattern searched in a text."""
    kind: str
    pattern: re.Pattern[str]
    text: Template | None
    then: str
    else_: str


@dataclass(frozen=True)
class HoursStep(Step):
    hours: Hours
    open: str
    closed: str


@dataclass(frozen=True)
class SetStep(Step):
    values: Mapping[str, Value]


@dataclass(frozen=True)
class WaitStep(Step):
    var: str
    timeout: timedelta
    on_timeout: str


@dataclass(frozen=True)
class HttpStep(Step):
    url: Template
    method: str
    headers: Mapping[str, Template]
    body: Value | None
    timeout: timedelta
    save_as: str
    keep: tuple[str, ...]
    on_error: str


@dataclass(frozen=True)
class SaveStep(Step):
    url: Template
    headers: Mapping[str, Template]
    outcome: Template
    body: Value | None


@dataclass(frozen=True)
class RouteStep(Step):
    target: str
    name: Template | None


@dataclass(frozen=True)
class TextStep(Step):
    """notify, tag and present."""
    kind: str
    text: Template


@dataclass(frozen=True)
class CloseStep(Step):
    pass


@dataclass(frozen=True)
class StopStep(Step):
    pass


@dataclass(frozen=True)
class TimerStep(Step):
    name: str
    after: timedelta


@dataclass(frozen=True)
class OptOutStep(Step):
    opted_out: bool


def plain(value: Any) -> Any:
    """A constant as JSON data (for params and fixed values)."""
    return jsonable(value)
