"""Scheduling API: the hospital's set-up (admin), sessions open for booking, and
appointments through their lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from carepoints.config import get_settings
from carepoints.kit.db import is_sqlite, read_conn, read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.kit.ratelimit import limiter
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.scheduling import checkups, service, waitlist
from carepoints.scheduling.errors import SessionFullError
from carepoints.scheduling.schemas import (
    AppointmentCreate,
    AttendIn,
    CancelIn,
    CheckInIn,
    CheckupBookingCreate,
    CheckupPackageCreate,
    ClinicianCreate,
    DepartmentCreate,
    InstitutionCreate,
    ResourceCreate,
    SessionCancel,
    SessionCreate,
    TemplateCreate,
    WaitlistJoin,
)
from carepoints.security import scope
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["scheduling"])


@router.post("/institutions", status_code=201)
def create_institution(body: InstitutionCreate, _p: Principal = Depends(require("schedule:write"))) -> JSON:
    """Create an institution (a hospital or a primary-care centre of the alliance)."""
    with write_tx() as session:
        return JSON(service.create_institution(session, body, utc_now()), status_code=201)


@router.post("/departments", status_code=201)
def create_department(body: DepartmentCreate, _p: Principal = Depends(require("schedule:write"))) -> JSON:
    """Create a department of an institution."""
    with write_tx() as session:
        return JSON(service.create_department(session, body, utc_now()), status_code=201)


@router.post("/clinicians", status_code=201)
def create_clinician(body: ClinicianCreate, _p: Principal = Depends(require("schedule:write"))) -> JSON:
    """Create a clinician of a department."""
    with write_tx() as session:
        return JSON(service.create_clinician(session, body, utc_now()), status_code=201)


@router.post("/resources", status_code=201)
def create_resource(body: ResourceCreate, _p: Principal = Depends(require("schedule:write"))) -> JSON:
    """Create an exam resource (CT, MRI, ultrasound, …) of a department."""
    with write_tx() as session:
        return JSON(service.create_resource(session, body, utc_now()), status_code=201)


@router.post("/sessions", status_code=201)
def create_session(body: SessionCreate, _p: Principal = Depends(require("schedule:write"))) -> JSON:
    """Create a session (local date, start and end) and cut it into numbered slots."""
    with write_tx() as session:
        return JSON(service.create_session(session, body, utc_now()), status_code=201)


@router.post("/sessions/{session_id}/cancel")
def cancel_session(session_id: str, body: SessionCancel, _p: Principal = Depends(require("schedule:write"))) -> JSON:
    """停诊: close the session and cancel every booking `by: hospital` (never a penalty);
    the patients are notified."""
    with write_tx() as session:
        return JSON(service.cancel_session(session, session_id, body, utc_now()))


@router.post("/session-templates", status_code=201)
def create_template(body: TemplateCreate, _p: Principal = Depends(require("schedule:write"))) -> JSON:
    """A weekly session that `jobs run generate-sessions` turns into dated sessions ahead."""
    with write_tx() as session:
        return JSON(service.create_template(session, body, utc_now()), status_code=201)


@router.post("/session-templates/{template_id}/deactivate")
def deactivate_template(template_id: str, _p: Principal = Depends(require("schedule:write"))) -> JSON:
    """Stop a weekly template: no more sessions are generated from it (those made stay)."""
    with write_tx() as session:
        return JSON(service.deactivate_template(session, template_id))


@router.get("/sessions")
def list_sessions(date: date | None = Query(None), department: str | None = Query(None, max_length=36),
                  clinician: str | None = Query(None, max_length=36),
                  _p: Principal = Depends(require("schedule:read"))) -> JSON:
    """Sessions open for booking now, with free slots per pool (online, onsite, referral)."""
    with read_tx() as session:
        return JSON({"items": service.list_sessions(session, utc_now(), day=date, department=department,
                                                    clinician=clinician)})


@router.get("/sessions/{session_id}")
def get_session(session_id: str, _p: Principal = Depends(require("schedule:read"))) -> JSON:
    """One session with its free slots per pool."""
    with read_tx() as session:
        return JSON(service.read_session(session, session_id, utc_now()))


@router.post("/appointments", status_code=201, responses={200: {"description": "the same booking again (replay)"}})
async def book(body: AppointmentCreate, p: Principal = Depends(require("appointments:write"))) -> JSON:
    """Book the next free slot of a session for the channel, or the slot named. 409 with a
    code when the session is full or the patient is over a limit; the same idempotency key
    again answers the same appointment (200). With `proxy_patient_id` or `service_window`
    a caregiver books for the patient (代办, the patient's `book` authorisation)."""
    # (trust.auth) a patient token books only for patients in reach: checked here, because the
    # booking writer's thread does not see the request's reach
    scope.ensure_named(body.patient_id, body.patient, proxy_patient_id=body.proxy_patient_id,
                       service_window=body.service_window)
    _limit_booking(body)
    async with _rush.admit(body, utc_now) as now:
        result = await service.booking_writer.run((body, now, p.actor()))
    if isinstance(result, AppError):
        raise result
    doc, created = result
    return JSON(doc, status_code=201 if created else 200)


def _limit_booking(body: AppointmentCreate) -> None:
    """(trust.signing) at most `rate_limit_booking_per_minute` attempts per patient (429 rate.limited)."""
    per_minute = get_settings().rate_limit_booking_per_minute
    if per_minute:
        ref = body.patient
        who = body.patient_id or ((ref.id or f"{ref.system}|{ref.value}") if ref else "")
        limiter.check("book:" + who, per_minute)


def _claimable(body: AppointmentCreate, now: datetime) -> int | None:
    with read_conn() as conn:
        return service.claimable(conn, body, now)


class _Rush:
    """When a session opens, thousands try for a few slots at once. Each request first
    reads how many slots it could still claim (one indexed query; on SQLite, tens of
    microseconds without network, run on the event loop): none → 409 at once, without
    queueing for the write lock. And this process lets no more bookings of a session
    into the write path than it has claimable slots; the others wait, and each booking
    that finishes wakes one of them to read again (who passes the news on when the
    session is full), so the losers of a rush never queue behind the winners' commits.
    Only admission, in memory and per process: the database still decides.

    No wake-up is lost: the event loop runs one coroutine at a time and nothing awaits
    between a waiter's read and its wait (the condition's lock is never held across an
    await), so a finish either comes before the read (which then sees it) or after the
    waiter is waiting."""

    def __init__(self) -> None:
        self.inflight: dict[str, int] = {}
        self.waiting: dict[str, int] = {}
        self.conds: dict[str, asyncio.Condition] = {}

    async def _wake_one(self, sid: str) -> None:
        cond = self.conds.get(sid)
        if cond is not None:
            async with cond:
                cond.notify(1)

    @asynccontextmanager
    async def admit(self, body: AppointmentCreate, clock: Callable[[], datetime]) -> AsyncIterator[datetime]:
        sid = body.session_id
        while True:
            now = clock()
            free = _claimable(body, now) if is_sqlite() else await run_in_threadpool(_claimable, body, now)
            if free == 0:
                await self._wake_one(sid)  # the next waiting request learns it too
                raise SessionFullError()
            if free is None or self.inflight.get(sid, 0) < free:
                break
            cond = self.conds.setdefault(sid, asyncio.Condition())
            self.waiting[sid] = self.waiting.get(sid, 0) + 1
            try:
                async with cond:
                    await cond.wait()
            finally:
                self.waiting[sid] -= 1
                self._tidy(sid)
        self.inflight[sid] = self.inflight.get(sid, 0) + 1
        try:
            yield now
        finally:
            self.inflight[sid] -= 1
            await self._wake_one(sid)
            self._tidy(sid)

    def _tidy(self, sid: str) -> None:
        """Forget a session nobody books or waits for any more."""
        if not self.inflight.get(sid) and not self.waiting.get(sid):
            self.inflight.pop(sid, None)
            self.waiting.pop(sid, None)
            self.conds.pop(sid, None)


_rush = _Rush()


@router.post("/appointments/follow-up", status_code=201,
             responses={200: {"description": "the same booking again (replay)"}})
def book_follow_up(body: AppointmentCreate, principal: Principal = Depends(require("appointments:follow_up"))) -> JSON:
    """诊间复诊预约: the signed-in clinician books a follow-up for a patient in one of their own
    sessions, also before it opens to the public; it earns no booking-ahead points."""
    with write_tx() as session:
        doc, created = service.book_follow_up(session, body, utc_now(), principal.id)
    return JSON(doc, status_code=201 if created else 200)


@router.get("/appointments/{appointment_id}")
def get_appointment(appointment_id: str, _p: Principal = Depends(require("appointments:read"))) -> JSON:
    """One appointment."""
    with read_tx() as session:
        return JSON(service.read_appointment(session, appointment_id))


@router.post("/appointments/{appointment_id}/cancel")
def cancel(appointment_id: str, body: CancelIn | None = None,
           _p: Principal = Depends(require("appointments:write"))) -> JSON:
    """Cancel (by the patient until the cut-off, or by the hospital) and free the slot."""
    with write_tx() as session:
        return JSON(service.cancel(session, appointment_id, body or CancelIn(), utc_now()))


@router.post("/appointments/{appointment_id}/check-in")
def check_in(appointment_id: str, body: CheckInIn | None = None,
             _p: Principal = Depends(require("appointments:write"))) -> JSON:
    """Check in (front desk, kiosk or app); late after the slot's start."""
    with write_tx() as session:
        return JSON(service.check_in(session, appointment_id, body or CheckInIn(), utc_now()))


@router.post("/appointments/{appointment_id}/attend")
def attend(appointment_id: str, body: AttendIn | None = None,
           _p: Principal = Depends(require("appointments:write"))) -> JSON:
    """Record that the visit took place (HIS or staff)."""
    now = utc_now()
    with write_tx() as session:
        return JSON(service.attend(session, appointment_id, (body or AttendIn()).at(now), now))


@router.post("/sessions/{session_id}/waitlist", status_code=201,
             responses={200: {"description": "the same request again (replay)"}})
def join_waitlist(session_id: str, body: WaitlistJoin,
                  _p: Principal = Depends(require("appointments:write"))) -> JSON:
    """候补: queue for a session with no free slot for the channel (409 `scheduling.not_full`
    while there is one). A freed slot goes to the first in line."""
    with write_tx() as session:
        doc, created = waitlist.join(session, session_id, body, utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.get("/waitlist/{entry_id}")
def get_waitlist_entry(entry_id: str, _p: Principal = Depends(require("appointments:read"))) -> JSON:
    """A waitlist entry: its status, place in line, and any offer's deadline."""
    with read_tx() as session:
        return JSON(waitlist.read(session, entry_id))


@router.post("/waitlist/{entry_id}/confirm")
def confirm_waitlist_offer(entry_id: str, _p: Principal = Depends(require("appointments:write"))) -> JSON:
    """Take the slot offered (before the offer's deadline)."""
    with write_tx() as session:
        return JSON(waitlist.confirm(session, entry_id, utc_now()))


@router.post("/waitlist/{entry_id}/decline")
def decline_waitlist(entry_id: str, _p: Principal = Depends(require("appointments:write"))) -> JSON:
    """Leave the waitlist, or turn down an offer (it passes to the next in line)."""
    with write_tx() as session:
        return JSON(waitlist.decline(session, entry_id, utc_now()))


@router.post("/checkup-packages", status_code=201)
def create_checkup_package(body: CheckupPackageCreate, _p: Principal = Depends(require("schedule:write"))) -> JSON:
    """A checkup package (体检套餐): its items, price and daily capacity."""
    with write_tx() as session:
        return JSON(checkups.create_package(session, body, utc_now()), status_code=201)


@router.get("/checkup-packages")
def list_checkup_packages(date: date | None = Query(None), _p: Principal = Depends(require("schedule:read"))) -> JSON:
    """Active packages with the places left on `date` (default today)."""
    with read_tx() as session:
        return JSON({"items": checkups.list_packages(session, date, utc_now())})


@router.post("/checkup-bookings", status_code=201, responses={200: {"description": "the same booking again"}})
def book_checkup(body: CheckupBookingCreate, _p: Principal = Depends(require("appointments:write"))) -> JSON:
    """Book a package on a day (409 `scheduling.checkup_full` when its places are gone)."""
    with write_tx() as session:
        doc, created = checkups.book(session, body, utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.post("/checkup-bookings/{booking_id}/cancel")
def cancel_checkup(booking_id: str, _p: Principal = Depends(require("appointments:write"))) -> JSON:
    """Cancel a checkup booking and give its place back."""
    with write_tx() as session:
        return JSON(checkups.cancel(session, booking_id, utc_now()))


@router.post("/checkup-bookings/{booking_id}/attend")
def attend_checkup(booking_id: str, _p: Principal = Depends(require("appointments:write"))) -> JSON:
    """The checkup was done (on its day)."""
    with write_tx() as session:
        return JSON(checkups.attend(session, booking_id, utc_now()))
