"""Every query of admissions. Scheduling's tables (departments, clinicians, resources, sessions,
appointments) are read here, never written: appointments change through the scheduling service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from carepoints.kit.bulk import upsert
from carepoints.kit.db import table
from carepoints.scheduling import repository as sched
from carepoints.services.admissions.models import (
    AdmissionOrder,
    OperatingRoom,
    PrevisitOrder,
    RoomDay,
    SurgeryRequest,
    Ward,
    WardDay,
)

wards = table(Ward)
ward_days = table(WardDay)
orders = table(AdmissionOrder)
rooms = table(OperatingRoom)
room_days = table(RoomDay)
surgeries = table(SurgeryRequest)
previsits = table(PrevisitOrder)


def _pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def get(conn: Connection, tbl: Table, row_id: str, *, lock: bool = False) -> RowMapping | None:
    """A row by id; with `lock` on PostgreSQL FOR UPDATE (SQLite's BEGIN IMMEDIATE serialises)."""
    stmt = select(tbl).where(tbl.c.id == row_id)
    if lock and _pg(conn):
        stmt = stmt.with_for_update()
    return conn.execute(stmt).mappings().first()


def add(conn: Connection, tbl: Table, row: dict[str, Any]) -> None:
    conn.execute(insert(tbl), [row])


def set_row(conn: Connection, tbl: Table, row_id: str, expect: dict[str, Any], **values: Any) -> bool:
    """A guarded UPDATE: only while the row still holds `expect`; False when it changed meanwhile."""
    stmt = update(tbl).where(tbl.c.id == row_id, *(tbl.c[k] == v for k, v in expect.items())).values(**values)
    return bool(conn.execute(stmt).rowcount)


def by_key(conn: Connection, tbl: Table, key: str) -> RowMapping | None:
    return conn.execute(select(tbl).where(tbl.c.idempotency_key == key)).mappings().first()


def owners(conn: Connection, tbl: Table, row_id: str) -> list[str]:
    return [str(v) for v in conn.execute(select(tbl.c.patient_id).where(tbl.c.id == row_id)).scalars()]


def department(conn: Connection, department_id: str) -> RowMapping | None:
    return sched.get(conn, sched.departments, department_id)


def list_of(conn: Connection, tbl: Table) -> list[RowMapping]:
    d = sched.departments
    stmt = (select(tbl, d.c.name_zh.label("department_zh"), d.c.name_en.label("department_en"))
            .join(d, d.c.id == tbl.c.department_id).where(tbl.c.active.is_(True)).order_by(tbl.c.code, tbl.c.id))
    return list(conn.execute(stmt).mappings())


# --- the guarded day counters ----------------------------------------------------------------

def take_bed(conn: Connection, ward_id: str, day: date, capacity: int) -> bool:
    """One more admission on the ward's day if its capacity allows: one guarded upsert, so that
    concurrent bookings never overfill it (a day set to another capacity keeps its own)."""
    ins = upsert(conn, ward_days).values(ward_id=ward_id, day=day, booked=1, capacity=capacity)
    stmt = ins.on_conflict_do_update(
        index_elements=[ward_days.c.ward_id, ward_days.c.day], set_={"booked": ward_days.c.booked + 1},
        where=ward_days.c.booked < ward_days.c.capacity).returning(ward_days.c.booked)
    return conn.execute(stmt).first() is not None


def give_bed(conn: Connection, ward_id: str, day: date) -> None:
    conn.execute(update(ward_days).where(ward_days.c.ward_id == ward_id, ward_days.c.day == day,
                                         ward_days.c.booked > 0).values(booked=ward_days.c.booked - 1))


def set_day_capacity(conn: Connection, ward_id: str, day: date, capacity: int) -> bool:
    """Set a day's capacity, never below what is booked (guarded; False when it would be)."""
    ins = upsert(conn, ward_days).values(ward_id=ward_id, day=day, booked=0, capacity=capacity)
    stmt = ins.on_conflict_do_update(
        index_elements=[ward_days.c.ward_id, ward_days.c.day], set_={"capacity": capacity},
        where=ward_days.c.booked <= capacity).returning(ward_days.c.capacity)
    return conn.execute(stmt).first() is not None


def ward_days_between(conn: Connection, ward_id: str, first: date, last: date) -> dict[date, tuple[int, int]]:
    """day → (booked, capacity) for the days that have a counter row."""
    rows = conn.execute(select(ward_days.c.day, ward_days.c.booked, ward_days.c.capacity)
                        .where(ward_days.c.ward_id == ward_id, ward_days.c.day >= first, ward_days.c.day <= last))
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def take_room_time(conn: Connection, room: RowMapping, day: date, minutes: int) -> bool:
    """`minutes` and one case of the room's day, if both fit: one guarded upsert."""
    ins = upsert(conn, room_days).values(room_id=room["id"], day=day, minutes_booked=minutes,
                                         minutes_capacity=room["minutes_per_day"], cases_booked=1,
                                         cases_capacity=room["cases_per_day"])
    stmt = ins.on_conflict_do_update(
        index_elements=[room_days.c.room_id, room_days.c.day],
        set_={"minutes_booked": room_days.c.minutes_booked + minutes, "cases_booked": room_days.c.cases_booked + 1},
        where=(room_days.c.minutes_booked + minutes <= room_days.c.minutes_capacity)
        & (room_days.c.cases_booked < room_days.c.cases_capacity)).returning(room_days.c.cases_booked)
    return conn.execute(stmt).first() is not None


def give_room_time(conn: Connection, room_id: str, day: date, minutes: int) -> None:
    conn.execute(update(room_days).where(room_days.c.room_id == room_id, room_days.c.day == day,
                                         room_days.c.cases_booked > 0, room_days.c.minutes_booked >= minutes)
                 .values(minutes_booked=room_days.c.minutes_booked - minutes,
                         cases_booked=room_days.c.cases_booked - 1))


def room_day(conn: Connection, room_id: str, day: date) -> RowMapping | None:
    return conn.execute(select(room_days).where(room_days.c.room_id == room_id, room_days.c.day == day)
                        ).mappings().first()


# --- lists ----------------------------------------------------------------------------------

def of_patient(conn: Connection, tbl: Table, patient_id: str, order_col: str, limit: int = 50) -> list[RowMapping]:
    stmt = (select(tbl).where(tbl.c.patient_id == patient_id)
            .order_by(tbl.c[order_col].desc(), tbl.c.id.desc()).limit(limit))
    return list(conn.execute(stmt).mappings())


def ward_day_orders(conn: Connection, ward_id: str, day: date) -> list[RowMapping]:
    stmt = (select(orders).where(orders.c.ward_id == ward_id, orders.c.admission_date == day,
                                 orders.c.status.in_(("booked", "admitted")))
            .order_by(orders.c.booked_at, orders.c.id))
    return list(conn.execute(stmt).mappings())


def room_day_surgeries(conn: Connection, room_id: str, day: date) -> list[RowMapping]:
    stmt = (select(surgeries).where(surgeries.c.room_id == room_id, surgeries.c.surgery_date == day,
                                    surgeries.c.status.in_(("scheduled", "done")))
            .order_by(surgeries.c.scheduled_at, surgeries.c.id))
    return list(conn.execute(stmt).mappings())


def open_surgeries(conn: Connection, department_ids: Sequence[str] | None, limit: int = 200) -> list[RowMapping]:
    """Requests waiting for a date, oldest first."""
    stmt = (select(surgeries).where(surgeries.c.status == "requested")
            .order_by(surgeries.c.requested_at, surgeries.c.id).limit(limit))
    if department_ids is not None:
        stmt = stmt.where(surgeries.c.department_id.in_(list(department_ids)))
    return list(conn.execute(stmt).mappings())


# --- scheduling reads (pre-visit) -------------------------------------------------------------

def sessions_from(conn: Connection, *, clinician_id: str | None = None, resource_id: str | None = None,
                  starts_from: datetime | None, ends_after: datetime, until: date, limit: int = 60) -> list[RowMapping]:
    """Open sessions of the clinician or resource not yet over, that start at or after
    `starts_from` (None: any start), up to the local day `until`, first first — released or not
    (a clinician books ahead of release, as 诊间复诊预约)."""
    s = sched.sessions
    stmt = select(s.c.id, s.c.starts_at, s.c.ends_at, s.c.day).where(
        s.c.status == "open", s.c.ends_at > ends_after, s.c.day <= until)
    if starts_from is not None:
        stmt = stmt.where(s.c.starts_at >= starts_from)
    stmt = stmt.where(s.c.clinician_id == clinician_id) if clinician_id is not None \
        else stmt.where(s.c.resource_id == resource_id)
    return list(conn.execute(stmt.order_by(s.c.starts_at, s.c.id).limit(limit)).mappings())


def appointment(conn: Connection, appointment_id: str) -> RowMapping | None:
    return sched.get(conn, sched.appointments, appointment_id)


def clinicians_of_staff(conn: Connection, staff_user_id: str) -> list[RowMapping]:
    c = sched.clinicians
    return list(conn.execute(select(c).where(c.c.staff_user_id == staff_user_id).order_by(c.c.id)).mappings())


def catalogue(conn: Connection, tbl: Table, row_id: str) -> RowMapping | None:
    """A clinician or a resource (scheduling's catalogue) by id."""
    return sched.get(conn, tbl, row_id)


def catalogue_list(conn: Connection, tbl: Table, limit: int = 500) -> list[RowMapping]:
    """Clinicians or resources with their department's names (the staff forms' choices)."""
    d = sched.departments
    stmt = (select(tbl, d.c.name_zh.label("department_zh"), d.c.name_en.label("department_en"))
            .join(d, d.c.id == tbl.c.department_id).order_by(d.c.code, tbl.c.code).limit(limit))
    return list(conn.execute(stmt).mappings())
