"""PostgreSQL's write path: the units of a batch run side by side, their statements pipelined.

Why: run one after another, a batch of 50 inbound messages is 250 round trips through
SQLAlchemy's per-call machinery, each waiting on the server (issue 9: 320 webhooks/s on
PostgreSQL against 2,000 on SQLite, the server idle half the time). Here every unit is advanced
to its next statement, then the statements gathered run together: all those of one planned
statement (chat.store.fast.Plans) in one round trip (asyncpg's fetchmany: a Bind/Execute per
unit and one Sync; each unit's rows told apart by a tag column), the others through SQLAlchemy
one by one; then each unit gets its result and the round starts again. A batch of inbound
messages costs about as many round trips as one message has statements.

Where it can, a planned statement run by several units of a round runs as one statement over
arrays (`Vector`): the units' parameters go in as one array per parameter, `unnest(...) WITH
ORDINALITY` makes them rows again, and the statement runs once for all of them (a SELECT as a
LATERAL subquery per row, an UPDATE or DELETE joined to the rows, an INSERT ... SELECT in their
order, its rows matched back by primary key as SQLAlchemy's insertmanyvalues does). Why: the
server's cost is per execution, not per row: the same four inbound statements cost its backend
0.11-0.52 ms a message pipelined (growing as generic plans met dead tuples) and 0.04-0.05 ms as
arrays (bench/README.md, "PostgreSQL's share"). It is the same
statement, row for row: units of a round touch no common rows (see Rules), so joining their
parameters changes no answer.

Rules:
- A unit awaits only the connection, as on SQLite (chat.store.db.drive): anything else it
  awaits fails it, with the same error on both databases.
- Where units of a batch touch the same rows they run one after the other, in batch order when
  they reach those rows together: each statement names the rows it may touch (`Touch`: the
  values a WHERE compares columns with by equality, or those an INSERT gives a unique set of
  columns; the whole of its tables when it names none), and a unit's statement waits while
  another unfinished unit of the batch has touched one of them. Units that wait for each other
  fail the batch (`Stalled`), which GroupCommit then runs unit by unit.
- Lock order: statements of one round that update or delete rows by key run in the order of
  their keys, so two nodes' batches lock shared rows (conversations) in one order.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from operator import eq
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList
from sqlalchemy.sql.selectable import ScalarSelect
from sqlalchemy.sql.util import find_tables
from sqlalchemy.sql.visitors import iterate

from chat.store.fast import FastResult, Plans, bind_plan, make_rows, result_shape, values_of
from chat.store.vector import Vector, update_cte, vector_of

_EVERYTHING = None  # Touch.tables of a statement we cannot read: it conflicts with every other unit


class Stalled(RuntimeError):
    """Units of one batch wait for each other's rows; run alone, each passes."""


@dataclass(frozen=True)
class Touch:
    """The rows a statement may touch: for each key, its columns and, per column, (parameter name, own value)."""

    tables: tuple[str, ...] | None
    keys: tuple[tuple[tuple[str, ...], tuple[tuple[str | None, object], ...]], ...]
    whole: bool  # names no rows: all of its tables
    ordered: bool  # an UPDATE or DELETE by key: runs in key order within a round

    def rows(self, params) -> list[tuple] | None:
        """The keys' values for these parameters; None when they cannot be known (then: whole tables)."""
        if self.whole or not isinstance(params, dict | None):
            return None
        out = []
        for columns, binds in self.keys:
            values = tuple(params.get(name, own) if params and name else own for name, own in binds)
            if any(v is None for v in values):
                continue  # NULLs collide in no unique key
            out.append((columns, values))
        try:
            hash(tuple(out))
        except TypeError:
            return None
        return out


def touch_of(statement) -> Touch:
    """What `statement` may touch, read from its SQLAlchemy form."""
    if isinstance(statement, sa.Insert):
        table = statement.table
        sets = _unique_sets(table) if isinstance(table, sa.Table) else []
        cte = update_cte(statement)
        bound = {c: c for cols in sets for c in cols} if cte is None else _select_binds(statement)
        keys = tuple((tuple(f"{table.name}.{c}" for c in cols), tuple((bound[c], None) for c in cols))
                     for cols in sets if all(c in bound for c in cols))
        if cte is None:
            return Touch((table.name,), keys, False, False)
        updated = touch_of(cte.element)  # INSERT ... SELECT FROM (UPDATE ... RETURNING): its rows too, first (lock order)
        if updated.whole:
            return Touch(_EVERYTHING, (), True, False)
        return Touch(tuple(sorted({table.name, *(updated.tables or ())})), updated.keys + keys, False, True)
    if not isinstance(statement, sa.Select | sa.Update | sa.Delete):
        return Touch(_EVERYTHING, (), True, False)
    tables = tuple(sorted({t.name for t in find_tables(statement, include_crud=True) if isinstance(t, sa.Table)}))
    if isinstance(statement, sa.Select):
        found = _select_keys(statement)
        return Touch(tables, (), True, False) if found is None else Touch(tables, tuple(found), False, False)
    equalities = sorted(_equalities(statement.whereclause), key=lambda pair: pair[0])
    if not equalities:
        return Touch(tables, (), True, False)
    return Touch(tables, (_key(equalities),), False, True)


def _select_binds(statement: sa.Insert) -> dict[str, str]:
    """An INSERT ... SELECT's columns given as parameters: column -> parameter name."""
    if statement.select is None:
        return {}
    picked = [getattr(c, "element", c) for c in statement.select.selected_columns]
    return {name: c.key for name, c in zip(statement._select_names or (), picked) if isinstance(c, BindParameter)}  # noqa: SLF001


def _key(equalities: list) -> tuple:
    return tuple(c for c, _ in equalities), tuple(b for _, b in equalities)


def _select_keys(statement: sa.Select) -> list[tuple] | None:
    """A SELECT's keys: one per SELECT in it (itself, its subqueries) that reads tables, from that one's WHERE;
    None when one of them reads a table with no key (then: the whole tables)."""
    keys = []
    for select in [e for e in iterate(statement) if isinstance(e, sa.Select)]:
        if not any(isinstance(f, sa.Table) for f in _direct_froms(select)):
            continue  # reads only subqueries (each a SELECT of its own here) or nothing
        equalities = sorted(_equalities(select.whereclause), key=lambda pair: pair[0])
        if not equalities:
            return None
        if _key(equalities) not in keys:
            keys.append(_key(equalities))
    return keys


def _direct_froms(select: sa.Select) -> list:
    out, todo = [], list(select.get_final_froms())
    while todo:
        item = todo.pop()
        if isinstance(item, sa.Join):
            todo += [item.left, item.right]
        else:
            out.append(item)
    return out


def _unique_sets(table: sa.Table) -> list[tuple[str, ...]]:
    sets = [tuple(c.key for c in k.columns) for k in table.constraints if isinstance(k, sa.UniqueConstraint | sa.PrimaryKeyConstraint)]
    return sets + [tuple(c.key for c in i.columns) for i in table.indexes if i.unique]


def _equalities(clause) -> list[tuple[str, tuple[str | None, object]]]:
    """`column == parameter` terms of a WHERE's conjunction, as (table.column, (name, own value))."""
    if clause is None:
        return []
    if isinstance(clause, BooleanClauseList) and clause.operator is sa.sql.operators.and_:
        return [term for part in clause.clauses for term in _equalities(part)]
    if isinstance(clause, BinaryExpression) and clause.operator is eq:
        column, bind = clause.left, clause.right
        if isinstance(column, sa.Column) and isinstance(column.table, sa.Table) and isinstance(bind, BindParameter):
            own = None if bind.required else bind.effective_value
            return [(f"{column.table.name}.{column.key}", (bind.key, own))]
        if isinstance(column, sa.Column) and isinstance(bind, ScalarSelect) and isinstance(bind.element, sa.Select):
            return _equalities(bind.element.whereclause)  # `col = (SELECT ... WHERE key = :x)`: keyed by :x
    return []


@dataclass(frozen=True, eq=False)  # eq=False: found by identity, as the plans cache hands it out
class Plan:
    """A statement compiled for asyncpg, plain (`sql`) and tagged for fetchmany (`tagged`)."""

    sql: str
    tagged: str
    binds: tuple
    row: type | None
    results: tuple
    hidden: bool  # RETURNING added here (its primary key): the unit sees no rows, only rowcount and inserted_primary_key
    insert: bool
    touch: Touch
    vector: Vector | None = None  # the same statement over arrays, for several units at once (chat.store.vector)

    def result(self, raw: list) -> FastResult:
        if self.hidden:
            pk = tuple(raw[0]) if self.insert and raw else None
            return FastResult([], len(raw), pk)
        return FastResult(make_rows(self.row, self.results, raw), len(raw))


def build(statement, keys: list[str], dialect) -> Plan | None:
    """The statement's plan for PostgreSQL with these parameter names; None when SQLAlchemy must run it."""
    if not isinstance(statement, sa.Select | sa.Insert | sa.Update | sa.Delete):
        return None
    touch, hidden, runs = touch_of(statement), False, statement
    if not isinstance(statement, sa.Select) and not statement._returning:  # noqa: SLF001 - whether it returns rows
        table: Any = statement.table
        runs, hidden = statement.returning(*table.primary_key.columns), True
    compiled = runs.compile(dialect=dialect, column_keys=keys)
    binds, shape = bind_plan(compiled, keys, dialect), result_shape(compiled, dialect)
    if binds is None or shape is None:
        return None
    tagged = f"WITH didchat_rows AS ({compiled.string}) SELECT ${len(binds) + 1}::int4, didchat_rows.* FROM didchat_rows"
    vector = vector_of(runs, compiled, binds, keys, dialect)
    if vector is None and isinstance(statement, sa.Insert) and update_cte(statement) is not None:
        return None  # its UPDATE cannot go in a WITH of ours (PostgreSQL wants it at the top): SQLAlchemy runs it
    return Plan(compiled.string, tagged, binds, *shape, hidden, isinstance(statement, sa.Insert), touch, vector)


class _Request:
    """A unit's statement, awaited: the driver gets it from the coroutine and sends back its answer."""

    __slots__ = ("statement", "params", "how", "plan", "rows", "tables")

    def __init__(self, statement, params, how: str):
        self.statement, self.params, self.how = statement, params, how
        self.plan: Plan | None = None
        self.rows: list[tuple] | None = None
        self.tables: tuple[str, ...] | None = None

    def __await__(self):
        return (yield self)


class PipeConnection:
    """What units see: the awaitable surface of AsyncConnection that they use."""

    updates_in_with = True  # PostgreSQL: a statement may INSERT from an UPDATE ... RETURNING in its WITH

    def execute(self, statement, parameters=None):
        return _Request(statement, parameters, "execute")

    def scalar(self, statement, parameters=None):
        return _Request(statement, parameters, "scalar")

    def scalars(self, statement, parameters=None):
        return _Request(statement, parameters, "scalars")


_PIPE = PipeConnection()


class _Holds:
    """Which unfinished unit touched which rows and tables (see Rules)."""

    def __init__(self):
        self.rows: dict[tuple, int] = {}
        self.touched: defaultdict[str, set[int]] = defaultdict(set)
        self.whole: defaultdict[str, set[int]] = defaultdict(set)
        self.everything: set[int] = set()
        self.taken: defaultdict[int, list] = defaultdict(list)

    def grant(self, unit: int, req: _Request) -> bool:
        """Take what `req` touches for `unit`, if no other unfinished unit holds any of it."""
        if not self._free(unit, req):
            return False
        taken = self.taken[unit]
        for key in req.rows or ():
            self.rows[key] = unit
            taken.append((self.rows, key))
        for table in req.tables or ():
            self.touched[table].add(unit)
            taken.append((self.touched[table], unit))
            if req.rows is None:
                self.whole[table].add(unit)
                taken.append((self.whole[table], unit))
        if req.tables is _EVERYTHING:
            self.everything.add(unit)
            taken.append((self.everything, unit))
        return True

    def release(self, unit: int) -> None:
        for place, item in self.taken.pop(unit, ()):
            if isinstance(place, dict):
                place.pop(item, None)
            else:
                place.discard(item)

    def _free(self, unit: int, req: _Request) -> bool:
        def others(holders) -> bool:
            return len(holders) > (unit in holders)

        if others(self.everything):
            return False
        if req.tables is _EVERYTHING:
            return not any(others(h) for h in self.touched.values())
        for table in req.tables:
            if others(self.whole.get(table, ())) or (req.rows is None and others(self.touched.get(table, ()))):
                return False
        return all(self.rows.get(key, unit) == unit for key in req.rows or ())


class Pipeline:
    """Runs batches of units on PostgreSQL connections (one Pipeline per Database)."""

    def __init__(self, dialect):
        self.dialect = dialect
        self.plans = Plans(lambda statement, keys: build(statement, keys, dialect))
        self.round_trips = 0  # statements' trips to the server so far (BEGIN and COMMIT aside)
        self.vectors = 0  # of those, statements run once over several units' arrays

    async def commit_and_begin(self, conn: AsyncConnection) -> None:
        """Commit the open transaction and begin the next in one round trip (one simple query)."""
        adapted: Any = (await conn.get_raw_connection()).dbapi_connection
        try:
            await adapted.driver_connection.execute("COMMIT; BEGIN ISOLATION LEVEL READ COMMITTED")
        except Exception as err:  # noqa: BLE001 - raised as SQLAlchemy would raise it
            raise _translated(conn, adapted, err, "COMMIT; BEGIN") from err

    async def run(self, conn: AsyncConnection, units) -> list:
        """Run `units` in `conn`'s open transaction; their results in order."""
        raw = await conn.get_raw_connection()
        adapted: Any = raw.dbapi_connection  # the dialect's adapter around the asyncpg connection
        if adapted._transaction is None:  # noqa: SLF001 - SQLAlchemy begins on its first statement; ours go to the driver
            await adapted._start_transaction()  # noqa: SLF001
        return await _Batch(self, conn, adapted, units).run()


class _Batch:
    def __init__(self, pipeline: Pipeline, conn: AsyncConnection, adapted, units):
        self.pipeline, self.conn, self.adapted = pipeline, conn, adapted
        self.driver = adapted.driver_connection
        self.coros = [unit(_PIPE) for unit in units]
        self.results: list = [None] * len(units)
        self.waiting: dict[int, _Request] = {}
        self.holds = _Holds()

    async def run(self) -> list:
        try:
            for i in range(len(self.coros)):
                self._advance(i, None)
            while self.waiting:
                granted = [(i, req) for i, req in sorted(self.waiting.items()) if self.holds.grant(i, req)]
                if not granted:
                    raise Stalled(f"{len(self.waiting)} units of a batch wait for each other's rows")
                for i, _ in granted:
                    del self.waiting[i]
                answers = await self._round([req for _, req in granted])
                for (i, _), answer in zip(granted, answers):
                    self._advance(i, answer)
            return self.results
        finally:
            for coro in self.coros:
                coro.close()

    def _advance(self, i: int, answer) -> None:
        try:
            req = self.coros[i].send(answer)
        except StopIteration as done:
            self.results[i] = done.value
            self.holds.release(i)
            return
        if not isinstance(req, _Request):
            raise RuntimeError("a write unit waited on something other than the database")
        params = req.params
        req.plan = self.pipeline.plans.get(req.statement, tuple(params or ())) if isinstance(params, dict | None) else None
        touch = req.plan.touch if req.plan is not None else touch_of(req.statement)
        req.tables, req.rows = touch.tables, touch.rows(params)
        self.waiting[i] = req

    async def _round(self, reqs: list[_Request]) -> list:
        """Answers to one round's statements: each plan's in one round trip, the rest one by one."""
        answers: list = [None] * len(reqs)
        groups: dict[Plan, list[int]] = defaultdict(list)
        for pos, req in enumerate(reqs):
            if req.plan is not None:
                groups[req.plan].append(pos)
        for plan in sorted(groups, key=lambda p: p.sql):
            members = _in_key_order(plan, groups[plan], reqs)
            for pos, result in zip(members, await self._run_plan(plan, [reqs[p].params for p in members])):
                answers[pos] = result
        for pos, req in enumerate(reqs):
            if req.plan is None:
                self.pipeline.round_trips += 1
                answers[pos] = await self.conn.execute(req.statement, req.params)
        return [_as_asked(req.how, answer) for req, answer in zip(reqs, answers)]

    async def _run_plan(self, plan: Plan, params: list) -> list[FastResult]:
        args = [values_of(plan.binds, p or {}) for p in params]
        self.pipeline.round_trips += 1
        vector = plan.vector
        try:
            if len(args) == 1:
                raw = [await self.driver.fetch(plan.sql, *args[0])]
            elif vector is not None:
                self.pipeline.vectors += 1
                raw = vector.split(await self.driver.fetch(vector.sql, *vector.arguments(args)), args)
            else:
                raw = [[] for _ in args]
                for record in await self.driver.fetchmany(plan.tagged, [[*a, n] for n, a in enumerate(args)]):
                    raw[record[0]].append(tuple(record)[1:])
        except Exception as err:  # noqa: BLE001 - raised as SQLAlchemy would raise it
            raise self._translated(err, plan.sql) from err
        return [plan.result(rows) for rows in raw]

    def _translated(self, err: Exception, sql: str) -> Exception:
        return _translated(self.conn, self.adapted, err, sql)


def _translated(conn: AsyncConnection, adapted, err: Exception, sql: str) -> Exception:
    """A driver's error as SQLAlchemy raises it (with its SQLSTATE), parameters hidden."""
    dbapi = conn.dialect.loaded_dbapi
    try:
        adapted._handle_exception(err)  # noqa: SLF001 - the dialect's own translation of asyncpg's errors
    except dbapi.Error as translated:
        return sa.exc.DBAPIError.instance(sql, None, translated, dbapi.Error, hide_parameters=True)
    except Exception as other:  # noqa: BLE001 - not the driver's: as it is
        return other
    return err


def _in_key_order(plan: Plan, members: list[int], reqs: list[_Request]) -> list[int]:
    if not plan.touch.ordered or len(members) < 2:
        return members
    try:
        return sorted(members, key=lambda pos: reqs[pos].rows or ())
    except TypeError:  # keys of kinds that do not compare: as they came
        return members


def _as_asked(how: str, result):
    if how == "scalar":
        return result.scalar()
    if how == "scalars":
        return result.scalars()
    return result
