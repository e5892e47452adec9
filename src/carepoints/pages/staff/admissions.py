"""住院与手术 in the staff console (admissions:read to look, admissions:write to act): the hub
(/staff/admissions) with the forms to issue an admission order (住院证), a surgery request and a
pre-visit exam (预就诊) for a patient found by phone, card, ID number or id; the wards and rooms with
their day views (/staff/admissions/wards/{ward_id}?day=, /staff/admissions/rooms/{room_id}?day=) where
the ward confirms a patient's arrival on the day; a surgery request's page with its pre-op checks and
the room and date it is scheduled into. Every action goes through the admissions services (audited
there); names are masked on the day views."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import Response

from carepoints.kit.errors import AppError
from carepoints.kit.ids import new_id
from carepoints.kit.time import utc_now
from carepoints.pages.patient.admissions import labels
from carepoints.pages.staff.desk import _one_patient as one_patient
from carepoints.pages.web import Page, form_errors, invalid, reading, staff_page, writing
from carepoints.services.admissions import previsit, service, surgery
from carepoints.services.admissions.schemas import (
    OrderCreate,
    PrevisitCreate,
    SurgeryCheck,
    SurgeryCreate,
    SurgerySchedule,
)

router = APIRouter(include_in_schema=False)

Read = Annotated[Page, Depends(staff_page("admissions:read"))]
Write = Annotated[Page, Depends(staff_page("admissions:write"))]
Text = Annotated[str, Form(max_length=200)]
FORM_ERRORS = (404, 409, 422)


def _day(raw: str | None) -> date:
    if not raw:
        return service.today(utc_now())
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise invalid("day", "日期格式为 YYYY-MM-DD / Use YYYY-MM-DD") from None


def _optional_date(raw: str, field: str) -> date | None:
    if not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise invalid(field, "日期格式为 YYYY-MM-DD / Use YYYY-MM-DD") from None


def _int(raw: str, field: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise invalid(field, "请填写整数 / Enter a whole number") from None


def _hub(page: Page, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        data: dict[str, Any] = {"wards": service.wards(session), "rooms": service.rooms(session),
                                "waiting": surgery.waiting(session), **previsit.choices(session)}
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    departments = {w["department_id"]: page.tr(w["department_names"]["zh"], w["department_names"]["en"])
                   for w in [*data["wards"], *data["rooms"]]}
    own = [c["id"] for c in data["clinicians"] if c["staff_user_id"] == page.principal.id]
    data |= {"ward_options": [(w["id"], page.tr(w["names"]["zh"], w["names"]["en"])) for w in data["wards"]],
             "department_options": list(departments.items()),
             "clinician_options": [(c["id"], f"{c['name']} · {page.tr(c['department_zh'], c['department_en'])}")
                                   for c in data["clinicians"]],
             "resource_options": [(r["id"], f"{r['name']} · {page.tr(r['department_zh'], r['department_en'])}")
                                  for r in data["resources"]],
             "own_clinician": own[0] if own else None}
    values.setdefault("form", {})
    values.setdefault("key", new_id())
    return page.render("staff/admissions/index.html", status=status, today=service.today(utc_now()).isoformat(),
                       **data, **labels(page), **values)


@router.get("/staff/admissions")
def hub(page: Read) -> Response:
    """Wards, rooms, surgery requests waiting for a date, and the forms to issue orders."""
    return _hub(page)


def _refused(page: Page, err: AppError, form: dict[str, Any], which: str) -> Response:
    if err.status_code not in FORM_ERRORS:
        raise err
    return _hub(page, err.status_code, form=form, which=which, error=err.to_dict(), errors=form_errors(err, page.lang))


@router.post("/staff/admissions/orders")
def issue_order(page: Write, patient: Text, ward_id: Annotated[str, Form(max_length=64)],
                idempotency_key: Annotated[str, Form(min_length=1, max_length=128)],
                earliest_date: Annotated[str, Form(max_length=10)] = "",
                valid_days: Annotated[str, Form(max_length=4)] = "") -> Response:
    """Issue an admission order: the patient is asked to choose a date."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    form = {"patient": patient, "ward_id": ward_id, "earliest_date": earliest_date, "valid_days": valid_days}
    try:
        with writing() as session:
            pid = one_patient(session, page, patient)
            body = OrderCreate(patient_id=pid, ward_id=ward_id, earliest_date=_optional_date(earliest_date,
                                                                                              "earliest_date"),
                               valid_days=_int(valid_days, "valid_days") if valid_days.strip() else None,
                               idempotency_key=idempotency_key)
            doc, _created = service.issue_order(session, body, page.principal.actor(), utc_now())
    except AppError as err:
        return _refused(page, err, form, "order")
    return _hub(page, done={"kind": "order", "doc": doc})


@router.post("/staff/admissions/surgeries")
def request_surgery(page: Write, patient: Text, department_id: Annotated[str, Form(max_length=64)],
                    procedure: Annotated[str, Form(max_length=100)], kind: Annotated[str, Form(max_length=16)],
                    expected_minutes: Annotated[str, Form(max_length=4)],
                    idempotency_key: Annotated[str, Form(min_length=1, max_length=128)]) -> Response:
    """Request a surgery (elective or day)."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    form = {"patient": patient, "department_id": department_id, "procedure": procedure, "kind": kind,
            "expected_minutes": expected_minutes}
    try:
        if kind not in ("elective", "day"):
            raise invalid("kind", "请选择手术类型 / Choose the kind")
        minutes = _int(expected_minutes, "expected_minutes")
        if not 10 <= minutes <= 720:
            raise invalid("expected_minutes", "10 至 720 分钟 / 10 to 720 minutes")
        if not procedure.strip():
            raise invalid("procedure", "请填写手术名称 / Name the procedure")
        with writing() as session:
            pid = one_patient(session, page, patient)
            body = SurgeryCreate(patient_id=pid, department_id=department_id, procedure=procedure,
                                 kind=kind, expected_minutes=minutes,
                                 idempotency_key=idempotency_key)
            doc, _created = surgery.request(session, body, page.principal.actor(), utc_now())
    except AppError as err:
        return _refused(page, err, form, "surgery")
    return page.redirect(f"/staff/admissions/surgeries/{doc['id']}")


@router.post("/staff/admissions/previsits")
def order_previsit(page: Write, patient: Text, clinician_id: Annotated[str, Form(max_length=64)],
                   resource_id: Annotated[str, Form(max_length=64)], exam: Annotated[str, Form(max_length=100)],
                   result_hours: Annotated[str, Form(max_length=4)],
                   idempotency_key: Annotated[str, Form(min_length=1, max_length=128)]) -> Response:
    """Book the exam and the follow-up after its result."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    form = {"patient": patient, "clinician_id": clinician_id, "resource_id": resource_id, "exam": exam,
            "result_hours": result_hours}
    try:
        hours = _int(result_hours, "result_hours")
        if not 0 <= hours <= 720:
            raise invalid("result_hours", "0 至 720 小时 / 0 to 720 hours")
        if not exam.strip():
            raise invalid("exam", "请填写检查项目 / Name the exam")
        with writing() as session:
            pid = one_patient(session, page, patient)
            body = PrevisitCreate(patient_id=pid, clinician_id=clinician_id or None, resource_id=resource_id,
                                  exam=exam.strip(), result_hours=hours, idempotency_key=idempotency_key)
            doc, _created = previsit.order(session, body, page.principal.actor(), utc_now())
    except AppError as err:
        return _refused(page, err, form, "previsit")
    return _hub(page, done={"kind": "previsit", "doc": doc})


@router.get("/staff/admissions/wards/{ward_id}")
def ward_day(page: Read, ward_id: str, day: Annotated[str | None, Query(max_length=10)] = None) -> Response:
    """The ward's day: beds booked and free, each patient (masked) and 办理入院 on the day."""
    on = _day(day)
    with reading() as session:
        doc = service.ward_day(session, ward_id, on, utc_now())
    return page.render("staff/admissions/ward_day.html", w=doc, prev=(on - timedelta(days=1)).isoformat(),
                       next=(on + timedelta(days=1)).isoformat(), **labels(page),
                       flash=bool(page.request.query_params.get("admitted")), kind="ok",
                       message=page.tr("已办理入院", "Admission confirmed"))


@router.post("/staff/admissions/orders/{order_id}/admit")
def admit(page: Write, order_id: str) -> Response:
    """Confirm the patient's arrival (on the admission day)."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    with writing() as session:
        doc = service.admit(session, order_id, page.principal.actor(), utc_now())
    return page.redirect(f"/staff/admissions/wards/{doc['ward']['id']}?day={doc['admission_date']}&admitted=1")


def _surgery_page(page: Page, surgery_id: str, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        doc = surgery.read(session, surgery_id)
        rooms = [r for r in service.rooms(session) if doc["kind"] in r["kinds"]]
    return page.render("staff/admissions/surgery.html", status=status, s=doc, rooms=rooms, **labels(page), **values)


@router.get("/staff/admissions/surgeries/{surgery_id}")
def surgery_detail(page: Read, surgery_id: str) -> Response:
    """A surgery request: its checks, and the room and date to schedule it into."""
    return _surgery_page(page, surgery_id)


@router.post("/staff/admissions/surgeries/{surgery_id}/checks")
def record_check(page: Write, surgery_id: str, check: Annotated[str, Form(max_length=16)]) -> Response:
    """Record the pre-op exam or the anaesthesia assessment as done."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    if check not in ("preop_exam", "anaesthesia"):
        raise invalid("check", "未知的检查 / Unknown check")
    with writing() as session:
        surgery.record_check(session, surgery_id, SurgeryCheck(check=check), page.principal.actor(),
                             utc_now())
    return page.redirect(f"/staff/admissions/surgeries/{surgery_id}")


@router.post("/staff/admissions/surgeries/{surgery_id}/schedule")
def schedule(page: Write, surgery_id: str, room_id: Annotated[str, Form(max_length=64)],
             day: Annotated[str, Form(alias="date", max_length=10)]) -> Response:
    """Put the surgery into a room on a date (or move it)."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    try:
        on = _optional_date(day, "date")
        if on is None:
            raise invalid("date", "请选择日期 / Choose a date")
        with writing() as session:
            surgery.schedule(session, surgery_id, SurgerySchedule(room_id=room_id, date=on), page.principal.actor(),
                             utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS or err.code == "admissions.surgery_not_found":
            raise
        return _surgery_page(page, surgery_id, err.status_code, error=err.to_dict(),
                             errors=form_errors(err, page.lang), form={"room_id": room_id, "date": day})
    return page.redirect(f"/staff/admissions/surgeries/{surgery_id}?scheduled=1")


@router.get("/staff/admissions/rooms/{room_id}")
def room_day(page: Read, room_id: str, day: Annotated[str | None, Query(max_length=10)] = None) -> Response:
    """The room's day: minutes and cases booked of its capacity and its surgeries."""
    on = _day(day)
    with reading() as session:
        doc = surgery.room_day(session, room_id, on)
    return page.render("staff/admissions/room_day.html", r=doc, prev=(on - timedelta(days=1)).isoformat(),
                       next=(on + timedelta(days=1)).isoformat(), **labels(page))
