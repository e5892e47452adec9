"""Helpers for the audit tests: write rows, seal, verify, and tamper as an
attacker with database access would (triggers off first)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from carepoints.audit import service as audit
from carepoints.audit.models import AuditEntry, AuditSeal
from carepoints.config import get_settings
from carepoints.kit.db import get_engine, read_tx, table, write_tx
from carepoints.kit.time import utc_now

LOG = table(AuditEntry)
SEALS = table(AuditSeal)
# a negative margin seals even the rows of the current millisecond (tests only)
NOW_MARGIN = timedelta(milliseconds=-5)
_SQLITE_TRIGGERS = ("audit_log_no_update", "audit_log_no_delete", "audit_seals_no_update", "audit_seals_no_delete")


def add_rows(n: int, *, patient_id: str | None = None, at: datetime | None = None,
             action: str = "test:row:write") -> list[str]:
    """`n` audit rows in one committed transaction; their ids."""
    with write_tx() as session:
        return [audit.record(session, audit.Actor("staff", "s-1", "frontdesk"), action, at or utc_now(),
                             patient_id=patient_id, subject_id=f"subj-{i}", n=i) for i in range(n)]


def seal_all(*, block_rows: int = 1000, margin: timedelta = NOW_MARGIN) -> list[int]:
    """Seal every due block, one transaction each; the rows per block sealed."""
    sealed: list[int] = []
    while True:
        with write_tx() as session:
            n = audit.seal(session, get_settings().checkpoint_key, utc_now(), margin=margin, block_rows=block_rows)
        if n == 0:
            return sealed
        sealed.append(n)


def verify(key: str | None = None) -> audit.Report:
    with read_tx() as session:
        return audit.verify(session, key or get_settings().checkpoint_key)


def all_ids() -> list[str]:
    with read_tx() as session:
        return [r[0] for r in session.connection().execute(select(LOG.c.id).order_by(LOG.c.id))]


def seals() -> list[dict[str, Any]]:
    with read_tx() as session:
        return [dict(r) for r in session.connection().execute(select(SEALS).order_by(SEALS.c.block)).mappings()]


def sql(statement: str, **params: Any) -> Any:
    """Raw SQL in its own committed transaction (what a person with DB access can do)."""
    with get_engine().begin() as conn:
        return conn.execute(text(statement), params)


@contextmanager
def attacker() -> Iterator[None]:
    """The append-only triggers switched off, as an attacker with DB access would; back on after
    (the PostgreSQL test database is shared by the tests of one worker)."""
    postgres = get_engine().dialect.name == "postgresql"
    saved: list[str] = []
    if postgres:
        for t in ("audit_log", "audit_seals"):
            sql(f"ALTER TABLE {t} DISABLE TRIGGER {t}_append_only")
    else:
        saved = [sql("SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = :n", n=n).scalar_one()
                 for n in _SQLITE_TRIGGERS]
        for n in _SQLITE_TRIGGERS:
            sql(f"DROP TRIGGER {n}")
    try:
        yield
    finally:
        if postgres:
            for t in ("audit_log", "audit_seals"):
                sql(f"ALTER TABLE {t} ENABLE TRIGGER {t}_append_only")
        else:
            for ddl in saved:
                sql(ddl)


def next_id(after: str) -> str:
    """The id right after `after` (its last hex digit + 1); `after` must not end in f."""
    return after[:-1] + format(int(after[-1], 16) + 1, "x")
