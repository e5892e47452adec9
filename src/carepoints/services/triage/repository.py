"""Every query of the triage tables (the knowledge base, the department mapping, the daily
counts). Hospital departments, sessions and patients are read through their own services."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from carepoints.kit.bulk import upsert
from carepoints.kit.db import table
from carepoints.services.triage.models import (
    TriageDailyCount,
    TriageDepartmentMap,
    TriageKind,
    TriageKnowledgeState,
    TriageRedFlag,
    TriageTerm,
)

kinds_t = table(TriageKind)
terms_t = table(TriageTerm)
flags_t = table(TriageRedFlag)
map_t = table(TriageDepartmentMap)
counts_t = table(TriageDailyCount)
state_t = table(TriageKnowledgeState)


def kinds(conn: Connection) -> list[RowMapping]:
    return list(conn.execute(select(kinds_t).order_by(kinds_t.c.sort, kinds_t.c.code)).mappings())


def kind(conn: Connection, code: str) -> RowMapping | None:
    return conn.execute(select(kinds_t).where(kinds_t.c.code == code)).mappings().first()


def terms(conn: Connection) -> list[RowMapping]:
    return list(conn.execute(select(terms_t).order_by(terms_t.c.id)).mappings())


def term(conn: Connection, term_id: str, *, lock: bool = False) -> RowMapping | None:
    stmt = select(terms_t).where(terms_t.c.id == term_id)
    return conn.execute(stmt.with_for_update() if lock else stmt).mappings().first()


def red_flags(conn: Connection) -> list[RowMapping]:
    return list(conn.execute(select(flags_t).order_by(flags_t.c.sort, flags_t.c.id)).mappings())


def red_flag(conn: Connection, flag_id: str, *, lock: bool = False) -> RowMapping | None:
    stmt = select(flags_t).where(flags_t.c.id == flag_id)
    return conn.execute(stmt.with_for_update() if lock else stmt).mappings().first()


def ids(conn: Connection, tbl: Any, column: str) -> set[str]:
    return {str(r[0]) for r in conn.execute(select(tbl.c[column]))}


def add(conn: Connection, tbl: Any, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(tbl), list(rows))


def set_term(conn: Connection, term_id: str, **values: Any) -> None:
    conn.execute(update(terms_t).where(terms_t.c.id == term_id).values(**values))


def set_red_flag(conn: Connection, flag_id: str, **values: Any) -> None:
    conn.execute(update(flags_t).where(flags_t.c.id == flag_id).values(**values))


def set_kind(conn: Connection, code: str, **values: Any) -> None:
    conn.execute(update(kinds_t).where(kinds_t.c.code == code).values(**values))


def refresh_term(conn: Connection, term_id: str, **values: Any) -> bool:
    """Update a term only while it is as shipped (source shipped, never edited: version 1); a
    concurrent edit wins. True when the row changed."""
    stmt = (update(terms_t).where(terms_t.c.id == term_id, terms_t.c.source == "shipped", terms_t.c.version == 1)
            .values(**values))
    return bool(conn.execute(stmt).rowcount)


def refresh_red_flag(conn: Connection, flag_id: str, **values: Any) -> bool:
    """Update a red flag only while it was never edited (version 1). True when the row changed."""
    stmt = update(flags_t).where(flags_t.c.id == flag_id, flags_t.c.version == 1).values(**values)
    return bool(conn.execute(stmt).rowcount)


def fingerprint(conn: Connection, name: str) -> str | None:
    """The fingerprint of the shipped knowledge base the tables were last refreshed from."""
    found = conn.execute(select(state_t.c.fingerprint).where(state_t.c.name == name)).scalar()
    return None if found is None else str(found)


def set_fingerprint(conn: Connection, name: str, value: str, now: datetime) -> None:
    stmt = upsert(conn, state_t).values(name=name, fingerprint=value, updated_at=now)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"fingerprint": value, "updated_at": now}))


def mappings(conn: Connection, kind_code: str | None = None) -> list[RowMapping]:
    stmt = select(map_t).order_by(map_t.c.kind_code, map_t.c.department_id)
    if kind_code is not None:
        stmt = stmt.where(map_t.c.kind_code == kind_code)
    return list(conn.execute(stmt).mappings())


def replace_mappings(conn: Connection, kind_code: str, rows: Sequence[dict[str, Any]]) -> None:
    conn.execute(delete(map_t).where(map_t.c.kind_code == kind_code))
    add(conn, map_t, rows)


def bump(conn: Connection, day: date, keys: Iterable[tuple[str, str]]) -> None:
    """+1 on each (dimension, code) count of `day`, in one statement per key (concurrent triages
    add up: the database does the arithmetic)."""
    for dimension, code in dict.fromkeys(keys):
        stmt = upsert(conn, counts_t).values(day=day, dimension=dimension, code=code, count=1)
        conn.execute(stmt.on_conflict_do_update(index_elements=["day", "dimension", "code"],
                                                set_={"count": counts_t.c.count + 1}))


def counts(conn: Connection, start: date, end: date) -> list[RowMapping]:
    """The counts of the days from `start` to `end`, summed per (dimension, code), largest first."""
    total = func.sum(counts_t.c.count).label("count")
    stmt = (select(counts_t.c.dimension, counts_t.c.code, total)
            .where(counts_t.c.day >= start, counts_t.c.day <= end)
            .group_by(counts_t.c.dimension, counts_t.c.code)
            .order_by(counts_t.c.dimension, total.desc(), counts_t.c.code))
    return list(conn.execute(stmt).mappings())


def daily_totals(conn: Connection, start: date, end: date) -> list[RowMapping]:
    stmt = (select(counts_t.c.day, counts_t.c.count)
            .where(counts_t.c.day >= start, counts_t.c.day <= end, counts_t.c.dimension == "total")
            .order_by(counts_t.c.day))
    return list(conn.execute(stmt).mappings())
