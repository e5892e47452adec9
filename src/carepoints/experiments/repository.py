"""Every query of the experiments domain."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from carepoints.experiments.models import Experiment
from carepoints.kit.bulk import as_datetime, fetch, marks, ts_param
from carepoints.kit.db import serialise, table

_experiments = table(Experiment)
RESEARCH = "research"
_START_LOCK = 0x6578_7073_7461_7274  # pg_advisory_xact_lock key: one start at a time


def add(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(_experiments), [row])


def get(conn: Connection, experiment_id: str) -> RowMapping | None:
    return conn.execute(select(_experiments).where(_experiments.c.id == experiment_id)).mappings().first()


def by_code(conn: Connection, code: str) -> RowMapping | None:
    return conn.execute(select(_experiments).where(_experiments.c.code == code)).mappings().first()


def listing(conn: Connection, status: str | None, limit: int) -> list[RowMapping]:
    stmt = select(_experiments).order_by(_experiments.c.created_at.desc(), _experiments.c.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(_experiments.c.status == status)
    return list(conn.execute(stmt).mappings())


def running(conn: Connection) -> list[RowMapping]:
    return list(conn.execute(select(_experiments).where(_experiments.c.status == "running")).mappings())


def serialise_starts(conn: Connection) -> None:
    """Starts queue one behind the other, so that the overlap check of one sees the start
    that committed before it: an advisory lock on PostgreSQL; SQLite's write transactions
    (BEGIN IMMEDIATE) already run one at a time."""
    serialise(conn, _START_LOCK)


def move(conn: Connection, experiment_id: str, from_: str, to: str, **stamps: datetime) -> bool:
    """The guarded transition: true when this call moved the experiment from `from_`."""
    result = conn.execute(update(_experiments).where(_experiments.c.id == experiment_id,
                                                     _experiments.c.status == from_).values(status=to, **stamps))
    return result.rowcount == 1


def stamp(conn: Connection) -> tuple[int, str | None]:
    """Changes whenever the started experiments do (a start or a stop; ids are never reused)."""
    row = fetch(conn, "SELECT count(started_at) + count(stopped_at), "
                      "max(CASE WHEN started_at IS NOT NULL THEN id END) FROM experiments")[0]
    return int(row[0] or 0), row[1]


def started(conn: Connection) -> list[RowMapping]:
    """Running and stopped experiments (late events of a stopped one are still its)."""
    return list(conn.execute(select(_experiments.c.id, _experiments.c.code, _experiments.c.started_at,
                                    _experiments.c.stopped_at, _experiments.c.variants)
                             .where(_experiments.c.started_at.is_not(None))
                             .order_by(_experiments.c.started_at, _experiments.c.id)).mappings())


def research_consents(conn: Connection, patient_ids: Iterable[str], since: datetime | None = None,
                      ) -> dict[str, list[tuple[datetime, datetime | None]]]:
    """Each patient's research consents as [accepted_at, withdrawn_at) spans (one query per
    500 patients), leaving out those withdrawn before `since`."""
    ids = sorted(set(patient_ids))
    out: dict[str, list[tuple[datetime, datetime | None]]] = {}
    mark = marks(conn, 1)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        sql = ("SELECT patient_id, accepted_at, withdrawn_at FROM consents "  # noqa: S608 - placeholders only
               f"WHERE purpose = {mark} AND patient_id IN ({marks(conn, len(chunk))})")
        params: list[Any] = [RESEARCH, *chunk]
        if since is not None:
            sql += f" AND (withdrawn_at IS NULL OR withdrawn_at > {mark})"
            params.append(ts_param(conn, since))
        for pid, accepted, withdrawn in fetch(conn, sql, params):
            out.setdefault(pid, []).append((as_datetime(accepted), as_datetime(withdrawn) if withdrawn else None))
    return out
