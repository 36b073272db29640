"""The statements every letter runs, compiled once and run on SQLite's own cursor.

A small letter's three write transactions (claim, archived, acknowledged) run about ten
statements. Through ``Connection.execute`` each cost SQLAlchemy about 100 µs of CPU, several
times what SQLite took to run it, and a third of the ledger's share of the letter. Here a
statement is compiled by SQLAlchemy once per shape (statement, parameter names, dialect),
with the bind and result processors of its columns' types, and then run on the DBAPI cursor
of the caller's connection, inside the caller's transaction: the same SQL and the same
conversions, without the per-call machinery.

Only SQLite takes this path. On PostgreSQL SQLAlchemy's execution stays, because it decides
there what a failed statement means (a lost connection, or a server turned read-only,
invalidates the pool: ``database._read_only_is_a_lost_connection``), and a round trip to
the server costs more than the Python saved. A statement whose SQL would depend on the
values (an expanding ``IN`` bound at run time) also keeps SQLAlchemy's path.

A DBAPI error is raised as SQLAlchemy's own wrapper of it (parameters hidden), so
``database.database_errors`` remains the one place that turns database errors into ours.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["execute_sql", "rows", "run", "sqlalchemy_rows"]

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # the positional parameters, in order
    fixed: Mapping[str, Any]  # values the statement binds itself, processed
    binds: Mapping[str, Processor]  # the caller's parameters that need a conversion
    results: Mapping[str, Processor]  # by result column name


def rows(
    conn: sa.Connection, statement: sa.Executable, params: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """Run ``statement`` in the caller's transaction; its rows as mappings (column name to
    value, converted as SQLAlchemy would)."""
    plan = _plan_for(conn, statement, params)
    if plan is None:
        return sqlalchemy_rows(conn, statement, params)
    cursor = conn.connection.cursor()
    try:
        _execute(conn, plan, cursor.execute, _bound(plan, params))
        if cursor.description is None:
            return []
        names = [column[0] for column in cursor.description]
        processors = [plan.results.get(name) for name in names]
        fetched = _call(conn, plan, cursor.fetchall)
    finally:
        cursor.close()
    return [
        {n: v if p is None else p(v) for n, p, v in zip(names, processors, row, strict=True)}
        for row in fetched
    ]


def sqlalchemy_rows(
    conn: sa.Connection, statement: sa.Executable, params: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """What :func:`rows` returns, through SQLAlchemy's execution (every dialect)."""
    result = conn.execute(statement, dict(params))
    if not result.returns_rows:
        return []
    return [cast("Mapping[str, Any]", row._mapping) for row in result]


def run(conn: sa.Connection, statement: sa.Executable, params: Sequence[Mapping[str, Any]]) -> None:
    """Run ``statement`` once per parameter set (all with the same names), no rows back."""
    if not params:
        return
    plan = _plan_for(conn, statement, params[0])
    if plan is None or any(p.keys() != params[0].keys() for p in params):
        conn.execute(statement, [dict(p) for p in params])
        return
    cursor = conn.connection.cursor()
    try:
        _execute(conn, plan, cursor.executemany, [_bound(plan, p) for p in params])
    finally:
        cursor.close()


def execute_sql(conn: sa.Connection, sql: str) -> None:
    """A statement of SQL text with no parameters and no rows (``BEGIN``, a ``PRAGMA``) on
    the DBAPI connection, its error wrapped as SQLAlchemy wraps it (an event listener's own
    statement is not)."""
    plan = _Plan(sql=sql, names=(), fixed={}, binds={}, results={})
    cursor = conn.connection.cursor()
    try:
        _execute(conn, plan, cursor.execute, ())
    finally:
        cursor.close()


def _plan_for(
    conn: sa.Connection, statement: sa.Executable, params: Mapping[str, Any]
) -> _Plan | None:
    if conn.dialect.name != "sqlite" or not conn.in_transaction():
        return None
    return _plan(statement, tuple(sorted(params)), conn.dialect)


@functools.lru_cache(maxsize=512)
def _plan(statement: sa.Executable, keys: tuple[str, ...], dialect: Dialect) -> _Plan | None:
    """Compile once; None when the SQL would change with the values (see the docstring).
    Statements are cached by identity: they are built once (module constants, or per shape
    under ``lru_cache``), so the cache holds a few dozen."""
    assert isinstance(statement, sa.ClauseElement)
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    assert isinstance(compiled, SQLCompiler)
    if not dialect.positional or any(
        bind.expanding and (bind.key in keys or bind.required) for bind in compiled.binds.values()
    ):
        return None
    state = compiled.construct_expanded_state(params=dict.fromkeys(keys))
    names = tuple(state.positiontup or ())

    def processor(name: str) -> Processor | None:
        bind = compiled.binds.get(name)
        if bind is None:  # one value of a literal IN list: "archive_1_2" of "archive_1"
            bind = compiled.binds[name.rsplit("_", 1)[0]]
        process: Processor | None = bind.type.dialect_impl(dialect).bind_processor(dialect)
        return process

    fixed: dict[str, Any] = {}
    for name in names:
        if name not in keys:
            value, process = state.parameters[name], processor(name)
            fixed[name] = process(value) if process is not None else value
    binds = {name: p for name in keys if (p := processor(name)) is not None}
    columns: Iterable[sa.ColumnElement[Any]] = getattr(statement, "selected_columns", None) or ()
    if not columns:
        columns = getattr(statement, "exported_columns", None) or ()
    results = {
        column.name: p
        for column in columns
        if (p := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
    }
    return _Plan(sql=state.statement, names=names, fixed=fixed, binds=binds, results=results)


def _bound(plan: _Plan, params: Mapping[str, Any]) -> tuple[Any, ...]:
    """The positional values; each parameter converted once, however often the SQL uses it
    (a claim's time appears twice in every state's part of the UNION)."""
    values = dict(plan.fixed)
    for name, value in params.items():
        process = plan.binds.get(name)
        values[name] = process(value) if process is not None else value
    return tuple(values[name] for name in plan.names)


def _execute(conn: sa.Connection, plan: _Plan, call: Callable[..., Any], args: Any) -> None:
    _call(conn, plan, lambda: call(plan.sql, args))


def _call(conn: sa.Connection, plan: _Plan, call: Callable[[], Any]) -> Any:
    dbapi = conn.dialect.loaded_dbapi
    try:
        return call()
    except dbapi.Error as err:
        raise exc.DBAPIError.instance(
            plan.sql, None, err, dbapi.Error, hide_parameters=True, dialect=conn.dialect
        ) from err
