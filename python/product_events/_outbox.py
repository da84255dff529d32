"""``emit(…, connection=)``: the event's row written by the caller's own
database connection, inside its open transaction, so the event commits or
rolls back with the data. The Rust core validates the event and gives the
SQL and its parameters; this module only runs them, on psycopg 3, psycopg2
or SQLAlchemy, and never commits."""

from __future__ import annotations

import re
from typing import Any, Callable, Optional, Tuple

from ._errors import EventsError

#: Runs one statement: its row count and the first column of its first row.
Run = Callable[[str, dict], Tuple[int, Any]]

_NAMED = re.compile(r"%\((\w+)\)s")


def runner(connection: Any) -> Run:
    """How to run SQL on ``connection``: a psycopg 3 or psycopg2 connection,
    or an SQLAlchemy ``Connection`` or ``Session``."""
    modules = [cls.__module__ for cls in type(connection).__mro__]
    if any(m == "psycopg2" or m.startswith("psycopg2.") for m in modules):
        return lambda sql, params: _on_psycopg2(connection, sql, params)
    if any(m == "psycopg" or m.startswith("psycopg.") for m in modules):
        return lambda sql, params: _on_psycopg(connection, sql, params)
    if any(m.startswith("sqlalchemy.") for m in modules):
        from sqlalchemy import text

        return lambda sql, params: _on_sqlalchemy(connection, text, sql, params)
    raise EventsError(
        f"connection= takes a psycopg 3 or psycopg2 connection, or an SQLAlchemy "
        f"Connection or Session, not {type(connection).__name__}"
    )


def _on_psycopg(connection: Any, sql: str, params: dict) -> Tuple[int, Any]:
    cursor = connection.execute(sql, params)
    try:
        row = cursor.fetchone() if cursor.description else None
        return cursor.rowcount, row[0] if row else None
    finally:
        cursor.close()


def _on_psycopg2(connection: Any, sql: str, params: dict) -> Tuple[int, Any]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone() if cursor.description else None
        return cursor.rowcount, row[0] if row else None


def _on_sqlalchemy(connection: Any, text: Any, sql: str, params: dict) -> Tuple[int, Any]:
    result = connection.execute(text(_NAMED.sub(r":\1", sql)), params)
    try:
        row = result.first() if result.returns_rows else None
        return result.rowcount, row[0] if row else None
    finally:
        result.close()


def missing_schema(ready_sql: str) -> EventsError:
    schema = ready_sql.split("'")[1].rsplit(".", 1)[0]
    return EventsError(
        f"the schema {schema} has no events tables in this database: run `events migrate` "
        f"(with the same EVENTS_POSTGRES_URL and EVENTS_PG_SCHEMA) first"
    )


def write(run: Run, sql: str, params: dict, find: Optional[str]) -> Optional[str]:
    """Writes the row; returns the id of the event that already holds its
    idempotency key (nothing written), else ``None``."""
    written, _ = run(sql, params)
    if find is not None and written == 0:
        return run(find, {"key": params["key"]})[1]
    return None
