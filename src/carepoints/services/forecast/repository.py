"""Every query of the forecast domain. The scheduling tables are read here (appointments,
waitlist entries, sessions, slots), never written: capacities change only through the
scheduling service (scheduling.capacity).

What counts as demand for a slot hour: every booking made for a slot starting in that hour
that held it (booked, checked in, attended, no-show) or that the hospital cancelled (停诊: the
patient wanted it); not a booking the patient cancelled (the slot went back to others, who are
counted when they booked it). Plus every waitlist entry (候补) for the session that did not end in
a booking (the booking is counted already), spread evenly over the session's hours. A booking
refused because the session was full stores nothing in carepoints (409, no row), so turned-away
attempts are not counted: the waitlist is the recorded sign of unmet demand."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from carepoints.kit.bulk import insert_rows
from carepoints.kit.db import table
from carepoints.scheduling import repository as sched
from carepoints.services.forecast.models import ForecastRun, ForecastSuggestion

runs = table(ForecastRun)
suggestions = table(ForecastSuggestion)
_a, _s, _w, _slots = sched.appointments, sched.sessions, sched.waitlist, sched.slots
_DEMAND_STATUSES = ("booked", "checked_in", "attended", "no_show")


def booked_starts(conn: Connection, start: datetime, end: datetime) -> list[RowMapping]:
    """(department_id, slot_start, n): bookings that count as demand per slot start in [start, end)."""
    counted = or_(_a.c.status.in_(_DEMAND_STATUSES), (_a.c.status == "cancelled") & (_a.c.cancelled_by == "hospital"))
    stmt = (select(_s.c.department_id, _a.c.slot_start, func.count().label("n"))
            .join(_s, _s.c.id == _a.c.session_id)
            .where(_a.c.slot_start >= start, _a.c.slot_start < end, counted)
            .group_by(_s.c.department_id, _a.c.slot_start))
    return list(conn.execute(stmt).mappings())


def waitlisted(conn: Connection, start: datetime, end: datetime) -> list[RowMapping]:
    """(department_id, starts_at, ends_at, n): waitlist entries per session starting in [start, end)
    that did not end in a booking."""
    stmt = (select(_s.c.department_id, _s.c.starts_at, _s.c.ends_at, func.count().label("n"))
            .join(_s, _s.c.id == _w.c.session_id)
            .where(_s.c.starts_at >= start, _s.c.starts_at < end, _w.c.status != "booked")
            .group_by(_s.c.id, _s.c.department_id, _s.c.starts_at, _s.c.ends_at))
    return list(conn.execute(stmt).mappings())


def coming_sessions(conn: Connection, start: datetime, end: datetime, now: datetime) -> list[RowMapping]:
    """Open sessions starting in [start, end) and after `now`, with the clinician's or resource's name."""
    c, r = sched.clinicians, sched.resources
    stmt = (select(_s.c.id, _s.c.department_id, _s.c.day, _s.c.starts_at, _s.c.ends_at, _s.c.slot_minutes,
                   _s.c.capacity, _s.c.template_id, func.coalesce(c.c.name, r.c.name).label("owner_name"))
            .outerjoin(c, c.c.id == _s.c.clinician_id).outerjoin(r, r.c.id == _s.c.resource_id)
            .where(_s.c.starts_at >= start, _s.c.starts_at < end, _s.c.starts_at > now, _s.c.status == "open")
            .order_by(_s.c.starts_at, _s.c.id))
    return list(conn.execute(stmt).mappings())


def slot_starts(conn: Connection, session_ids: list[str]) -> list[RowMapping]:
    """(session_id, starts_at, taken) of every slot of these sessions; taken = booked or offered."""
    if not session_ids:
        return []
    taken = (_slots.c.appointment_id.is_not(None)) | (_slots.c.held_for.is_not(None))
    stmt = (select(_slots.c.session_id, _slots.c.starts_at, taken.label("taken"))
            .where(_slots.c.session_id.in_(session_ids)))
    return list(conn.execute(stmt).mappings())


def owner_names(conn: Connection, clinician_ids: list[str], resource_ids: list[str]) -> dict[str, str]:
    c, r = sched.clinicians, sched.resources
    out: dict[str, str] = {}
    if clinician_ids:
        out.update({str(i): str(n) for i, n in conn.execute(select(c.c.id, c.c.name).where(c.c.id.in_(clinician_ids)))})
    if resource_ids:
        out.update({str(i): str(n) for i, n in conn.execute(select(r.c.id, r.c.name).where(r.c.id.in_(resource_ids)))})
    return out


# --- runs and suggestions ---------------------------------------------------------------------

def add_run(conn: Connection, row: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    insert_rows(conn, runs, [row])
    if rows:
        insert_rows(conn, suggestions, rows)


def supersede_pending(conn: Connection) -> int:
    """Every pending suggestion of earlier runs is replaced by the new run's."""
    return int(conn.execute(update(suggestions).where(suggestions.c.status == "pending")
                            .values(status="superseded")).rowcount)


def latest_run(conn: Connection) -> RowMapping | None:
    return conn.execute(select(runs).order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(1)).mappings().first()


def run(conn: Connection, run_id: str) -> RowMapping | None:
    return conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()


def of_run(conn: Connection, run_id: str) -> list[RowMapping]:
    stmt = (select(suggestions).where(suggestions.c.run_id == run_id)
            .order_by(suggestions.c.kind, suggestions.c.day, suggestions.c.weekday, suggestions.c.start_time,
                      suggestions.c.id))
    return list(conn.execute(stmt).mappings())


def suggestion(conn: Connection, suggestion_id: str, *, lock: bool = False) -> RowMapping | None:
    """A suggestion; locked FOR UPDATE on PostgreSQL with `lock` (a second apply waits, then sees it applied)."""
    stmt = select(suggestions).where(suggestions.c.id == suggestion_id)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return conn.execute(stmt).mappings().first()


def mark_applied(conn: Connection, suggestion_id: str, actor_id: str, now: datetime) -> bool:
    """pending → applied, once: False when it is no longer pending."""
    stmt = (update(suggestions).where(suggestions.c.id == suggestion_id, suggestions.c.status == "pending")
            .values(status="applied", applied_at=now, applied_by=actor_id))
    return bool(conn.execute(stmt).rowcount)


def first_day(conn: Connection) -> date | None:
    """The first local day any booking was made for."""
    value = conn.execute(select(func.min(_a.c.day))).scalar()
    return value if isinstance(value, date) else None
