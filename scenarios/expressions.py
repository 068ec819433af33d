"""Conditions (CEL) and templates (`{{ cel-expression }}` inside text).

Rules: compiling checks syntax, top-level names and functions, so a scenario's mistakes show at
load time; evaluating never raises anything but `ExprError`. A plain dotted name such as
`params.away_reply` is looked up directly, without CEL, because it is by far the commonest case.
"""
from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import cel
from cel import stdlib

FACTS = ("contact", "conversation", "message", "owner", "params", "vars", "now")
BUILTINS = frozenset({
    "size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double", "string",
    "bytes", "bool", "type", "dyn", "timestamp", "duration", "has", "getHours", "getMinutes",
    "getSeconds", "getMilliseconds", "getDayOfWeek", "getDayOfMonth", "getDate", "getDayOfYear",
    "getFullYear", "getMonth",
})
EXTRAS = {**stdlib.STDLIB_FUNCTIONS, "urlEncode": lambda text: quote(str(text), safe="")}
PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
BOUND = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


class ExprError(Exception):
    """An expression that cannot be compiled or evaluated; the message says why."""


@dataclass(frozen=True)
class Expr:
    """One compiled CEL expression and the top-level names it reads."""

    source: str
    names: tuple[str, ...]
    path: tuple[str, ...] | None
    program: Any
    extras: tuple[str, ...]

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        """The expression's value in `scope` (facts, vars and now)."""
        if self.path is not None:
            return _lookup(scope, self.path)
        try:
            return self.program.execute(self._context(scope))
        except Exception as err:  # the CEL runtime raises many types; all mean "cannot evaluate"
            raise ExprError(_runtime_message(err)) from None

    def _context(self, scope: Mapping[str, Any]) -> Any:
        values = {n: scope[n] for n in self.names if n in scope}
        if not self.extras:
            return values
        context = cel.Context()
        for name in self.extras:
            context.add_function(name, EXTRAS[name])
        context.update(values)
        return context


def compile_expr(source: str, known: Collection[str]) -> Expr:
    """Compile a CEL expression, checking that it reads only `known` top-level names."""
    text = source.strip()
    if not text:
        raise ExprError("empty expression")
    if PATH.fullmatch(text) and text not in ("true", "false", "null"):
        parts = tuple(text.split("."))
        _check_names({parts[0]}, known)
        return Expr(text, (parts[0],), parts, None, ())
    try:
        program = cel.compile(text)
    except (ValueError, RuntimeError) as err:
        raise ExprError(_syntax_message(str(err))) from None
    names = set(program.variables()) - set(BOUND.findall(text))
    _check_names(names, known)
    extras = _check_functions(program.functions())
    return Expr(text, tuple(sorted(names)), None, program, extras)


def _check_names(names: Collection[str], known: Collection[str]) -> None:
    unknown = sorted(set(names) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(known), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ExprError(f"unknown name {', '.join(map(repr, unknown))} ({hint}known here: {', '.join(sorted(known))})")


def _check_functions(functions: Collection[str]) -> tuple[str, ...]:
    used = [f for f in functions if not f.startswith(("_", "!", "-", "@"))]
    unknown = sorted(f for f in used if f not in BUILTINS and f not in EXTRAS)
    if unknown:
        raise ExprError(f"unknown function {', '.join(map(repr, unknown))}")
    return tuple(sorted(f for f in used if f in EXTRAS))


def _syntax_message(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    head = lines[0] if lines else text
    head = re.sub(r"^Failed to parse expression '.*?': ", "", head, flags=re.DOTALL)
    head = re.sub(r" expecting \{.*\}$", "", head)
    return "not a valid expression: " + " ".join([head.removeprefix("ERROR: "), *lines[1:3]])


def _runtime_message(err: Exception) -> str:
    if isinstance(err, KeyError):
        return f"no such key {err}"
    return str(err).split(". Check that")[0]


def _lookup(scope: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = scope
    for i, part in enumerate(path):
        if not isinstance(value, Mapping) or part not in value:
            where = ".".join(path[:i]) or "the facts"
            raise ExprError(f"no such key '{part}' in {where}")
        value = value[part]
    return value


@dataclass(frozen=True)
class Template:
    """Text with `{{ expression }}` placeholders; a whole-string placeholder keeps its type."""

    source: str
    parts: tuple[str | Expr, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for p in self.parts if isinstance(p, Expr) for n in p.names)

    def render(self, scope: Mapping[str, Any], errors: list[str]) -> str:
        """The text with each placeholder replaced; failures render empty and go to `errors`."""
        if len(self.parts) == 1 and isinstance(self.parts[0], str):
            return self.parts[0]
        return "".join(p if isinstance(p, str) else text_of(_safe(p, scope, errors)) for p in self.parts)

    def value(self, scope: Mapping[str, Any], errors: list[str]) -> Any:
        """A lone `{{ expr }}` gives the expression's value itself; anything else gives text."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Expr):
            return jsonable(_safe(self.parts[0], scope, errors))
        return self.render(scope, errors)


def _safe(expr: Expr, scope: Mapping[str, Any], errors: list[str]) -> Any:
    try:
        return expr.evaluate(scope)
    except ExprError as err:
        errors.append(f"{{{{ {expr.source} }}}}: {err}")
        return ""


def compile_template(source: str, known: Collection[str]) -> Template:
    """Split text into literal parts and compiled placeholders."""
    parts: list[str | Expr] = []
    pos = 0
    for m in PLACEHOLDER.finditer(source):
        if m.start() > pos:
            parts.append(source[pos:m.start()])
        parts.append(compile_expr(m.group(1), known))
        pos = m.end()
    if pos < len(source) or not parts:
        parts.append(source[pos:])
    if any(isinstance(p, str) and "{{" in p for p in parts):
        raise ExprError("'{{' without a matching '}}'")
    return Template(source, tuple(parts))


def text_of(value: Any) -> str:
    """How a value reads inside text: null is empty, true/false lowercase, lists and maps as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(jsonable(value), ensure_ascii=False)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def jsonable(value: Any) -> Any:
    """`value` made of str/int/float/bool/None/list/dict only (times become ISO text)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def truthy(value: Any) -> bool:
    """A condition's value as yes/no: only true is true; anything else is an error upstream."""
    return value is True


__all__ = ["FACTS", "Expr", "ExprError", "Template", "compile_expr", "compile_template", "jsonable", "text_of"]
