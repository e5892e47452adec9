"""Admissions API (住院预约 / 择期·日间手术 / 预就诊): the set-up of wards and operating rooms
(admissions:setup), orders, surgery requests and pre-visit exams issued by clinicians, the ward or
the HIS (admissions:write), staff day views (admissions:read), and the patient's own: their
overview, an order's bookable dates, choosing, moving or cancelling the admission date
(appointments:read / appointments:write; a patient token reaches only its own records — the
routes naming a record by its id are in carepoints.ownership)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.security.deps import require, require_any
from carepoints.security.service import Principal
from carepoints.services.admissions import previsit, service, surgery
from carepoints.services.admissions.schemas import (
    CancelBody,
    OrderCreate,
    OrderDate,
    PrevisitCreate,
    RoomCreate,
    SurgeryCheck,
    SurgeryCreate,
    SurgerySchedule,
    WardCreate,
    WardDayCapacity,
)

router = APIRouter(tags=["admissions"])

_setup = require("admissions:setup")
_staff_read = require("admissions:read")
_staff_write = require("admissions:write")
_read = require_any("appointments:read", "admissions:read")
_book = require_any("appointments:write", "admissions:write")
_REPLAY: dict[int | str, dict[str, Any]] = {200: {"description": "the same request again (replay)"}}


# --- set-up -----------------------------------------------------------------------------------

@router.post("/wards", status_code=201)
def create_ward(body: WardCreate, p: Principal = Depends(_setup)) -> JSON:
    """A ward (病区) of a department: admissions per day, arrival time and pre-admission instructions."""
    with write_tx() as session:
        return JSON(service.create_ward(session, body, p.actor(), utc_now()), status_code=201)


@router.get("/wards")
def list_wards(_p: Principal = Depends(_staff_read)) -> JSON:
    """The active wards."""
    with read_tx() as session:
        return JSON({"items": service.wards(session)})


@router.put("/wards/{ward_id}/days/{day}")
def set_ward_day(ward_id: str, day: date, body: WardDayCapacity, p: Principal = Depends(_setup)) -> JSON:
    """A day's admissions other than the ward's usual number (0 closes the day); never below what
    is booked (409 `admissions.capacity_below_booked`)."""
    with write_tx() as session:
        return JSON(service.set_ward_day(session, ward_id, day, body, p.actor(), utc_now()))


@router.get("/wards/{ward_id}/days/{day}")
def ward_day(ward_id: str, day: date, _p: Principal = Depends(_staff_read)) -> JSON:
    """The ward's day: capacity, booked, free and each patient booked (masked names)."""
    with read_tx() as session:
        return JSON(service.ward_day(session, ward_id, day, utc_now()))


@router.post("/operating-rooms", status_code=201)
def create_room(body: RoomCreate, p: Principal = Depends(_setup)) -> JSON:
    """An operating room: its minutes and cases per day and the kinds of surgery it takes."""
    with write_tx() as session:
        return JSON(service.create_room(session, body, p.actor(), utc_now()), status_code=201)


@router.get("/operating-rooms")
def list_rooms(_p: Principal = Depends(_staff_read)) -> JSON:
    """The active operating rooms."""
    with read_tx() as session:
        return JSON({"items": service.rooms(session)})


@router.get("/operating-rooms/{room_id}/days/{day}")
def room_day(room_id: str, day: date, _p: Principal = Depends(_staff_read)) -> JSON:
    """The room's day: minutes and cases booked of its capacity, and its surgeries."""
    with read_tx() as session:
        return JSON(surgery.room_day(session, room_id, day))


# --- admission orders -------------------------------------------------------------------------

@router.post("/admission-orders", status_code=201, responses=_REPLAY)
def issue_order(body: OrderCreate, p: Principal = Depends(_staff_write)) -> JSON:
    """Issue an admission order (住院证) for a patient and ward; the patient is asked to choose a
    date. 409 `admissions.order_exists` while the patient has an open one for the ward."""
    with write_tx() as session:
        doc, created = service.issue_order(session, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.get("/admission-orders/{order_id}")
def get_order(order_id: str, _p: Principal = Depends(_read)) -> JSON:
    """One admission order: status, date, arrival time, instructions and the online change deadline."""
    with read_tx() as session:
        return JSON(service.read_order(session, order_id, utc_now()))


@router.get("/admission-orders/{order_id}/dates")
def order_dates(order_id: str, p: Principal = Depends(_read)) -> JSON:
    """The days the order may be booked on, with the beds left each day."""
    with read_tx() as session:
        return JSON(service.available_dates(session, order_id, p.actor(), utc_now()))


@router.post("/admission-orders/{order_id}/date")
def book_order_date(order_id: str, body: OrderDate, p: Principal = Depends(_book)) -> JSON:
    """Book the admission on a date or move it (409 `admissions.day_full`, `…change_too_late`,
    `…reschedule_limit`; 422 `admissions.date_outside_window`). The same date again: no change."""
    with write_tx() as session:
        return JSON(service.book_date(session, order_id, body.date, p.actor(), utc_now()))


@router.post("/admission-orders/{order_id}/cancel")
def cancel_order(order_id: str, body: CancelBody | None = None, p: Principal = Depends(_book)) -> JSON:
    """Cancel the order (the patient until the cut-off; the hospital before admission)."""
    with write_tx() as session:
        return JSON(service.cancel_order(session, order_id, p.actor(), utc_now(), (body or CancelBody()).reason))


@router.post("/admission-orders/{order_id}/admit")
def admit(order_id: str, p: Principal = Depends(_staff_write)) -> JSON:
    """The ward confirms the patient's arrival (on the admission day only)."""
    with write_tx() as session:
        return JSON(service.admit(session, order_id, p.actor(), utc_now()))


# --- surgery ----------------------------------------------------------------------------------

@router.post("/surgery-requests", status_code=201, responses=_REPLAY)
def request_surgery(body: SurgeryCreate, p: Principal = Depends(_staff_write)) -> JSON:
    """A surgery request: procedure, kind (elective / day), expected minutes (422
    `admissions.day_surgery_too_long` beyond the day-surgery limit)."""
    with write_tx() as session:
        doc, created = surgery.request(session, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.get("/surgery-requests")
def waiting_surgeries(_p: Principal = Depends(_staff_read)) -> JSON:
    """Requests waiting for a room and a date, oldest first."""
    with read_tx() as session:
        return JSON({"items": surgery.waiting(session)})


@router.get("/surgery-requests/{surgery_id}")
def get_surgery(surgery_id: str, _p: Principal = Depends(_read)) -> JSON:
    """One surgery request with its checks, room and date."""
    with read_tx() as session:
        return JSON(surgery.read(session, surgery_id))


@router.post("/surgery-requests/{surgery_id}/checks")
def record_check(surgery_id: str, body: SurgeryCheck, p: Principal = Depends(_staff_write)) -> JSON:
    """Record the pre-op exam or the anaesthesia assessment as done."""
    with write_tx() as session:
        return JSON(surgery.record_check(session, surgery_id, body, p.actor(), utc_now()))


@router.post("/surgery-requests/{surgery_id}/schedule")
def schedule_surgery(surgery_id: str, body: SurgerySchedule, p: Principal = Depends(_staff_write)) -> JSON:
    """Put the surgery in a room on a date, or move it: working days only, not before its earliest
    date; a day surgery with its checks done; 409 `admissions.room_full` when the room's day has no
    minutes or case left."""
    with write_tx() as session:
        return JSON(surgery.schedule(session, surgery_id, body, p.actor(), utc_now()))


@router.post("/surgery-requests/{surgery_id}/cancel")
def cancel_surgery(surgery_id: str, body: CancelBody | None = None, p: Principal = Depends(_staff_write)) -> JSON:
    """Cancel the request (the room's time given back); the patient is told."""
    with write_tx() as session:
        return JSON(surgery.cancel(session, surgery_id, p.actor(), utc_now(), (body or CancelBody()).reason))


@router.post("/surgery-requests/{surgery_id}/done")
def surgery_done(surgery_id: str, p: Principal = Depends(_staff_write)) -> JSON:
    """The surgery took place (from its day on)."""
    with write_tx() as session:
        return JSON(surgery.complete(session, surgery_id, p.actor(), utc_now()))


# --- pre-visit exams --------------------------------------------------------------------------

@router.post("/previsit-orders", status_code=201, responses=_REPLAY)
def order_previsit(body: PrevisitCreate, p: Principal = Depends(_staff_write)) -> JSON:
    """预就诊: book the exam and the follow-up in the clinician's first session that starts once the
    result is expected (exam slot end + result hours). 409 `admissions.no_exam_session` /
    `admissions.no_followup_session` with nothing stored."""
    with write_tx() as session:
        doc, created = previsit.order(session, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.get("/previsit-orders/{previsit_id}")
def get_previsit(previsit_id: str, _p: Principal = Depends(_read)) -> JSON:
    """One pre-visit order with its exam and follow-up appointments."""
    with read_tx() as session:
        return JSON(previsit.read(session, previsit_id))


@router.post("/previsit-orders/{previsit_id}/cancel")
def cancel_previsit(previsit_id: str, p: Principal = Depends(_staff_write)) -> JSON:
    """Cancel the order and its booked appointments (by the hospital)."""
    with write_tx() as session:
        return JSON(previsit.cancel(session, previsit_id, p.actor(), utc_now()))


# --- the patient's overview -------------------------------------------------------------------

@router.get("/patients/{patient_id}/admissions")
def patient_overview(patient_id: str, _p: Principal = Depends(_read)) -> JSON:
    """The patient's admission orders, surgeries and pre-visit exams, newest first."""
    with read_tx() as session:
        if not patients.exists(session, patient_id):
            raise PatientNotFoundError()
        now = utc_now()
        return JSON({"admissions": service.patient_orders(session, patient_id, now),
                     "surgeries": surgery.of_patient(session, patient_id),
                     "previsits": previsit.of_patient(session, patient_id)})
