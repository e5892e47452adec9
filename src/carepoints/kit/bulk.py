"""Lean multi-row writes for the hot paths (event ingest, posting).

SQLAlchemy's per-row parameter processing costs more than SQLite's own
insert on these paths, so rows go to the driver's executemany as plain
tuples, converted once here the way the column types would store them:
naive-UTC text timestamps and ISO dates on SQLite, JSON as text (cast on
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import JSON, Date, Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from carepoints.kit.types import UTCDateTime


@lru_cache(maxsize=4096)
def _sqlite_ts(value: datetime) -> str:
    u = value.astimezone(UTC)
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d} {u.hour:02d}:{u.minute:02d}:{u.second:02d}"
            f".{u.microsecond:06d}")


def _json(value: Any) -> Any:
    return orjson.dumps(value).decode()


def _date(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


Converter = Callable[[Any], Any]


@lru_cache(maxsize=256)
def _plan(table: Table, columns: tuple[str, ...], dialect: str, kind: str,
          where: tuple[str, ...]) -> tuple[str, tuple[tuple[int, Converter], ...]]:
    """The SQL and, per column that needs it, the conversion the column type would do."""
    sqlite = dialect == "sqlite"
    mark = "?" if sqlite else "%s"
    converters: list[Converter | None] = []

    def slot(col: str) -> str:
        ctype = table.c[col].type
        if isinstance(ctype, JSON):
            converters.append(_json)
            return mark if sqlite else f"CAST({mark} AS JSON)"
        if isinstance(ctype, UTCDateTime):
            converters.append(_sqlite_ts if sqlite else None)
        elif isinstance(ctype, Date):
            converters.append(_date if sqlite else None)
        else:
            converters.append(None)
        return mark

    if kind == "insert":
        marks = ", ".join(slot(c) for c in columns)
        sql = f'INSERT INTO {table.name} ({", ".join(columns)}) VALUES ({marks})'  # noqa: S608 - names are columns of table
    else:
        # "+col" adds to the column instead of setting it
        sets = ", ".join(f"{c[1:]} = {c[1:]} + {slot(c[1:])}" if c.startswith("+") else f"{c} = {slot(c)}"
                         for c in columns)
        conds = " AND ".join(f"{c} = {slot(c)}" for c in where)
        sql = f"UPDATE {table.name} SET {sets} WHERE {conds}"  # noqa: S608 - names are columns of table
    return sql, tuple((i, f) for i, f in enumerate(converters) if f is not None)


def _params(rows: Iterable[Sequence[Any]], convert: tuple[tuple[int, Converter], ...]) -> list[Any]:
    if not convert:
        return [tuple(r) for r in rows]
    out = []
    for row in rows:
        values = list(row)
        for i, f in convert:
            v = values[i]
            if v is not None:
                values[i] = f(v)
        out.append(tuple(values))
    return out


@contextmanager
def _cursor(conn: Connection) -> Iterator[Any]:
    """A DBAPI cursor on the connection's current transaction: the hot paths skip
    SQLAlchemy's per-statement machinery, which costs more than the statement.
    Driver errors surface as SQLAlchemy's, as if the statement had gone through it."""
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    dbapi = conn.dialect.dbapi
    try:
        yield cur
    except dbapi.IntegrityError as exc:  # type: ignore[union-attr]
        raise sa_exc.IntegrityError(None, None, exc) from exc
    except dbapi.Error as exc:  # type: ignore[union-attr]
        raise sa_exc.DBAPIError.instance(None, None, exc, dbapi.Error) from exc  # type: ignore[union-attr]
    finally:
        cur.close()


@contextmanager
def savepoint(conn: Connection, name: str = "cp_item") -> Iterator[None]:
    """A driver-level savepoint: rolled back (and released) if the block raises."""
    with _cursor(conn) as cur:
        cur.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        with _cursor(conn) as cur:
            cur.execute(f"ROLLBACK TO SAVEPOINT {name}")
            cur.execute(f"RELEASE SAVEPOINT {name}")
        raise
    with _cursor(conn) as cur:
        cur.execute(f"RELEASE SAVEPOINT {name}")


def fetch(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """Run a driver-level query (placeholders from `marks`) and return all rows."""
    with _cursor(conn) as cur:
        cur.execute(sql, tuple(params))
        return list(cur.fetchall())


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], on_conflict: str = "") -> None:
    """INSERT many rows (all with the same keys) in one executemany; `on_conflict`
    is an optional `ON CONFLICT (...) DO ...` clause (the same on SQLite and PostgreSQL)."""
    if not rows:
        return
    columns = tuple(rows[0])
    sql, convert = _plan(table, columns, conn.dialect.name, "insert", ())
    pick = itemgetter(*columns) if len(columns) > 1 else (lambda r: (r[columns[0]],))
    with _cursor(conn) as cur:
        cur.executemany(f"{sql} {on_conflict}" if on_conflict else sql, _params(map(pick, rows), convert))


def update_rows(conn: Connection, table: Table, rows: Sequence[Sequence[Any]], set_: Sequence[str],
                where: Sequence[str]) -> int:
    """UPDATE many rows: each row is the values of `set_` then of `where`
    (equality conditions, a column may appear in both; "+col" in `set_` adds
    to the column). Returns rows matched."""
    if not rows:
        return 0
    sql, convert = _plan(table, tuple(set_), conn.dialect.name, "update", tuple(where))
    with _cursor(conn) as cur:
        cur.executemany(sql, _params(rows, convert))
        return int(cur.rowcount)


def values_clause(dialect: str, rows: int, casts: Sequence[str | None]) -> str:
    """`VALUES (?, ?), ...` for `rows` rows; on PostgreSQL each column may be cast
    (e.g. DATE) so that it compares with typed columns."""
    mark = "?" if dialect == "sqlite" else "%s"
    one = ", ".join(mark if dialect == "sqlite" or not c else f"CAST({mark} AS {c})" for c in casts)
    return "VALUES " + ", ".join([f"({one})"] * rows)


def as_date(value: Any) -> date:
    """A DATE read through the driver: a date on PostgreSQL, ISO text on SQLite."""
    return value if isinstance(value, date) else date.fromisoformat(value)


def marks(conn: Connection, n: int) -> str:
    """n driver placeholders for an IN list."""
    return ", ".join(["?" if conn.dialect.name == "sqlite" else "%s"] * n)


def ts_param(conn: Connection, value: datetime) -> Any:
    """A timestamp as a driver parameter, stored the way UTCDateTime stores it."""
    return _sqlite_ts(value) if conn.dialect.name == "sqlite" else value


def as_datetime(value: Any) -> datetime:
    """A timestamp read through the driver: aware on PostgreSQL, naive-UTC text on SQLite."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def upsert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT (with `on_conflict_do_nothing` / `_do_update` and `returning`)."""
    return (pg_insert(table) if conn.dialect.name == "postgresql" else sqlite_insert(table))


def insert_new(conn: Connection, table: Table, row: dict[str, Any], key: Sequence[str]) -> bool:
    """INSERT `row` unless one with the same `key` (a unique constraint) exists; True when
    this statement inserted it. One statement: concurrent callers cannot both insert."""
    stmt = upsert(conn, table).values(**row).on_conflict_do_nothing(index_elements=list(key))
    return conn.execute(stmt.returning(table.c[key[0]])).first() is not None
