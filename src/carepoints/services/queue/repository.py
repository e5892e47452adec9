"""Every query of queue calls. The scheduling tables are read here (sessions, appointments,
clinicians), never written: appointments change only through the scheduling service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from carepoints.kit.bulk import insert_new
from carepoints.kit.db import table
from carepoints.scheduling import repository as sched
from carepoints.services.queue.models import LIVE_CALL, QueueCall, QueueDeskStaff, QueueNotice

calls = table(QueueCall)
desk_staff = table(QueueDeskStaff)
notices = table(QueueNotice)
_a = sched.appointments
_s = sched.sessions


def session_row(conn: Connection, session_id: str) -> RowMapping | None:
    """The session with its department's and clinician's names."""
    d, c = sched.departments, sched.clinicians
    stmt = (select(_s.c.id, _s.c.department_id, _s.c.clinician_id, _s.c.day, _s.c.starts_at, _s.c.ends_at,
                   _s.c.status, d.c.name_zh.label("department_zh"), d.c.name_en.label("department_en"),
                   d.c.institution_id, c.c.name.label("clinician_name"))
            .join(d, d.c.id == _s.c.department_id).outerjoin(c, c.c.id == _s.c.clinician_id)
            .where(_s.c.id == session_id))
    return conn.execute(stmt).mappings().first()


def sessions_of_day(conn: Connection, day: date, department_ids: list[str] | None) -> list[RowMapping]:
    """The open sessions of a local day (of these departments; None = every department)."""
    d, c = sched.departments, sched.clinicians
    stmt = (select(_s.c.id, _s.c.department_id, _s.c.starts_at, _s.c.ends_at, d.c.name_zh.label("department_zh"),
                   d.c.name_en.label("department_en"), c.c.name.label("clinician_name"))
            .join(d, d.c.id == _s.c.department_id).outerjoin(c, c.c.id == _s.c.clinician_id)
            .where(_s.c.day == day, _s.c.status == "open").order_by(_s.c.starts_at, _s.c.id))
    if department_ids is not None:
        stmt = stmt.where(_s.c.department_id.in_(department_ids))
    return list(conn.execute(stmt).mappings())


def checked_in(conn: Connection, session_id: str) -> list[RowMapping]:
    stmt = (select(_a.c.id, _a.c.patient_id, _a.c.seq, _a.c.slot_start, _a.c.checked_in_at, _a.c.late,
                   _a.c.priority)
            .where(_a.c.session_id == session_id, _a.c.status == "checked_in"))
    return list(conn.execute(stmt).mappings())


def call_state(conn: Connection, session_id: str) -> tuple[set[str], dict[str, tuple[int, datetime]]]:
    """Appointments with a live call, and per appointment its skips (count, last skip time)."""
    live = {r[0] for r in conn.execute(select(calls.c.appointment_id).where(
        calls.c.session_id == session_id, calls.c.status.in_(LIVE_CALL)))}
    skipped = {r[0]: (int(r[1]), r[2]) for r in conn.execute(
        select(calls.c.appointment_id, func.count(), func.max(calls.c.closed_at))
        .where(calls.c.session_id == session_id, calls.c.status == "skipped")
        .group_by(calls.c.appointment_id))}
    return live, skipped


def current(conn: Connection, session_id: str) -> RowMapping | None:
    """The latest call still open (called or recalled), if any."""
    stmt = (select(calls).where(calls.c.session_id == session_id, calls.c.status.in_(("called", "recalled")))
            .order_by(calls.c.called_at.desc(), calls.c.id.desc()).limit(1))
    return conn.execute(stmt).mappings().first()


def latest(conn: Connection, session_id: str) -> RowMapping | None:
    """The latest call of the session whatever its state (the number shown as current)."""
    stmt = (select(calls).where(calls.c.session_id == session_id)
            .order_by(calls.c.called_at.desc(), calls.c.id.desc()).limit(1))
    return conn.execute(stmt).mappings().first()


def open_calls(conn: Connection, session_id: str) -> list[RowMapping]:
    return list(conn.execute(select(calls).where(calls.c.session_id == session_id,
                                                 calls.c.status.in_(("called", "recalled")))).mappings())


def call_times(conn: Connection, session_id: str) -> list[datetime]:
    return [r[0] for r in conn.execute(select(calls.c.called_at).where(calls.c.session_id == session_id))]


def add_call(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(calls), [row])


def set_call(conn: Connection, call_id: str, from_status: tuple[str, ...], **values: Any) -> bool:
    """A guarded update: only while the call is in one of `from_status`."""
    return bool(conn.execute(update(calls).where(calls.c.id == call_id, calls.c.status.in_(from_status))
                             .values(**values)).rowcount)


def patient_checked_in(conn: Connection, patient_ids: list[str], day: date) -> list[RowMapping]:
    stmt = (select(_a.c.id, _a.c.patient_id, _a.c.session_id, _a.c.seq, _a.c.slot_start)
            .where(_a.c.patient_id.in_(patient_ids), _a.c.day == day, _a.c.status == "checked_in")
            .order_by(_a.c.slot_start, _a.c.id))
    return list(conn.execute(stmt).mappings())


def live_call_of(conn: Connection, appointment_id: str) -> RowMapping | None:
    return conn.execute(select(calls).where(calls.c.appointment_id == appointment_id,
                                            calls.c.status.in_(LIVE_CALL))).mappings().first()


def is_clinician_of(conn: Connection, staff_user_id: str, department_id: str) -> bool:
    c = sched.clinicians
    return conn.execute(select(c.c.id).where(c.c.staff_user_id == staff_user_id,
                                             c.c.department_id == department_id).limit(1)).first() is not None


def desk_departments(conn: Connection, staff_user_id: str) -> list[str]:
    """The departments a staff user calls for: assigned (desk, nurse) or as a clinician."""
    c = sched.clinicians
    assigned = {r[0] for r in conn.execute(select(desk_staff.c.department_id)
                                           .where(desk_staff.c.staff_user_id == staff_user_id))}
    own = {r[0] for r in conn.execute(select(c.c.department_id).where(c.c.staff_user_id == staff_user_id))}
    return sorted(assigned | own)


def assign(conn: Connection, department_id: str, staff_user_id: str, now: datetime) -> bool:
    return insert_new(conn, desk_staff, {"department_id": department_id, "staff_user_id": staff_user_id,
                                         "created_at": now}, ("department_id", "staff_user_id"))


def note_once(conn: Connection, appointment_id: str, kind: str, now: datetime) -> bool:
    """Record a notice; True only the first time for this appointment and kind."""
    return insert_new(conn, notices, {"appointment_id": appointment_id, "kind": kind, "sent_at": now},
                      ("appointment_id", "kind"))
