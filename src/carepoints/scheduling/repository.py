"""Every query of the scheduling domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, insert, literal, select, union_all, update
from sqlalchemy.engine import Connection, RowMapping

from carepoints.kit.bulk import as_date, as_datetime, fetch, marks, ts_param, upsert
from carepoints.kit.db import table
from carepoints.scheduling.models import (
    LIVE,
    Appointment,
    CheckupBooking,
    CheckupDay,
    CheckupPackage,
    Clinician,
    ClinicSession,
    Department,
    Institution,
    Resource,
    SessionTemplate,
    Slot,
    WaitlistEntry,
)

institutions = table(Institution)
departments = table(Department)
clinicians = table(Clinician)
resources = table(Resource)
sessions = table(ClinicSession)
slots = table(Slot)
appointments = table(Appointment)


def _pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def get(conn: Connection, tbl: Any, row_id: str, *, lock: bool = False, share: bool = False) -> RowMapping | None:
    """A row; PostgreSQL: locked FOR UPDATE with `lock`, FOR SHARE with `share` (many
    readers at once, but a writer of the row waits for them and they for it)."""
    stmt = select(tbl).where(tbl.c.id == row_id)
    if (lock or share) and _pg(conn):
        stmt = stmt.with_for_update(read=share and not lock)
    return conn.execute(stmt).mappings().first()


def add(conn: Connection, tbl: Any, row: dict[str, Any]) -> None:
    conn.execute(insert(tbl), [row])


def claim_next(conn: Connection, session_id: str, appointment_id: str, pools: Sequence[str],
               not_before: datetime) -> RowMapping | None:
    """Take the first free slot of the session in `pools` (in that order of preference, then
    by seq) that starts at or after `not_before`, in one statement. PostgreSQL skips slots
    another transaction is claiming (SKIP LOCKED), so racers each get a different one
    instead of queueing on the first; the guard on appointment_id makes the claim safe
    whatever the isolation."""
    rank = case({p: i for i, p in enumerate(pools)}, value=slots.c.pool)
    pick = (select(slots.c.id)
            .where(slots.c.session_id == session_id, slots.c.appointment_id.is_(None),
                   slots.c.held_for.is_(None), slots.c.pool.in_(list(pools)), slots.c.starts_at >= not_before)
            .order_by(rank, slots.c.seq).limit(1))
    if _pg(conn):
        pick = pick.with_for_update(skip_locked=True)
    stmt = (update(slots).where(slots.c.id == pick.scalar_subquery(), slots.c.appointment_id.is_(None))
            .values(appointment_id=appointment_id)
            .returning(slots.c.id, slots.c.seq, slots.c.starts_at, slots.c.ends_at, slots.c.pool))
    return conn.execute(stmt).mappings().first()


def claim_slot(conn: Connection, slot_id: str, session_id: str, appointment_id: str,
               pools: Sequence[str]) -> RowMapping | None:
    """Take this slot if it is free and in one of `pools` (PostgreSQL waits for a concurrent
    claim of the same slot, then finds it taken)."""
    stmt = (update(slots).where(slots.c.id == slot_id, slots.c.session_id == session_id,
                                slots.c.appointment_id.is_(None), slots.c.held_for.is_(None),
                                slots.c.pool.in_(list(pools)))
            .values(appointment_id=appointment_id)
            .returning(slots.c.id, slots.c.seq, slots.c.starts_at, slots.c.ends_at, slots.c.pool))
    return conn.execute(stmt).mappings().first()


def free_slot(conn: Connection, slot_id: str, appointment_id: str) -> bool:
    res = conn.execute(update(slots).where(slots.c.id == slot_id, slots.c.appointment_id == appointment_id)
                       .values(appointment_id=None))
    return bool(res.rowcount)


def live_of_patient_day(conn: Connection, patient_id: str, day: date) -> list[RowMapping]:
    return list(conn.execute(select(appointments.c.id, appointments.c.day_rank, appointments.c.clinician_guard)
                             .where(appointments.c.patient_id == patient_id, appointments.c.day == day,
                                    appointments.c.status.in_(LIVE))).mappings())


def by_idempotency_key(conn: Connection, patient_id: str, key: str) -> RowMapping | None:
    return conn.execute(select(appointments).where(appointments.c.patient_id == patient_id,
                                                   appointments.c.idempotency_key == key)).mappings().first()


def set_appointment(conn: Connection, appointment_id: str, **values: Any) -> None:
    conn.execute(update(appointments).where(appointments.c.id == appointment_id).values(**values))


def free_counts(conn: Connection, session_ids: Sequence[str], not_before: datetime) -> dict[str, dict[str, int]]:
    """Free slots per session and pool, counting only slots that start at or after `not_before`."""
    out: dict[str, dict[str, int]] = {sid: {"online": 0, "onsite": 0, "referral": 0} for sid in session_ids}
    if not session_ids:
        return out
    rows = conn.execute(select(slots.c.session_id, slots.c.pool, func.count())
                        .where(slots.c.session_id.in_(list(session_ids)), slots.c.appointment_id.is_(None),
                               slots.c.held_for.is_(None), slots.c.starts_at >= not_before)
                        .group_by(slots.c.session_id, slots.c.pool))
    for sid, pool, n in rows:
        out[sid][pool] = int(n)
    return out


def open_sessions(conn: Connection, now: datetime, day: date | None, department_id: str | None,
                  clinician_id: str | None, *, staff_user_id: str | None = None) -> list[RowMapping]:
    """Sessions open for booking now: released, not cancelled, not yet over. With
    `staff_user_id`: that clinician's own sessions not yet over, released or not (the
    follow-up booking a clinician makes ahead of release)."""
    stmt = (select(sessions, departments.c.code.label("department_code"), departments.c.name_zh.label("department_zh"),
                   departments.c.name_en.label("department_en"), clinicians.c.name.label("clinician_name"),
                   resources.c.name.label("resource_name"), resources.c.modality)
            .join(departments, departments.c.id == sessions.c.department_id)
            .outerjoin(clinicians, clinicians.c.id == sessions.c.clinician_id)
            .outerjoin(resources, resources.c.id == sessions.c.resource_id)
            .where(sessions.c.status == "open", sessions.c.ends_at > now))
    if staff_user_id is None:
        stmt = stmt.where(sessions.c.release_at <= now)
    else:
        stmt = stmt.where(clinicians.c.staff_user_id == staff_user_id)
    if day is not None:
        stmt = stmt.where(sessions.c.day == day)
    if department_id is not None:
        stmt = stmt.where(and_(sessions.c.department_id == department_id))
    if clinician_id is not None:
        stmt = stmt.where(sessions.c.clinician_id == clinician_id)
    return list(conn.execute(stmt.order_by(sessions.c.starts_at, sessions.c.id).limit(500)).mappings())


def session_detail(conn: Connection, session_id: str) -> RowMapping | None:
    stmt = (select(sessions, departments.c.code.label("department_code"), clinicians.c.name.label("clinician_name"))
            .join(departments, departments.c.id == sessions.c.department_id)
            .outerjoin(clinicians, clinicians.c.id == sessions.c.clinician_id)
            .where(sessions.c.id == session_id))
    return conn.execute(stmt).mappings().first()


templates = table(SessionTemplate)


def active_templates(conn: Connection) -> list[RowMapping]:
    return list(conn.execute(select(templates).where(templates.c.active.is_(True)).order_by(templates.c.id)).mappings())


def template_has_session(conn: Connection, template_id: str, day: date) -> bool:
    return conn.execute(select(sessions.c.id).where(sessions.c.template_id == template_id,
                                                    sessions.c.day == day)).first() is not None


def set_session(conn: Connection, session_id: str, **values: Any) -> None:
    conn.execute(update(sessions).where(sessions.c.id == session_id).values(**values))


def live_of_session(conn: Connection, session_id: str) -> list[str]:
    return list(conn.execute(select(appointments.c.id).where(appointments.c.session_id == session_id,
                                                             appointments.c.status.in_(LIVE))
                             .order_by(appointments.c.id)).scalars())


def overdue_bookings(conn: Connection, cutoff: datetime, limit: int) -> list[str]:
    """Bookings never checked in whose session ended before `cutoff`."""
    stmt = (select(appointments.c.id).join(sessions, sessions.c.id == appointments.c.session_id)
            .where(appointments.c.status == "booked", sessions.c.ends_at < cutoff)
            .order_by(appointments.c.id).limit(limit))
    return list(conn.execute(stmt).scalars())


def sessions_with_reserved(conn: Connection, now: datetime) -> list[tuple[str, list[str] | None]]:
    """Open sessions past their referral release time that still have free referral slots."""
    has_free = (select(slots.c.id).where(slots.c.session_id == sessions.c.id, slots.c.pool == "referral",
                                         slots.c.appointment_id.is_(None)).exists())
    rows = conn.execute(select(sessions.c.id, sessions.c.pattern)
                        .where(sessions.c.status == "open", sessions.c.referral_release_at <= now,
                               sessions.c.ends_at > now, has_free).order_by(sessions.c.id))
    return [(r[0], r[1]) for r in rows]


def free_referral_slots(conn: Connection, session_id: str) -> list[str]:
    return list(conn.execute(select(slots.c.id).where(slots.c.session_id == session_id, slots.c.pool == "referral",
                                                      slots.c.appointment_id.is_(None), slots.c.held_for.is_(None))
                             .order_by(slots.c.seq)).scalars())


def set_pool(conn: Connection, slot_id: str, pool: str) -> int:
    """Move a free referral slot to `pool` (guarded: a slot claimed meanwhile stays)."""
    res = conn.execute(update(slots).where(slots.c.id == slot_id, slots.c.pool == "referral",
                                           slots.c.appointment_id.is_(None)).values(pool=pool))
    return int(res.rowcount)


waitlist = table(WaitlistEntry)
WAITING = ("waiting", "offered")


def first_waiting(conn: Connection, session_id: str) -> RowMapping | None:
    """The longest-waiting entry of the session (PostgreSQL: one no other transaction is
    serving, SKIP LOCKED, locked for this one)."""
    stmt = (select(waitlist).where(waitlist.c.session_id == session_id, waitlist.c.status == "waiting")
            .order_by(waitlist.c.joined_at, waitlist.c.id).limit(1))
    if _pg(conn):
        stmt = stmt.with_for_update(skip_locked=True)
    return conn.execute(stmt).mappings().first()


def first_waiting_patient(conn: Connection, session_id: str) -> str | None:
    return conn.execute(select(waitlist.c.patient_id).where(waitlist.c.session_id == session_id,
                                                            waitlist.c.status == "waiting")
                        .order_by(waitlist.c.joined_at, waitlist.c.id).limit(1)).scalar()


def position(conn: Connection, entry: RowMapping) -> int:
    """1 for the first in line."""
    ahead = conn.execute(select(func.count()).where(
        waitlist.c.session_id == entry["session_id"], waitlist.c.status.in_(WAITING),
        (waitlist.c.joined_at < entry["joined_at"])
        | ((waitlist.c.joined_at == entry["joined_at"]) & (waitlist.c.id < entry["id"])))).scalar()
    return int(ahead or 0) + 1


def set_entry(conn: Connection, entry_id: str, **values: Any) -> None:
    conn.execute(update(waitlist).where(waitlist.c.id == entry_id).values(**values))


def entry_by_key(conn: Connection, patient_id: str, key: str) -> RowMapping | None:
    return conn.execute(select(waitlist).where(waitlist.c.patient_id == patient_id,
                                               waitlist.c.idempotency_key == key)).mappings().first()


def live_entry(conn: Connection, session_id: str, patient_id: str) -> RowMapping | None:
    return conn.execute(select(waitlist).where(waitlist.c.session_id == session_id,
                                               waitlist.c.patient_id == patient_id,
                                               waitlist.c.status.in_(WAITING))).mappings().first()


def live_in_session(conn: Connection, session_id: str, patient_id: str) -> bool:
    return conn.execute(select(appointments.c.id).where(appointments.c.session_id == session_id,
                                                        appointments.c.patient_id == patient_id,
                                                        appointments.c.status.in_(LIVE))).first() is not None


def hold(conn: Connection, slot_id: str, entry_id: str | None) -> None:
    conn.execute(update(slots).where(slots.c.id == slot_id).values(held_for=entry_id))


def take_held(conn: Connection, slot_id: str, entry_id: str, appointment_id: str) -> RowMapping | None:
    """Turn the slot held for this offer into the appointment's."""
    stmt = (update(slots).where(slots.c.id == slot_id, slots.c.held_for == entry_id,
                                slots.c.appointment_id.is_(None))
            .values(appointment_id=appointment_id, held_for=None)
            .returning(slots.c.id, slots.c.seq, slots.c.starts_at, slots.c.ends_at, slots.c.pool))
    return conn.execute(stmt).mappings().first()


def lapsed_offers(conn: Connection, now: datetime, limit: int) -> list[str]:
    return list(conn.execute(select(waitlist.c.id).where(waitlist.c.status == "offered",
                                                         waitlist.c.offer_expires_at <= now)
                             .order_by(waitlist.c.offer_expires_at, waitlist.c.id).limit(limit)).scalars())


def live_entries_of_session(conn: Connection, session_id: str) -> list[RowMapping]:
    return list(conn.execute(select(waitlist).where(waitlist.c.session_id == session_id,
                                                    waitlist.c.status.in_(WAITING))).mappings())


def actors(conn: Connection, actor_id: str | None = None) -> list[RowMapping]:
    """Clinicians and resources, each the actor of one FHIR Schedule."""
    doc = (select(clinicians.c.id, clinicians.c.name, literal("clinician").label("kind"),
                  departments.c.name_zh.label("department"), literal(None).label("modality"))
           .join(departments, departments.c.id == clinicians.c.department_id))
    res = (select(resources.c.id, resources.c.name, literal("resource").label("kind"),
                  departments.c.name_zh.label("department"), resources.c.modality)
           .join(departments, departments.c.id == resources.c.department_id))
    if actor_id is not None:
        doc, res = doc.where(clinicians.c.id == actor_id), res.where(resources.c.id == actor_id)
    both = union_all(doc, res).subquery()
    return list(conn.execute(select(both).order_by(both.c.id)).mappings())


def published_slots(conn: Connection, now: datetime, actor_id: str | None,
                    start: Sequence[tuple[str, datetime]], limit: int) -> list[RowMapping]:
    """Slots of released sessions, in time order, with their session's owner and status;
    `start` holds (operator, instant) bounds: lt, le, gt, ge."""
    owner = func.coalesce(sessions.c.clinician_id, sessions.c.resource_id)
    stmt = (select(slots, owner.label("actor_id"), sessions.c.status.label("session_status"))
            .join(sessions, sessions.c.id == slots.c.session_id).where(sessions.c.release_at <= now))
    if actor_id is not None:
        stmt = stmt.where(owner == actor_id)
    ops = {"lt": slots.c.starts_at.__lt__, "le": slots.c.starts_at.__le__, "gt": slots.c.starts_at.__gt__,
           "ge": slots.c.starts_at.__ge__}
    for op, at in start:
        stmt = stmt.where(ops[op](at))
    return list(conn.execute(stmt.order_by(slots.c.starts_at, slots.c.id).limit(limit)).mappings())


packages = table(CheckupPackage)
checkup_days = table(CheckupDay)
checkup_bookings = table(CheckupBooking)


def package_by_code(conn: Connection, code: str) -> RowMapping | None:
    return conn.execute(select(packages).where(packages.c.code == code)).mappings().first()


def take_checkup_room(conn: Connection, package_id: str, day: date, capacity: int) -> bool:
    """One more booking of the package that day, if the day's capacity allows: one
    guarded upsert, so concurrent bookings can never overfill it."""
    ins = upsert(conn, checkup_days).values(
        package_id=package_id, day=day, booked=1, capacity=capacity)
    stmt = ins.on_conflict_do_update(
        index_elements=[checkup_days.c.package_id, checkup_days.c.day],
        set_={"booked": checkup_days.c.booked + 1},
        where=checkup_days.c.booked < checkup_days.c.capacity).returning(checkup_days.c.booked)
    return conn.execute(stmt).first() is not None


def give_checkup_room(conn: Connection, package_id: str, day: date) -> None:
    conn.execute(update(checkup_days).where(checkup_days.c.package_id == package_id, checkup_days.c.day == day,
                                            checkup_days.c.booked > 0)
                 .values(booked=checkup_days.c.booked - 1))


def checkup_booked(conn: Connection, package_ids: Sequence[str], day: date) -> dict[str, int]:
    if not package_ids:
        return {}
    rows = conn.execute(select(checkup_days.c.package_id, checkup_days.c.booked)
                        .where(checkup_days.c.package_id.in_(list(package_ids)), checkup_days.c.day == day))
    return {r[0]: int(r[1]) for r in rows}


def active_packages(conn: Connection) -> list[RowMapping]:
    return list(conn.execute(select(packages).where(packages.c.active.is_(True)).order_by(packages.c.code)).mappings())


def checkup_by_key(conn: Connection, patient_id: str, key: str) -> RowMapping | None:
    return conn.execute(select(checkup_bookings).where(checkup_bookings.c.patient_id == patient_id,
                                                       checkup_bookings.c.idempotency_key == key)).mappings().first()


def set_checkup(conn: Connection, booking_id: str, **values: Any) -> None:
    conn.execute(update(checkup_bookings).where(checkup_bookings.c.id == booking_id).values(**values))


def precheck(conn: Connection, session_id: str, patient_id: str, key: str, now: datetime
             ) -> tuple[dict[str, Any], bool, dict[str, int]] | None:
    """In one driver-level query (a rush's hot path): the session's booking window, whether
    this patient already used this idempotency key, and its claimable slots per pool."""
    m = marks(conn, 1)
    free = ("(SELECT count(*) FROM slots t WHERE t.session_id = s.id AND t.appointment_id IS NULL "  # noqa: S608
            f"AND t.held_for IS NULL AND t.starts_at >= {m} AND t.pool = '{{}}')")
    sql = ("SELECT s.status, s.release_at, s.ends_at, s.day, s.referral_release_at, "  # noqa: S608 - fixed text
           f"EXISTS (SELECT 1 FROM appointments a WHERE a.patient_id = {m} AND a.idempotency_key = {m}), "
           + ", ".join(free.format(p) for p in ("online", "onsite", "referral"))
           + f" FROM clinic_sessions s WHERE s.id = {m}")
    at = ts_param(conn, now)
    rows = fetch(conn, sql, (patient_id, key, at, at, at, session_id))
    if not rows:
        return None
    r = rows[0]
    window = {"status": r[0], "release_at": as_datetime(r[1]), "ends_at": as_datetime(r[2]), "day": as_date(r[3]),
              "referral_release_at": as_datetime(r[4])}
    return window, bool(r[5]), {"online": int(r[6]), "onsite": int(r[7]), "referral": int(r[8])}


def all_departments(conn: Connection) -> list[RowMapping]:
    """Every department with its institution, by institution and code (services.triage maps its kinds)."""
    return list(conn.execute(select(departments.c.id, departments.c.institution_id, departments.c.code,
                                    departments.c.name_zh, departments.c.name_en)
                             .order_by(departments.c.institution_id, departments.c.code)).mappings())


def institutions_of(conn: Connection, department_ids: Sequence[str], appointment_ids: Sequence[str]
                    ) -> tuple[dict[str, str], dict[str, str]]:
    """Which institution each department and each appointment belongs to."""
    by_dept: dict[str, str] = {}
    by_appt: dict[str, str] = {}
    if department_ids:
        rows = conn.execute(select(departments.c.id, departments.c.institution_id)
                            .where(departments.c.id.in_(list(department_ids))))
        by_dept = {r[0]: r[1] for r in rows}
    if appointment_ids:
        rows = conn.execute(select(appointments.c.id, departments.c.institution_id)
                            .select_from(appointments.join(sessions, sessions.c.id == appointments.c.session_id)
                                         .join(departments, departments.c.id == sessions.c.department_id))
                            .where(appointments.c.id.in_(list(appointment_ids))))
        by_appt = {r[0]: r[1] for r in rows}
    return by_dept, by_appt
