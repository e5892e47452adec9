"""The registry of roll-ups and the `rollup-analytics` job.

A roll-up is a pure read `compute(session, start, tz)` answering the rows of one local day
(grain `day`) or of one ISO week / calendar month (grains `week`, `month`: distinct-patient
figures); the registry replaces the rows of that day or period in the roll-up's table, so a
re-run of any past day is idempotent. Views call the same `compute` for today (live), so a
live figure and a rolled-up one are the same query."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.orm import Session

from carepoints.analytics.models import RollupState
from carepoints.analytics.periods import _add_months, month_start, week_start
from carepoints.config import get_settings
from carepoints.kit.db import serialise, table, write_tx
from carepoints.kit.time import local_date
from carepoints.ledger.models import Transfer

Grain = Literal["day", "week", "month"]
Compute = Callable[[Session, date, ZoneInfo], list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Rollup:
    """`table` holds the rows; a day roll-up's table has a `day` column, a week / month
    roll-up's a `grain` and a `period_start` column."""

    name: str
    grain: Grain
    table: Table
    compute: Compute


ROLLUPS: dict[str, Rollup] = {}
# run after every `rollup_days` (job and CLI), each in its own transaction: state built from the
# day roll-ups that no single day owns (experiment results); `finish(session, days, today, tz)`
Finish = Callable[[Session, list[date], date, ZoneInfo], int]
FINISHERS: dict[str, Finish] = {}


def rollup(name: str, grain: Grain, tbl: Table) -> Callable[[Compute], Compute]:
    """Register `compute` as roll-up `name` of `grain` into `tbl` (decorator)."""
    def register(fn: Compute) -> Compute:
        if name in ROLLUPS:
            raise ValueError(f"roll-up {name} registered twice")
        ROLLUPS[name] = Rollup(name, grain, tbl, fn)
        return fn
    return register


def finisher(name: str) -> Callable[[Finish], Finish]:
    """Register `fn` to run at the end of every `rollup_days` with the days it re-rolled (decorator)."""
    def register(fn: Finish) -> Finish:
        if name in FINISHERS:
            raise ValueError(f"finisher {name} registered twice")
        FINISHERS[name] = fn
        return fn
    return register


def registered() -> list[Rollup]:
    from carepoints.analytics import catalogue  # noqa: F401  (every module that registers)
    return list(ROLLUPS.values())


def period_of(grain: Grain, day: date) -> tuple[date, date]:
    """(first, last) day of the period of `grain` holding `day`."""
    if grain == "day":
        return day, day
    if grain == "week":
        first = week_start(day)
        return first, first + timedelta(days=6)
    first = month_start(day)
    return first, _add_months(first, 1) - timedelta(days=1)


def replace(session: Session, r: Rollup, start: date, tz: ZoneInfo) -> int:
    """Recompute roll-up `r` for the period starting `start`; answers the rows written. Two
    re-rolls of one period (the job and the CLI, say) take turns: the second computes after the
    first committed and replaces its rows, never colliding with them."""
    conn = session.connection()
    serialise(conn, f"analytics-rollup:{r.name}:{start.isoformat()}")
    rows = r.compute(session, start, tz)
    if r.grain == "day":
        conn.execute(delete(r.table).where(r.table.c.day == start))
    else:
        conn.execute(delete(r.table).where(r.table.c.grain == r.grain, r.table.c.period_start == start))
    if rows:
        conn.execute(insert(r.table), rows)
    return len(rows)


def rollup_days(days: Iterable[date], today: date, tz: ZoneInfo) -> dict[str, int]:
    """Re-roll the given closed days, then every closed week and month holding one of them, then
    the finishers; one transaction per day / period / finisher. Days on or after `today` are
    skipped (live)."""
    rollups = registered()
    todo = sorted({d for d in days if d < today})
    written = 0
    for day in todo:
        with write_tx() as session:
            written += sum(replace(session, r, day, tz) for r in rollups if r.grain == "day")
    periods = {(r.grain, period_of(r.grain, d)[0]) for r in rollups if r.grain != "day" for d in todo
               if period_of(r.grain, d)[1] < today}
    for grain, first in sorted(periods):
        with write_tx() as session:
            written += sum(replace(session, r, first, tz) for r in rollups if r.grain == grain)
    for fn in FINISHERS.values():
        with write_tx() as session:
            written += fn(session, todo, today, tz)
    return {"days": len(todo), "periods": len(periods), "rows": written}


def _state(session: Session) -> dict[str, str]:
    return {str(k): str(v) for k, v in session.execute(select(RollupState.name, RollupState.value)).all()}


def _set_state(session: Session, **values: str) -> None:
    t = table(RollupState)
    conn = session.connection()
    serialise(conn, "analytics-rollup-state")
    for name, value in values.items():
        conn.execute(delete(t).where(t.c.name == name))
        conn.execute(insert(t), [{"name": name, "value": value}])


def due_days(session: Session, today: date, tz: ZoneInfo, rerun_days: int) -> tuple[set[date], str | None]:
    """The closed days to roll up: those after the last one rolled (from the first ledger entry
    on a first run), the last `rerun_days` closed days, and older days with ledger entries
    posted since the last run. Answers them and the newest ledger entry id seen."""
    state = _state(session)
    transfers = table(Transfer)
    last_id = state.get("transfer_id")
    newest = session.execute(select(func.max(transfers.c.id))).scalar()
    days = {today - timedelta(days=i) for i in range(1, rerun_days + 1)}
    if "rolled_through" in state:
        d = date.fromisoformat(state["rolled_through"]) + timedelta(days=1)
    else:
        first = session.execute(select(func.min(transfers.c.at))).scalar()
        d = local_date(first, tz) if first is not None else today
    while d < today:
        days.add(d)
        d += timedelta(days=1)
    if last_id is not None and newest is not None and newest > last_id:
        ats = session.execute(select(transfers.c.at).where(transfers.c.id > last_id)).scalars()
        days |= {local_date(at, tz) for at in ats}
    return days, newest


def rollup_analytics(now: datetime) -> dict[str, Any]:
    """`rollup-analytics`: every due closed day (see `due_days`), then their closed weeks and
    months; incremental and re-runnable (`carepoints analytics rollup --day` re-rolls any day)."""
    began = time.perf_counter()
    settings = get_settings()
    tz = settings.tz
    today = local_date(now, tz)
    with write_tx() as session:
        days, newest = due_days(session, today, tz, settings.analytics_rerun_days)
    result = rollup_days(days, today, tz)
    with write_tx() as session:
        _set_state(session, rolled_through=(today - timedelta(days=1)).isoformat(),
                   **({"transfer_id": newest} if newest else {}))
    return {**result, "seconds": round(time.perf_counter() - began, 3)}
