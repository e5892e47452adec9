"""Scheduling use cases: set up the hospital's sessions, book, cancel, check in,
attend. Each runs inside the caller's transaction and feeds what happened into
the spine as an event (`events.service.ingest`), so the programme decides what
it earns or costs; patient messages leave through the outbox.

Races are decided by the database: a booking locks its patient first (limits),
claims a slot with one guarded statement (SKIP LOCKED on PostgreSQL), and the
partial unique indexes on appointments back every "at most one" rule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.kit.batching import GroupCommitter
from carepoints.kit.bulk import savepoint
from carepoints.kit.db import write_tx
from carepoints.kit.errors import AppError, ValidationFailedError
from carepoints.kit.ids import is_id, new_id, request_digest
from carepoints.kit.money import cny, to_fen
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import as_utc, local_date
from carepoints.patients import proxies
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.scheduling import booking, waitlist
from carepoints.scheduling import repository as repo
from carepoints.scheduling import slots as slotcalc
from carepoints.scheduling.errors import (
    AppointmentNotFoundError,
    AttendTooEarlyError,
    CancelTooLateError,
    CheckInClosedError,
    CheckInNotOpenError,
    ClinicianNotFoundError,
    DepartmentNotFoundError,
    DuplicateCodeError,
    IdempotencyConflictError,
    IllegalTransitionError,
    InstitutionNotFoundError,
    NotOpenError,
    NotOwnSessionError,
    PatientInactiveError,
    ResourceNotFoundError,
    SessionCancelledError,
    SessionFullError,
    SessionNotFoundError,
    SessionStartedError,
    SlotNotAvailableError,
    SlotNotFoundError,
    SlotTakenError,
    TemplateNotFoundError,
)
from carepoints.scheduling.models import LIVE
from carepoints.scheduling.schemas import (
    AppointmentCreate,
    CancelIn,
    CheckInIn,
    ClinicianCreate,
    DepartmentCreate,
    InstitutionCreate,
    ResourceCreate,
    SessionCancel,
    SessionCreate,
    TemplateCreate,
)


def _conn(session: Session) -> Connection:
    return session.connection()


# --- set-up: institutions, departments, clinicians, resources, sessions ---------------

def _insert_unique(session: Session, tbl: Any, row: dict[str, Any]) -> None:
    try:
        with savepoint(_conn(session)):
            repo.add(_conn(session), tbl, row)
    except IntegrityError as exc:
        raise DuplicateCodeError() from exc


def create_institution(session: Session, data: InstitutionCreate, now: datetime) -> dict[str, Any]:
    row = {"id": new_id(), "code": data.code, "name_zh": data.name_zh, "name_en": data.name_en, "created_at": now}
    _insert_unique(session, repo.institutions, row)
    return {k: v for k, v in row.items() if k != "created_at"}


def create_department(session: Session, data: DepartmentCreate, now: datetime) -> dict[str, Any]:
    if not is_id(data.institution_id) or repo.get(_conn(session), repo.institutions, data.institution_id) is None:
        raise InstitutionNotFoundError()
    row = {"id": new_id(), "institution_id": data.institution_id, "code": data.code, "name_zh": data.name_zh,
           "name_en": data.name_en, "created_at": now}
    _insert_unique(session, repo.departments, row)
    return {k: v for k, v in row.items() if k != "created_at"}


def _department(session: Session, department_id: str) -> RowMapping:
    row = repo.get(_conn(session), repo.departments, department_id) if is_id(department_id) else None
    if row is None:
        raise DepartmentNotFoundError()
    return row


def create_clinician(session: Session, data: ClinicianCreate, now: datetime) -> dict[str, Any]:
    _department(session, data.department_id)
    row = {"id": new_id(), "department_id": data.department_id, "code": data.code, "name": data.name,
           "title": data.title, "staff_user_id": data.staff_user_id, "created_at": now}
    _insert_unique(session, repo.clinicians, row)
    return {k: v for k, v in row.items() if k != "created_at"}


def create_resource(session: Session, data: ResourceCreate, now: datetime) -> dict[str, Any]:
    _department(session, data.department_id)
    row = {"id": new_id(), "department_id": data.department_id, "code": data.code, "modality": data.modality,
           "name": data.name, "created_at": now}
    _insert_unique(session, repo.resources, row)
    return {k: v for k, v in row.items() if k != "created_at"}


def _owner(conn: Connection, clinician_id: str | None, resource_id: str | None) -> RowMapping:
    """The clinician or the resource a session belongs to (the schema asks for exactly one)."""
    if clinician_id is not None:
        row = repo.get(conn, repo.clinicians, clinician_id) if is_id(clinician_id) else None
        if row is None:
            raise ClinicianNotFoundError()
        return row
    row = repo.get(conn, repo.resources, resource_id or "") if is_id(resource_id) else None
    if row is None:
        raise ResourceNotFoundError()
    return row


def create_session(session: Session, data: SessionCreate, now: datetime,
                   template_id: str | None = None) -> dict[str, Any]:
    """A session and its slots, numbered 1..capacity in time order, each in its pool."""
    conn = _conn(session)
    settings = get_settings()
    tz = settings.tz
    owner = _owner(conn, data.clinician_id, data.resource_id)
    starts_at = datetime.combine(data.date, data.start, tzinfo=tz)
    ends_at = datetime.combine(data.date, data.end, tzinfo=tz)
    fit = slotcalc.fits(starts_at, ends_at, data.slot_minutes)
    if fit < 1:
        raise _invalid("slot_minutes", "no slot of this length fits between start and end")
    capacity = data.capacity or fit
    if capacity > fit:
        raise _invalid("capacity", f"at most {fit} slots of {data.slot_minutes} minutes fit in this session")
    release_at = data.release_at or slotcalc.release_time(
        data.date, tz, settings.booking_release_days, time.fromisoformat(settings.booking_release_time))
    share = data.referral_share if data.referral_share is not None else Decimal(settings.booking_referral_share)
    pattern: list[str] = list(data.pattern) if data.pattern else _default_pattern(settings.booking_pattern)
    hours = data.referral_release_hours if data.referral_release_hours is not None \
        else settings.booking_referral_release_hours
    sid = new_id()
    row = {"id": sid, "department_id": owner["department_id"], "clinician_id": data.clinician_id,
           "resource_id": data.resource_id, "day": data.date, "starts_at": starts_at, "ends_at": ends_at,
           "slot_minutes": data.slot_minutes, "capacity": capacity, "level": data.level,
           "fee_fen": to_fen(data.fee_cny), "release_at": release_at,
           "referral_release_at": starts_at - timedelta(hours=hours), "pattern": pattern,
           "referral_share": str(share), "status": "open", "template_id": template_id, "created_at": now}
    repo.add(conn, repo.sessions, row)
    specs = slotcalc.cut(starts_at, data.slot_minutes, capacity, slotcalc.pools(capacity, pattern, share))
    conn.execute(repo.slots.insert(), [
        {"id": new_id(), "session_id": sid, "seq": s.seq, "starts_at": s.starts_at, "ends_at": s.ends_at,
         "pool": s.pool, "appointment_id": None} for s in specs])
    return read_session(session, sid, now)


def _default_pattern(raw: str) -> list[str]:
    """CAREPOINTS_BOOKING_PATTERN, e.g. "online,online,onsite"; anything else than the two
    channels falls back to alternating them."""
    out = [p.strip() for p in raw.split(",") if p.strip()]
    return out if out and all(p in ("online", "onsite") for p in out) else list(slotcalc.DEFAULT_PATTERN)


def _invalid(field: str, msg: str) -> AppError:
    return ValidationFailedError(fields=[{"loc": ["body", field], "msg": msg}])


def _session_doc(row: RowMapping, free: dict[str, int]) -> dict[str, Any]:
    return {"id": row["id"], "department": row["department_id"], "department_code": row.get("department_code"),
            "clinician": row["clinician_id"], "clinician_name": row.get("clinician_name"),
            "resource": row["resource_id"], "date": row["day"].isoformat(),
            "start": booking.local(row["starts_at"]), "end": booking.local(row["ends_at"]),
            "slot_minutes": row["slot_minutes"],
            "capacity": row["capacity"], "fee_cny": cny(row["fee_fen"]), "level": row["level"],
            "release_at": booking.local(row["release_at"]), "status": row["status"], "free": free}


def read_session(session: Session, session_id: str, now: datetime) -> dict[str, Any]:
    row = repo.session_detail(_conn(session), session_id) if is_id(session_id) else None
    if row is None:
        raise SessionNotFoundError()
    return _session_doc(row, repo.free_counts(_conn(session), [session_id], now)[session_id])


def list_sessions(session: Session, now: datetime, *, day: date | None = None, department: str | None = None,
                  clinician: str | None = None) -> list[dict[str, Any]]:
    """Sessions open for booking now (released, not cancelled, not over), with their free
    slots per pool (slots that have not started)."""
    for value in (department, clinician):
        if value is not None and not is_id(value):
            return []
    rows = repo.open_sessions(_conn(session), now, day, department, clinician)
    free = repo.free_counts(_conn(session), [r["id"] for r in rows], now)
    return [_session_doc(r, free[r["id"]]) for r in rows]


def clinician_sessions(session: Session, staff_user_id: str, now: datetime) -> list[dict[str, Any]]:
    """A clinician's (by their staff user) own future sessions, released or not, with free slots
    per pool: where they may book a patient's follow-up (book_follow_up)."""
    rows = repo.open_sessions(_conn(session), now, None, None, None, staff_user_id=staff_user_id)
    free = repo.free_counts(_conn(session), [r["id"] for r in rows], now)
    return [{**_session_doc(r, free[r["id"]]), "released": as_utc(r["release_at"]) <= now} for r in rows]


# --- booking ---------------------------------------------------------------------------

def _request_hash(data: AppointmentCreate) -> str:
    return request_digest({"session": data.session_id, "slot": data.slot_id, "channel": data.channel,
                           "referral": data.referral_id})


def _patient_id(session: Session, data: AppointmentCreate) -> str:
    return patients.named(session, data.patient_id, data.patient)


def book(session: Session, data: AppointmentCreate, now: datetime, *,
         booked_by: str = "patient", actor: Actor | None = None) -> tuple[dict[str, Any], bool]:
    """Book a slot: the next free one of the session for the channel, or `slot_id`.
    Returns (appointment, created); the same idempotency key again answers the same
    appointment, with a different booking it is a conflict. Emits `appointment.booked`.
    A caregiver or the service window booking for the patient (代办) needs the patient's
    `book` authorisation and is recorded as a proxy action (audit, `on_behalf_of`)."""
    conn = _conn(session)
    settings = get_settings()
    pid = _patient_id(session, data)
    patient = patients.lock(session, pid)  # a patient's bookings queue here: limits hold
    if patient is None:
        raise PatientNotFoundError()
    if patient.status != "active":
        raise PatientInactiveError()
    if data.proxy_patient_id is not None or data.service_window:
        proxies.act(session, actor or Actor.system("scheduling"), pid, proxies.Proxy(data.proxy_patient_id), "book",
                    "scheduling:appointment:book", now, session_id=data.session_id)
    digest = _request_hash(data)
    prior = repo.by_idempotency_key(conn, pid, data.idempotency_key)
    if prior is not None:
        if prior["request_hash"] != digest:
            raise IdempotencyConflictError()
        return booking.appointment_doc(prior), False

    # shared: bookings of a session run side by side, but 停诊 (which locks it for update)
    # waits for them and they for it, so none lands in a session just cancelled
    sess = repo.get(conn, repo.sessions, data.session_id, share=True) if is_id(data.session_id) else None
    if sess is None:
        raise SessionNotFoundError()
    if sess["status"] != "open":
        raise SessionCancelledError()
    if booked_by == "patient" and sess["release_at"] > now:
        raise NotOpenError(release_at=booking.local(sess["release_at"]))
    if sess["ends_at"] <= now:
        raise SessionStartedError()

    guard, rank = booking.limits(conn, pid, sess)
    tz = settings.tz
    pools = slotcalc.usable_pools(data.channel, sess["day"], local_date(now, tz),
                                  referral_released=sess["referral_release_at"] <= now)
    aid = new_id()
    if data.slot_id is not None:
        slot = repo.claim_slot(conn, data.slot_id, sess["id"], aid, pools) if is_id(data.slot_id) else None
        if slot is None:
            raise _why_not(conn, data.slot_id, sess["id"], now)
        if slot["starts_at"] <= now:
            raise SessionStartedError()  # rolled back with the transaction
    else:
        slot = repo.claim_next(conn, sess["id"], aid, pools, now)
        if slot is None:
            raise SessionFullError()
    row = booking.record(session, sess, slot, now, id=aid, patient_id=pid, clinician_guard=guard, day_rank=rank,
                 channel=data.channel, referral_id=data.referral_id, booked_by=booked_by,
                 idempotency_key=data.idempotency_key, request_hash=digest)
    return booking.appointment_doc(row), True


def _book_group(jobs: Sequence[tuple[AppointmentCreate, datetime, Actor]]
                ) -> list[tuple[dict[str, Any], bool] | AppError]:
    """Concurrent bookings of one process in one transaction (one commit, one fsync), each
    in its own savepoint so that one refused booking fails alone."""
    out: list[tuple[dict[str, Any], bool] | AppError] = []
    with write_tx() as session:
        conn = _conn(session)
        for data, now, actor in jobs:
            try:
                with savepoint(conn, "cp_booking"):
                    out.append(book(session, data, now, actor=actor))
            except AppError as exc:
                out.append(exc)
    return out


# Every booking request of this process goes through one writer that commits the bookings
# that arrive together in one transaction (kit.batching): a rush's winners share commits.
booking_writer: GroupCommitter[tuple[AppointmentCreate, datetime, Actor], tuple[dict[str, Any], bool] | AppError] = \
    GroupCommitter(_book_group, size=lambda _job: 1, max_size=64, name="carepoints-booking-writer")


def claimable(conn: Connection, data: AppointmentCreate, now: datetime) -> int | None:
    """Read-only, before a booking's write transaction: how many slots of the session the
    channel could claim now (0: surely full), or None when the booking itself must answer
    (a chosen slot, a replay of a booking made, a session not open). A snapshot: a slot
    freed a moment later is like having come a moment earlier; the claim in the write
    transaction still decides every booking that goes on."""
    if data.slot_id is not None or data.patient_id is None or not is_id(data.session_id):
        return None
    found = repo.precheck(conn, data.session_id, data.patient_id, data.idempotency_key, now)
    if found is None:
        return None
    sess, replay, free = found
    if replay or sess["status"] != "open" or sess["release_at"] > now or sess["ends_at"] <= now:
        return None
    pools = slotcalc.usable_pools(data.channel, sess["day"], local_date(now, get_settings().tz),
                                  referral_released=sess["referral_release_at"] <= now)
    return sum(free[p] for p in pools)


def book_follow_up(session: Session, data: AppointmentCreate, now: datetime, staff_user_id: str
                   ) -> tuple[dict[str, Any], bool]:
    """诊间复诊预约: a clinician books a follow-up for a patient in one of their own future
    sessions, ahead of its release (`booked_by: clinician`, which earns no booking-ahead
    points). Only the clinician the session belongs to may."""
    conn = _conn(session)
    sess = repo.get(conn, repo.sessions, data.session_id) if is_id(data.session_id) else None
    if sess is None:
        raise SessionNotFoundError()
    owner = repo.get(conn, repo.clinicians, sess["clinician_id"]) if sess["clinician_id"] else None
    if owner is None or owner["staff_user_id"] != staff_user_id:
        raise NotOwnSessionError()
    return book(session, data, now, booked_by="clinician")


def _why_not(conn: Connection, slot_id: str, session_id: str, now: datetime) -> AppError:
    slot = repo.get(conn, repo.slots, slot_id)
    if slot is None or slot["session_id"] != session_id:
        return SlotNotFoundError()
    if slot["appointment_id"] is not None:
        return SlotTakenError()
    if slot["starts_at"] <= now:
        return SessionStartedError()
    return SlotNotAvailableError()


# --- lifecycle ------------------------------------------------------------------------

def _appointment(session: Session, appointment_id: str) -> RowMapping:
    row = repo.get(_conn(session), repo.appointments, appointment_id, lock=True) if is_id(appointment_id) else None
    if row is None:
        raise AppointmentNotFoundError()
    return row


def read_appointment(session: Session, appointment_id: str) -> dict[str, Any]:
    row = repo.get(_conn(session), repo.appointments, appointment_id) if is_id(appointment_id) else None
    if row is None:
        raise AppointmentNotFoundError()
    return booking.appointment_doc(row)


_VERBS = {"cancel": "取消 cancel", "check_in": "签到 check in", "attend": "就诊 attend"}


def cancel(session: Session, appointment_id: str, data: CancelIn, now: datetime) -> dict[str, Any]:
    """Cancel a booking and free its slot. A patient may cancel until the cut-off before the
    slot; the hospital at any time before attendance (never a penalty). Emits
    `appointment.cancelled` with `by`; cancelling again answers the same appointment."""
    conn = _conn(session)
    row = _appointment(session, appointment_id)
    if row["status"] == "cancelled":
        return booking.appointment_doc(row)
    if row["status"] != "booked" and not (data.by == "hospital" and row["status"] == "checked_in"):
        raise IllegalTransitionError(status=row["status"], action=_VERBS["cancel"])
    hours = get_settings().cancel_cutoff_hours
    if data.by == "patient" and now > row["slot_start"] - timedelta(hours=hours):
        raise CancelTooLateError(hours=hours)
    sess = repo.get(conn, repo.sessions, row["session_id"])
    assert sess is not None  # noqa: S101 - a foreign key
    waiter = repo.first_waiting_patient(conn, sess["id"]) if sess["status"] == "open" else None
    if waiter is not None:  # two patients' rows: in key order, as everywhere
        waitlist.lock_people(session, now, {row["patient_id"], waiter})
    _close(conn, row, data.by, now)
    booking.emit(session, "appointment.cancelled", row["patient_id"], now, now, row["id"], {
        "appointment_id": row["id"], "slot_start": row["slot_start"].isoformat(), "cancelled_at": now.isoformat(),
        "by": data.by})
    if waiter is not None:
        waitlist.pass_on(session, sess, row["slot_id"], now)  # never back to the pool while anyone waits
    topic = "appointment.cancelled_by_hospital" if data.by == "hospital" else "appointment.cancelled"
    enqueue_many(conn, [(topic, row["patient_id"], {"patient_id": row["patient_id"], "appointment_id": row["id"]})],
                 now)
    return read_appointment(session, row["id"])


def _close(conn: Connection, row: RowMapping, by: str, now: datetime) -> None:
    repo.set_appointment(conn, row["id"], status="cancelled", cancelled_at=now, cancelled_by=by,
                         history=booking.step(row, "cancelled", now, by=by))
    repo.free_slot(conn, row["slot_id"], row["id"])


def check_in(session: Session, appointment_id: str, data: CheckInIn, now: datetime) -> dict[str, Any]:
    """Check in at the desk, a kiosk or in the app: from the check-in window before the
    slot until the session ends; late when after the slot's start. The elderly (by age)
    and patients staff flag are checked in with priority. Emits `appointment.checked_in`."""
    conn = _conn(session)
    settings = get_settings()
    row = _appointment(session, appointment_id)
    if row["status"] == "checked_in":
        return booking.appointment_doc(row)
    if row["status"] != "booked":
        raise IllegalTransitionError(status=row["status"], action=_VERBS["check_in"])
    sess = repo.get(conn, repo.sessions, row["session_id"])
    assert sess is not None  # noqa: S101 - a foreign key
    if now < row["slot_start"] - timedelta(minutes=settings.check_in_open_minutes):
        raise CheckInNotOpenError(minutes=settings.check_in_open_minutes)
    if now >= sess["ends_at"]:
        raise CheckInClosedError()
    found, _refs = patients.resolve(session, [row["patient_id"]], [])
    birth = found[row["patient_id"]].birth_date
    elderly = birth is not None and _age(birth, local_date(now, settings.tz)) >= settings.priority_age
    priority = bool(data.priority) or elderly
    late = now > row["slot_start"]
    repo.set_appointment(conn, row["id"], status="checked_in", checked_in_at=now, late=late, priority=priority,
                         history=booking.step(row, "checked_in", now, channel=data.channel))
    booking.emit(session, "appointment.checked_in", row["patient_id"], now, now, row["id"], {
        "appointment_id": row["id"], "slot_start": row["slot_start"].isoformat(), "checked_in_at": now.isoformat()})
    return read_appointment(session, row["id"])


def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def attend(session: Session, appointment_id: str, at: datetime, now: datetime) -> dict[str, Any]:
    """The visit took place (from the HIS or staff). Emits `appointment.attended`, which
    carries what the programme pays for (booked ahead, on time, off-peak)."""
    conn = _conn(session)
    row = _appointment(session, appointment_id)
    if row["status"] == "attended":
        return booking.appointment_doc(row)
    if row["status"] not in LIVE:
        raise IllegalTransitionError(status=row["status"], action=_VERBS["attend"])
    at = min(at, now)
    opens = get_settings().check_in_open_minutes
    if at < row["slot_start"] - timedelta(minutes=opens):
        raise AttendTooEarlyError(minutes=opens)
    repo.set_appointment(conn, row["id"], status="attended", attended_at=at, history=booking.step(row, "attended", at))
    if row["resource_id"] is not None:  # an exam on a resource (CT, MRI, …)
        resource = repo.get(conn, repo.resources, row["resource_id"])
        assert resource is not None  # noqa: S101 - a session's resource
        booking.emit(session, "exam.attended", row["patient_id"], at, now, row["id"], {
            "exam_id": row["id"], "modality": resource["modality"], "slot_start": row["slot_start"].isoformat()})
        return read_appointment(session, row["id"])
    attrs: dict[str, Any] = {"appointment_id": row["id"], "slot_start": row["slot_start"].isoformat(),
                             "booked_at": row["booked_at"].isoformat(), "booked_by": row["booked_by"]}
    if row["checked_in_at"] is not None:
        attrs["checked_in_at"] = row["checked_in_at"].isoformat()
    booking.emit(session, "appointment.attended", row["patient_id"], at, now, row["id"], attrs)
    return read_appointment(session, row["id"])


# --- templates, 停诊, and the periodic jobs' steps -----------------------------------------

def create_template(session: Session, data: TemplateCreate, now: datetime) -> dict[str, Any]:
    conn = _conn(session)
    owner = _owner(conn, data.clinician_id, data.resource_id)
    fit = slotcalc.fits(datetime.combine(date(2026, 1, 5), data.start), datetime.combine(date(2026, 1, 5), data.end),
                        data.slot_minutes)
    if fit < 1 or (data.capacity or fit) > fit:
        raise _invalid("capacity", f"at most {fit} slots of {data.slot_minutes} minutes fit in this session")
    row = {"id": new_id(), "department_id": owner["department_id"], "clinician_id": data.clinician_id,
           "resource_id": data.resource_id, "weekday": data.weekday, "start": data.start.strftime("%H:%M"),
           "end": data.end.strftime("%H:%M"), "slot_minutes": data.slot_minutes, "capacity": data.capacity,
           "level": data.level, "fee_fen": to_fen(data.fee_cny), "pattern": data.pattern,
           "referral_share": None if data.referral_share is None else str(data.referral_share), "active": True,
           "created_at": now}
    repo.add(conn, repo.templates, row)
    return {k: v for k, v in row.items() if k not in ("created_at", "fee_fen")} | {"fee_cny": cny(row["fee_fen"])}


def deactivate_template(session: Session, template_id: str) -> dict[str, Any]:
    """Stop a template (one guarded UPDATE on active): generate-sessions makes no more sessions
    from it; those already made stay. 404 for an unknown or already stopped template."""
    done = _conn(session).execute(update(repo.templates).where(repo.templates.c.id == template_id,
                                                              repo.templates.c.active.is_(True))
                                  .values(active=False)).rowcount if is_id(template_id) else 0
    if not done:
        raise TemplateNotFoundError()
    return {"id": template_id, "active": False}


WAITING = repo.WAITING  # waitlist states still in line (waiting, or offered a slot)
_CATALOGUE = {"institution": repo.institutions, "department": repo.departments, "clinician": repo.clinicians,
              "resource": repo.resources}


def catalogue_entry(session: Session, kind: str, entry_id: str | None) -> dict[str, Any] | None:
    """One institution, department, clinician or resource by id (the booking pages' names), or None."""
    if not entry_id or not is_id(entry_id):
        return None
    row = repo.get(_conn(session), _CATALOGUE[kind], entry_id)
    return None if row is None else dict(row)


def departments(session: Session) -> list[dict[str, Any]]:
    """Every department: {id, institution_id, code, name_zh, name_en} (services.triage maps its
    department kinds to them by name)."""
    return [dict(r) for r in repo.all_departments(_conn(session))]


def live_appointments_of_session(session: Session, session_id: str) -> list[str]:
    """The ids of a session's live (booked or checked-in) appointments, by id."""
    return repo.live_of_session(_conn(session), session_id) if is_id(session_id) else []


def templates(session: Session) -> list[dict[str, Any]]:
    """The active session templates (the admin's weekly plan)."""
    return [dict(r) for r in repo.active_templates(_conn(session))]


def generate_sessions(session: Session, now: datetime, days_ahead: int) -> int:
    """Create the sessions of every active template for the local days from today to
    `days_ahead` days on that do not have theirs yet. Re-runnable: a template makes at most
    one session a day (unique index). Returns how many were created."""
    conn = _conn(session)
    today = local_date(now, get_settings().tz)
    created = 0
    for tpl in repo.active_templates(conn):
        for offset in range(days_ahead + 1):
            day = today + timedelta(days=offset)
            if day.isoweekday() != tpl["weekday"] or repo.template_has_session(conn, tpl["id"], day):
                continue
            data = SessionCreate(
                clinician_id=tpl["clinician_id"], resource_id=tpl["resource_id"], date=day,
                start=time.fromisoformat(tpl["start"]), end=time.fromisoformat(tpl["end"]),
                slot_minutes=tpl["slot_minutes"], capacity=tpl["capacity"], level=tpl["level"],
                fee_cny=Decimal(tpl["fee_fen"]) / 100, pattern=tpl["pattern"],
                referral_share=None if tpl["referral_share"] is None else Decimal(tpl["referral_share"]))
            create_session(session, data, now, template_id=tpl["id"])
            created += 1
    return created


def cancel_session(session: Session, session_id: str, data: SessionCancel, now: datetime) -> dict[str, Any]:
    """停诊: the session closes and every live booking is cancelled `by: hospital`, which
    never costs the patient anything; each patient is told. Again → the same session."""
    conn = _conn(session)
    sess = repo.get(conn, repo.sessions, session_id, lock=True) if is_id(session_id) else None
    if sess is None:
        raise SessionNotFoundError()
    if sess["status"] != "cancelled":
        repo.set_session(conn, session_id, status="cancelled")
        waitlist.close_session(session, session_id, now)
        for appt_id in repo.live_of_session(conn, session_id):
            cancel(session, appt_id, CancelIn(by="hospital", reason=data.reason), now)
    return read_session(session, session_id, now)


def sweep_no_shows(session: Session, now: datetime, limit: int = 200) -> int:
    """Mark as no-show up to `limit` bookings never checked in whose session ended more
    than the grace period ago, each emitting `appointment.no_show` (the programme
    decides the penalty and any suspension). Returns how many."""
    conn = _conn(session)
    cutoff = now - timedelta(minutes=get_settings().no_show_grace_minutes)
    done = 0
    for appt_id in repo.overdue_bookings(conn, cutoff, limit):
        row = _appointment(session, appt_id)
        if row["status"] != "booked":
            continue  # changed since it was listed
        repo.set_appointment(conn, row["id"], status="no_show", no_show_at=now,
                             history=booking.step(row, "no_show", now))
        booking.emit(session, "appointment.no_show", row["patient_id"], row["slot_end"], now, row["id"], {
            "appointment_id": row["id"], "slot_start": row["slot_start"].isoformat()})
        enqueue_many(conn, [("appointment.no_show", row["patient_id"],
                             {"patient_id": row["patient_id"], "appointment_id": row["id"]})], now)
        done += 1
    return done


def release_reserved_slots(session: Session, now: datetime) -> int:
    """Free referral slots of sessions past their referral release time join the general
    pools (in the session's pattern), so that everyone may book them. Returns how many."""
    conn = _conn(session)
    moved = 0
    for sid, pattern in repo.sessions_with_reserved(conn, now):
        cycle = list(pattern or slotcalc.DEFAULT_PATTERN)
        for i, slot_id in enumerate(repo.free_referral_slots(conn, sid)):
            moved += repo.set_pool(conn, slot_id, cycle[i % len(cycle)])
    return moved


def institutions_of(session: Session, department_ids: Sequence[str], appointment_ids: Sequence[str]
                    ) -> tuple[dict[str, str], dict[str, str]]:
    """Department id → institution id and appointment id → institution id (for settlement)."""
    return repo.institutions_of(_conn(session), department_ids, appointment_ids)
