"""A planned statement over arrays: several units' rows of parameters in one execution on PostgreSQL.

Why and how: chat.store.pipeline's docstring (and bench/README.md, "PostgreSQL's share"). The
vector form is built from the statement's SQLAlchemy form, never from its text: the units'
parameters become the columns of `unnest(...) WITH ORDINALITY AS didchat_in`; a SELECT runs as
a LATERAL subquery per row, its nested SELECTs correlated to the row; an UPDATE or DELETE is
joined to the rows; an INSERT runs as INSERT ... SELECT ... ORDER BY the ordinal, its rows
matched back by primary key; an INSERT ... SELECT from an UPDATE ... RETURNING in its WITH (a
message and its conversation's next seq, chat.domain.conversations) runs with that UPDATE joined
to the rows, returning them with what it set, and the SELECT reading what it returned. A statement this cannot express
the same way gets no vector form.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import cloned_traverse, replacement_traverse

from chat.store.fast import _REQUIRED


@dataclass(frozen=True)
class Vector:
    """A plan's statement over arrays: each unit one row of `unnest(...) WITH ORDINALITY`."""

    sql: str
    args: tuple[tuple[bool, Any], ...]  # per $n: (True, the plan's bind index: an array of it) or (False, a constant)
    match: tuple[int, ...] | None  # an INSERT: the primary key's columns in its rows; None: rows open with the ordinal
    given: tuple[int, ...] | None  # an INSERT given its primary key: those columns' bind indexes (else rows in key order)
    strip: bool  # the last column is a primary key added to match rows: the unit does not see it

    def arguments(self, values: list[list]) -> list:
        """The statement's arguments for these units' bind values: arrays, and constants as they are."""
        return [[v[at] for v in values] if array else at for array, at in self.args]

    def split(self, records, values: list[list]) -> list[list[tuple]]:
        """The vector statement's rows, as each unit's own rows (`values`: the units' bind values)."""
        if self.match is None:
            raw: list[list[tuple]] = [[] for _ in values]
            for record in records:
                raw[record[0] - 1].append(tuple(record)[1:])
            return raw
        rows = [tuple(r) for r in records]
        if len(rows) != len(values):
            raise RuntimeError(f"an INSERT of {len(values)} rows returned {len(rows)}")
        match = self.match

        def key(row: tuple) -> tuple:
            return tuple(row[c] for c in match)

        if self.given is None:
            rows.sort(key=key)  # the keys a sequence gave, in the order the rows went in
        else:
            by_key = {key(row): row for row in rows}
            try:
                rows = [by_key[tuple(v[i] for i in self.given)] for v in values]
            except KeyError as missing:
                raise RuntimeError(f"an INSERT returned no row for primary key {missing}") from None
        return [[row[:-1] if self.strip else row] for row in rows]


def vector_of(statement, compiled, binds: tuple, keys: list[str], dialect) -> Vector | None:
    """`statement` over arrays of its parameters; None where that would not be the same statement."""
    arrays = [i for i, (_, own, _) in enumerate(binds) if own is _REQUIRED]
    if not arrays:
        return None
    types = {i: compiled.binds[binds[i][0]].type for i in arrays}
    rows = sa.func.unnest(*[sa.bindparam(f"didchat_a{i}", type_=ARRAY(types[i])) for i in arrays]).table_valued(
        *[sa.column(f"didchat_p{i}", types[i]) for i in arrays], with_ordinality="didchat_n",
    ).render_derived(name="didchat_in")
    column = {binds[i][0]: rows.c[f"didchat_p{i}"] for i in arrays}
    match = given = None
    strip = False

    def replaced(clause):
        """`clause` with the units' parameters as the rows' columns; every SELECT in it correlated to the
        rows (else SQLAlchemy adds them to a subquery's FROM, and each unit would get every unit's rows)."""
        def swap(element):
            if isinstance(element, BindParameter) and not element.unique and element.key in column:
                return column[element.key]
            return None

        def correlate(select) -> None:
            select._correlate = (*select._correlate, rows)  # noqa: SLF001 - in place, on the clone being made

        if clause is None:
            return None
        return cloned_traverse(replacement_traverse(clause, {}, swap), {}, {"select": correlate})

    def joined(statement, feeds_insert: bool = False):
        """An UPDATE or DELETE joined to the rows, returning their ordinal first; None where it cannot be.
        An UPDATE's SET is its own and the parameters named for its columns; one that `feeds_insert` (in
        an INSERT's WITH) sets only its own, and returns every column of the rows after its own RETURNING."""
        table = statement.table
        if not isinstance(table, sa.Table) or len(statement._returning) == 0:  # noqa: SLF001 - build() adds one
            return None
        if isinstance(statement, sa.Update):
            sets = {key: replaced(value) for key, value in (statement._values or {}).items()}  # noqa: SLF001
            if not feeds_insert:
                sets |= {c.key: column[c.key] for c in table.c if c.key in keys and c.key not in sets and c.key in column}
            vector: Any = sa.update(table).values(sets)
        else:
            vector = sa.delete(table)
        more = [c for c in rows.c if c.name != "didchat_n"] if feeds_insert else []
        return vector.where(replaced(statement.whereclause)).returning(rows.c.didchat_n, *statement._returning, *more)  # noqa: SLF001

    if isinstance(statement, sa.Select):
        inner = replaced(statement).lateral("didchat_q")
        vector: Any = sa.select(rows.c.didchat_n, *inner.c).select_from(rows.join(inner, sa.true()))
    elif isinstance(statement, sa.Update | sa.Delete):
        if (vector := joined(statement)) is None:
            return None
    elif isinstance(statement, sa.Insert) and statement.select is not None:  # INSERT ... SELECT ... FROM (UPDATE ...)
        old = update_cte(statement)
        if old is None or (bumped := joined(old.element, feeds_insert=True)) is None or not isinstance(statement.table, sa.Table):
            return None
        cte, table = bumped.cte(old.name), statement.table

        def from_cte(element):  # the units' parameters and what the UPDATE returned: columns of its CTE
            if isinstance(element, sa.ColumnClause) and element.table is old:
                return cte.c[element.key]
            if isinstance(element, BindParameter) and not element.unique and element.key in column:
                return cte.c[column[element.key].name]
            return None

        picked = [replacement_traverse(c, {}, from_cte) for c in statement.select.selected_columns]  # type: ignore[call-overload]
        pk = list(table.primary_key.columns)
        returning = list(statement._returning)  # noqa: SLF001
        if len(pk) != 1 or pk[0] is not table.autoincrement_column or pk[0] not in returning:
            return None
        match = tuple(returning.index(c) for c in pk)
        select = sa.select(*picked).select_from(cte).order_by(cte.c.didchat_n)
        vector = sa.insert(table).from_select(statement._select_names or [], select).returning(*returning)  # noqa: SLF001
    elif isinstance(statement, sa.Insert) and not statement._post_values_clause:  # noqa: SLF001 - no ON CONFLICT
        if not isinstance(statement.table, sa.Table):
            return None
        table = statement.table
        names = [c.key for c in table.c if c.key in keys]
        pk = list(table.primary_key.columns)
        if not pk or any(n not in column for n in names):
            return None
        returning = list(statement._returning)  # noqa: SLF001
        if any(c not in returning for c in pk):
            if len(pk) != 1:
                return None
            returning, strip = [*returning, pk[0]], True
        match = tuple(returning.index(c) for c in pk)
        if all(c.key in names for c in pk):
            given = tuple(next(i for i in arrays if binds[i][0] == c.key) for c in pk)
        elif not (len(pk) == 1 and pk[0] is table.autoincrement_column):
            return None
        select = sa.select(*[column[n] for n in names]).order_by(rows.c.didchat_n)
        vector = sa.insert(table).from_select(names, select).returning(*returning)
    else:
        return None
    return _compiled_vector(vector, dialect, len(compiled._result_columns), match, given, strip)  # noqa: SLF001


def _compiled_vector(vector, dialect, columns: int, match, given, strip) -> Vector | None:
    try:
        compiled = vector.compile(dialect=dialect)
    except sa.exc.CompileError:  # a parameter of no known type has no array type: one by one, then
        return None
    args: list[tuple[bool, Any]] = []
    procs = compiled._bind_processors  # noqa: SLF001
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        if name.startswith("didchat_a"):
            args.append((True, int(name.removeprefix("didchat_a"))))
        elif bind.required or bind.expanding:
            return None  # a parameter the replacement missed: the units' values would not reach it
        else:
            proc = procs.get(name)
            args.append((False, bind.effective_value if proc is None else proc(bind.effective_value)))
    if len(compiled._result_columns) != columns + (match is None) + strip:  # noqa: SLF001 - the shape the units expect
        return None
    return Vector(compiled.string, tuple(args), match, given, strip)


def update_cte(statement: sa.Insert):
    """The one FROM of an INSERT ... SELECT when it is a CTE of an UPDATE ... RETURNING, else None."""
    froms = statement.select.get_final_froms() if statement.select is not None else []
    if len(froms) == 1 and isinstance(froms[0], sa.CTE) and isinstance(froms[0].element, sa.Update):
        return froms[0]
    return None
