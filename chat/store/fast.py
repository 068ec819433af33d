"""Statements the store has seen before: compiled by SQLAlchemy once, then run on the driver.

Why: SQLAlchemy's per-execution machinery (execution context, events, result metadata) costs
50-60 µs a statement where SQLite itself needs 4-15 µs; an inbound message runs five statements
(bench/README.md, "Where the time goes"). A plan keeps the statement's SQLAlchemy definition,
compiler, bind and result processors; only the per-call machinery is skipped. The store plans by
itself (`Plans`): a statement object met a second time is planned, so statements built once at
module level are, and those built per call never are. Anything it cannot plan (expanding IN
lists, several rows of parameters) goes through SQLAlchemy as before. This module is SQLite's
path (`run`); chat.store.pipeline is PostgreSQL's, on the same plans cache.

Rules: a plan is found by the statement's identity and its parameter names (for an INSERT, the
columns it sets); the cache holds a strong reference to each statement it names, so an id is
never taken for another statement's, and it is bounded (`PLANS_MAX`, oldest out first); rows
come back as named tuples with `_mapping`, like SQLAlchemy's.
"""
from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa

PLANS_MAX = 1024  # statements seen and plans kept, each; a process's module-level statements are ~60


class Plans:
    """Plans of the statements met before, by identity (see Rules)."""

    def __init__(self, build: Callable[[Any, list[str]], Any], size: int = PLANS_MAX):
        self._build, self._size = build, size
        self._seen: dict[int, object] = {}
        self._plans: dict[tuple, tuple[object, Any]] = {}

    def get(self, statement, keys: tuple[str, ...]):
        """The plan for `statement` run with parameters named `keys`; None on first sight or if unplannable."""
        key = (id(statement), keys)
        entry = self._plans.get(key)
        if entry is not None and entry[0] is statement:
            return entry[1]
        if self._seen.get(key[0]) is not statement:
            _put(self._seen, key[0], statement, self._size)
            return None
        plan = self._build(statement, list(keys))
        _put(self._plans, key, (statement, plan), self._size)
        return plan


def _put(cache: dict, key, value, size: int) -> None:
    cache.pop(key, None)
    if len(cache) >= size:
        del cache[next(iter(cache))]  # the oldest: dicts keep insertion order
    cache[key] = value


class _Row(tuple):
    __slots__ = ()
    _fields: tuple[str, ...] = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._fields, self))

    def _asdict(self) -> dict[str, Any]:
        return self._mapping


def _row_class(names: Sequence[str]) -> type:
    # mypy types only namedtuples with literal fields; these are a statement's result columns
    base = namedtuple("Row", names)  # type: ignore[misc]  # noqa: PYI024 - attribute access like SQLAlchemy's Row
    return type("Row", (base, _Row), {"__slots__": ()})


_REQUIRED = object()


@dataclass(frozen=True)
class Plan:
    """One statement compiled for SQLite, with what it takes to run it on the driver."""

    sql: str
    binds: tuple[tuple[str, object, Callable | None], ...]  # per `?`: name, own value or _REQUIRED, processor
    row: type | None  # rows' class when the statement returns rows
    results: tuple[Callable | None, ...]  # result processors, by column (empty when none has one)
    autoincrement: str | None  # an INSERT's integer primary key, when SQLite assigns it
    primary_key: tuple[str, ...]

    def values(self, params: dict) -> list:
        return values_of(self.binds, params)


def values_of(binds: tuple, params: dict) -> list:
    """The positional values of a plan's binds for these parameters."""
    out = []
    for name, own, proc in binds:
        value = params.get(name, own)
        if value is _REQUIRED:
            raise sa.exc.InvalidRequestError(f"A value is required for bind parameter {name!r}")
        out.append(value if proc is None else proc(value))
    return out


def build(statement, keys: list[str], dialect) -> Plan | None:
    """The statement compiled for SQLite with these parameter names; None when it must go through SQLAlchemy."""
    compiled = statement.compile(dialect=dialect, column_keys=keys)
    binds, shape = bind_plan(compiled, keys, dialect, _faster), result_shape(compiled, dialect)
    if binds is None or shape is None:
        return None
    autoincrement, primary_key = None, ()
    if compiled.isinsert:
        table = statement.table
        primary_key = tuple(c.key for c in table.primary_key.columns)
        auto = table.autoincrement_column
        if auto is not None and auto.key not in keys:
            autoincrement = auto.key
    return Plan(compiled.string, binds, *shape, autoincrement, primary_key)


def bind_plan(compiled, keys: list[str], dialect, faster: Callable | None = None) -> tuple | None:
    """Per positional parameter: name, own value or _REQUIRED, processor; None if one expands (IN lists)."""
    names = tuple(compiled.positiontup or ())
    if any(compiled.binds[n].expanding or compiled.binds[n].literal_execute for n in names):
        return None
    procs = compiled._bind_processors  # noqa: SLF001 - the compiled form's own processors
    binds = []
    for name in names:
        bind = compiled.binds[name]
        own = _REQUIRED if bind.required or name in keys else bind.effective_value
        proc = procs.get(name)
        binds.append((name, own, faster(bind.type, dialect, proc) if faster else proc))
    return tuple(binds)


def result_shape(compiled, dialect) -> tuple[type | None, tuple[Callable | None, ...]] | None:
    """Rows' class and result processors (none when the statement returns no rows); None if unnamed columns."""
    columns = compiled._result_columns  # noqa: SLF001
    if not columns:
        return None, ()
    labels = [c.keyname for c in columns]
    if len(set(labels)) != len(labels) or not all(label.isidentifier() for label in labels):
        return None
    results = tuple(c.type._cached_result_processor(dialect, None) for c in columns)  # noqa: SLF001
    return _row_class(labels), () if all(p is None for p in results) else results


_SQLITE_DATETIME = "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"


def _faster(type_, dialect, proc: Callable | None) -> Callable | None:
    """The same conversion as SQLAlchemy's processor, where a quicker one gives the same text."""
    impl = type_.dialect_impl(dialect)
    if proc is not None and getattr(impl, "_storage_format", None) == _SQLITE_DATETIME and isinstance(type_, sa.DateTime):
        return partial(_datetime_text, proc)
    return proc


_last_datetime: tuple = (None, None)  # (value, text): a message's created_at, updated_at and "now" are one value


def _datetime_text(fallback: Callable, value):
    """A datetime as SQLite's DATETIME stores it: 'YYYY-MM-DD HH:MM:SS.ffffff', wall time, no zone."""
    global _last_datetime  # noqa: PLW0603 - a one-entry memo, replaced whole (no torn reads)
    last = _last_datetime
    if last[0] is value:
        return last[1]
    if type(value) is not datetime:
        return fallback(value)
    text = value.isoformat(" ", "microseconds")[:26]
    _last_datetime = (value, text)
    return text


class FastResult:
    """The part of SQLAlchemy's Result that write units use, over rows already fetched."""

    def __init__(self, rows: list, rowcount: int = -1, inserted_primary_key: tuple | None = None):
        self._rows = rows
        self.rowcount = rowcount
        self._pk = inserted_primary_key

    @property
    def inserted_primary_key(self) -> tuple:
        if self._pk is None:
            raise sa.exc.InvalidRequestError("not an INSERT")
        return self._pk

    def __iter__(self):
        return iter(self._rows)

    def all(self) -> list:
        return list(self._rows)

    def first(self):
        return self._rows[0] if self._rows else None

    def one(self):
        if len(self._rows) != 1:
            raise sa.exc.NoResultFound("no row") if not self._rows else sa.exc.MultipleResultsFound("many rows")
        return self._rows[0]

    def one_or_none(self):
        if len(self._rows) > 1:
            raise sa.exc.MultipleResultsFound("many rows")
        return self.first()

    def scalar(self):
        return self._rows[0][0] if self._rows else None

    def scalar_one(self):
        return self.one()[0]

    def scalar_one_or_none(self):
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> FastResult:
        return FastResult([r[0] for r in self._rows], self.rowcount)


def run(dbapi: sqlite3.Connection, plan: Plan, params: dict) -> FastResult:
    """Execute a plan on the sqlite3 connection (inside the caller's transaction)."""
    values = plan.values(params)
    try:
        cursor = dbapi.execute(plan.sql, values)
        raw = cursor.fetchall() if plan.row is not None else ()
    except sqlite3.Error as err:
        raise sa.exc.DBAPIError.instance(plan.sql, values, err, sqlite3.Error) from err
    rows = make_rows(plan.row, plan.results, raw)
    pk = None
    if plan.primary_key:
        pk = tuple(cursor.lastrowid if k == plan.autoincrement else params.get(k) for k in plan.primary_key)
    return FastResult(rows, cursor.rowcount, pk)


def make_rows(row: type | None, results: tuple[Callable | None, ...], raw) -> list:
    """The driver's rows as the statement's row class, through its result processors."""
    if not raw or row is None:  # no row class: nothing was fetched
        return []
    if results:
        return [tuple.__new__(row, [v if p is None else p(v) for p, v in zip(results, r)]) for r in raw]
    return [tuple.__new__(row, r) for r in raw]
