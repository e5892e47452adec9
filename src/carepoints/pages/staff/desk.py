"""The staff console's front desk (积分服务专窗): find a patient (/staff/patients) and their
summary, on-site registration (/staff/register), check-in (/staff/checkin), paper sheet entry of
offline behaviour (/staff/offline), coupon verification (/staff/coupons, 核销) and the
clinician's follow-up booking (/staff/followup-booking, 诊间复诊预约).

The same services and permissions as the API: patients from `patients.find` / `patients.id_for`
with `enrolment.patient` (patients:read, PII always masked here), points and entries from
enrolment (points:read), bookings through `scheduling.service.book` with the on-site channel
(appointments:write) and `book_follow_up` (appointments:follow_up), check-in through
`scheduling.service.check_in`, offline entries as `staff.offline_entry` events through
`events.service.ingest` (events:write), codes through `rewards.service.coupon` / `verify`
(coupons:verify). A staff user bound to institutions (ops.alliance) finds only their
institutions' patients."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.enrolment import service as enrolment
from carepoints.events import service as events
from carepoints.kit.errors import AppError, ValidationFailedError
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.time import local_date, utc_now
from carepoints.pages.staff import reports as staff_reports
from carepoints.pages.web import Page, form_errors, reading, staff_page, writing
from carepoints.patients import institutions
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.rewards import service as rewards
from carepoints.scheduling import privacy, service
from carepoints.scheduling.errors import AppointmentNotFoundError
from carepoints.scheduling.schemas import AppointmentCreate, CheckInIn
from carepoints.security.service import Principal

router = APIRouter(include_in_schema=False)

Find = Annotated[Page, Depends(staff_page("patients:read"))]
Book = Annotated[Page, Depends(staff_page("appointments:write"))]
Entry = Annotated[Page, Depends(staff_page("events:write"))]
Verify = Annotated[Page, Depends(staff_page("coupons:verify"))]
FollowUp = Annotated[Page, Depends(staff_page("appointments:follow_up"))]
Text = Annotated[str, Form(max_length=200)]

# errors a form re-renders with the message (the rest render as the error page)
FORM_ERRORS = (404, 409, 422, 429)
LIVE = ("booked", "checked_in")
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,23}$")
_MOBILE = re.compile(r"^1\d{10}$")
_ID_NUMBER = re.compile(r"^[0-9]{17}[0-9Xx]$")
_SEQ = re.compile(r"^\d{1,4}$")

LOOKUPS = {"phone": ("手机号", "Phone"), "card": ("就诊卡号", "Medical card"), "id_number": ("身份证号", "ID number")}
STATUS = {"booked": ("已预约", "Booked"), "checked_in": ("已签到", "Checked in"), "attended": ("已就诊", "Attended"),
          "cancelled": ("已取消", "Cancelled"), "no_show": ("爽约", "No-show")}

# the behaviours a paper sheet records (the reason code of an offline entry): the inner event
# `staff.offline_entry` stands for, and what the sheet's line gives for it
OFFLINE: dict[str, tuple[str, str, str, str]] = {
    # code: (zh, en, label of the sheet's reference zh, en)
    "lecture.attended": ("健康讲座签到", "Health lecture sign-in", "讲座编号", "Lecture number"),
    "selfservice.used": ("自助服务使用", "Self-service used", "自助机编号(可不填)", "Kiosk number (optional)"),
    "public_health.completed": ("公共卫生服务", "Public health service", "服务项目", "Item"),
    "profile.item_completed": ("健康档案完善", "Health record item", "档案项目", "Record item"),
    "conduct.violation": ("违规行为(扣分)", "Misconduct (deduction)", "违规情况说明", "What happened"),
}
SELF_SERVICE = {"pay": ("自助缴费", "Payment"), "print_report": ("自助打印报告", "Report printing"),
                "register": ("自助挂号", "Registration"), "query": ("自助查询", "Query")}
PUBLIC_HEALTH = {"vaccination": ("预防接种", "Vaccination"), "elderly_checkup": ("老年人体检", "Elderly check-up"),
                 "prenatal": ("孕产期保健", "Prenatal care")}


def invalid(field: str, message: str) -> ValidationFailedError:
    return ValidationFailedError(message, fields=[{"loc": ["form", field], "msg": message}])


def _principal(page: Page) -> Principal:
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    return page.principal


def _labels(page: Page) -> dict[str, Any]:
    return {"lookups": [(k, page.tr(*v)) for k, v in LOOKUPS.items()],
            "status_names": {k: page.tr(*v) for k, v in STATUS.items()}}


# --- finding patients --------------------------------------------------------------------------

def _scoped(session: Session, page: Page, found: list[str]) -> list[str]:
    """(ops.alliance) a staff user of some institutions finds only those institutions' patients."""
    bound = _principal(page).institutions
    if bound is None:
        return found
    mine = institutions.linked_patients(session, found, bound)
    return [pid for pid in found if pid in mine]


def _find(session: Session, page: Page, by: str, raw: str) -> list[str]:
    """Patients by phone, medical card number (the HIS's external id) or national id number."""
    value = raw.strip().replace(" ", "")
    if by == "phone":
        if not _PHONE.match(value):
            raise invalid("q", "请输入正确的手机号 / Enter a valid phone number")
        return _scoped(session, page, patients.find(session, phone=value))
    if by == "id_number":
        if not _ID_NUMBER.match(value):
            raise invalid("q", "请输入18位身份证号 / Enter the 18-character ID number")
        return _scoped(session, page, patients.find(session, id_number=value.upper()))
    if by == "card":
        if not value or len(value) > 64:
            raise invalid("q", "请输入就诊卡号 / Enter the medical card number")
        try:
            return [patients.id_for(session, None, None, get_settings().desk_card_system, value)]
        except PatientNotFoundError:
            return []
    raise invalid("by", "请选择查询方式 / Choose how to look up")


def _one_patient(session: Session, page: Page, raw: str, field: str = "patient") -> str:
    """The one patient a form names: a patient id (from the lookup) or a phone number, ID number or
    medical card number that names exactly one patient."""
    value = raw.strip().replace(" ", "")
    if not value:
        raise invalid(field, "请填写患者 / Name the patient")
    if is_id(value):
        if not patients.exists(session, value) or not _scoped(session, page, [value]):
            raise PatientNotFoundError()
        return value
    by = "phone" if _MOBILE.match(value) else "id_number" if _ID_NUMBER.match(value) else "card"
    found = _find(session, page, by, value)
    if len(found) > 1:
        raise invalid(field, "有多位患者符合,请先在患者查询中选定 / Several patients match: pick one in Find a patient")
    if not found:
        raise PatientNotFoundError()
    return found[0]


def _card(session: Session, pid: str) -> dict[str, Any]:
    """A patient as the desk sees them: masked name, phone and ID number."""
    doc = enrolment.patient(session, pid, reveal_pii=False)
    return {"id": pid, "name": doc["name"], "phone": doc["phone"], "id_number": doc["id_number"],
            "birth_date": doc["birth_date"], "status": doc["status"], "tier": doc["tier"],
            "cards": [e["value"] for e in doc["external_ids"]  # type: ignore[attr-defined]
                      if e["system"] == get_settings().desk_card_system]}


@router.get("/staff/patients")
def find_patients(page: Find, by: Annotated[str, Query(max_length=16)] = "phone",
                  q: Annotated[str, Query(max_length=64)] = "") -> Response:
    """Look a patient up by phone, medical card or ID number: a list with masked PII."""
    found: list[dict[str, Any]] | None = None
    error: dict[str, Any] | None = None
    errors: dict[str, str] = {}
    status = 200
    if q.strip():
        try:
            with reading() as session:
                found = [_card(session, pid) for pid in _find(session, page, by, q)]
        except AppError as err:
            if err.status_code not in FORM_ERRORS:
                raise
            status, error, errors = err.status_code, err.to_dict(), form_errors(err, page.lang)
    return page.render("staff/desk/patients.html", status=status, found=found, by=by, q=q, error=error,
                       errors=errors, **_labels(page))


def _upcoming(session: Session, pid: str, now: datetime) -> list[dict[str, Any]]:
    start = now.astimezone(get_settings().tz).strftime("%Y-%m-%d 00:00")
    return [a for a in privacy.appointments(session, pid) if a["status"] in LIVE and a["start"] >= start]


@router.get("/staff/patients/{patient_id}")
def patient_summary(page: Find, patient_id: str) -> Response:
    """One patient: masked details, balance, upcoming appointments and recent points entries."""
    principal = _principal(page)
    now = utc_now()
    with reading() as session:
        if not is_id(patient_id) or not patients.exists(session, patient_id) or not _scoped(session, page,
                                                                                             [patient_id]):
            raise PatientNotFoundError()
        person = _card(session, patient_id)
        points = enrolment.points(session, patient_id, now) if principal.can("points:read") else None
        entries = enrolment.entries(session, patient_id, limit=10, cursor=None)["items"] \
            if principal.can("points:read") else []
        upcoming = _upcoming(session, patient_id, now) if principal.can("appointments:read") else []
        coupons = [c for c in rewards.coupons_of(session, patient_id, limit=20)["items"]
                   if c["status"] == "issued" and c["expires_at"] > now] if principal.can("coupons:verify") else []
        reports = staff_reports.section(session, page, patient_id)  # (services.reports) 检查报告
    return page.render("staff/desk/patient.html", p=person, points=points, entries=entries, upcoming=upcoming,
                       coupons=coupons, reports=reports, **_labels(page))


# --- on-site registration ----------------------------------------------------------------------

def _today_sessions(now: datetime) -> list[dict[str, Any]]:
    with reading() as session:
        return service.list_sessions(session, now, day=local_date(now, get_settings().tz))


def _register_page(page: Page, status: int = 200, **values: Any) -> Response:
    now = utc_now()
    values.setdefault("form", {"patient": page.request.query_params.get("patient", "")[:64]})
    values.setdefault("key", new_id())
    return page.render("staff/desk/register.html", status=status, sessions=_today_sessions(now), **_labels(page),
                       **values)


@router.get("/staff/register")
def register_form(page: Book) -> Response:
    """Today's sessions with their free on-site numbers, and the registration form."""
    return _register_page(page)


@router.post("/staff/register")
def register(page: Book, patient: Text, session_id: Annotated[str, Form(max_length=64)],
             idempotency_key: Annotated[str, Form(min_length=1, max_length=128)],
             priority: Annotated[str, Form(max_length=8)] = "", check_in: Annotated[str, Form(max_length=8)] = ""
             ) -> Response:
    """Register the patient on the spot (channel on-site, from the same slot pool the service
    guards); with "check in now" the patient is checked in at once, with priority when flagged
    (the elderly get it by age anyway)."""
    principal = _principal(page)
    form = {"patient": patient, "session_id": session_id, "priority": priority, "check_in": check_in}
    now = utc_now()
    try:
        with writing() as session:
            pid = _one_patient(session, page, patient)
            body = AppointmentCreate(patient_id=pid, session_id=session_id, channel="onsite",
                                     idempotency_key=idempotency_key)
            doc, _created = service.book(session, body, now, booked_by="staff", actor=principal.actor())
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _register_page(page, err.status_code, form=form, error=err.to_dict(),
                              errors=form_errors(err, page.lang), key=new_id())
    notice = None
    if check_in and doc["status"] == "booked":
        try:
            with writing() as session:
                doc = service.check_in(session, doc["id"], CheckInIn(priority=bool(priority) or None, channel="desk"),
                                       utc_now())
        except AppError as err:
            if err.status_code not in FORM_ERRORS:
                raise
            notice = err.to_dict()
    with reading() as session:
        person = _card(session, doc["patient_id"])
    return _register_page(page, done=doc, person=person, notice=notice)


# --- check-in ----------------------------------------------------------------------------------

def _appointments_for(session: Session, page: Page, q: str, session_id: str, seq: str,
                      now: datetime) -> list[dict[str, Any]]:
    """The appointments a check-in search names: an appointment id, a session's sequence
    number, or the patient's live appointments of today."""
    value = q.strip()
    if session_id and seq:
        if not _SEQ.match(seq.strip()):
            raise invalid("seq", "请输入序号 / Enter the sequence number")
        ids = service.live_appointments_of_session(session, session_id)
        found = [a for a in (service.read_appointment(session, i) for i in ids) if a["seq"] == int(seq)]
        if not found:
            raise AppointmentNotFoundError()
        return found
    if is_id(value):
        try:
            doc = service.read_appointment(session, value)
        except AppointmentNotFoundError:
            doc = None
        if doc is not None:
            if not _scoped(session, page, [doc["patient_id"]]):
                raise AppointmentNotFoundError()
            return [doc]
    pid = _one_patient(session, page, value, "q")
    today = now.astimezone(get_settings().tz).strftime("%Y-%m-%d")
    return [a for a in privacy.appointments(session, pid) if a["status"] in LIVE and a["start"].startswith(today)]


def _checkin_page(page: Page, status: int = 200, *, q: str = "", session_id: str = "", seq: str = "",
                  **values: Any) -> Response:
    now = utc_now()
    found: list[dict[str, Any]] | None = values.pop("found", None)
    if found is None and (q.strip() or (session_id and seq)):
        try:
            with reading() as session:
                found = _appointments_for(session, page, q, session_id, seq, now)
        except AppError as err:
            if err.status_code not in FORM_ERRORS:
                raise
            status = err.status_code
            values.update(error=err.to_dict(), errors=form_errors(err, page.lang))
    people: dict[str, dict[str, Any]] = {}
    if found:
        with reading() as session:
            people = {pid: _card(session, pid) for pid in {a["patient_id"] for a in found}}
    return page.render("staff/desk/checkin.html", status=status, q=q, session_id=session_id, seq=seq, found=found,
                       people=people, sessions=_today_sessions(now), **_labels(page), **values)


@router.get("/staff/checkin")
def checkin_form(page: Book, q: Annotated[str, Query(max_length=64)] = "",
                 session_id: Annotated[str, Query(max_length=64)] = "",
                 seq: Annotated[str, Query(max_length=8)] = "") -> Response:
    """Find the appointment to check in: by appointment id, session + sequence number, or patient."""
    return _checkin_page(page, q=q, session_id=session_id, seq=seq)


@router.post("/staff/checkin/{appointment_id}")
def checkin(page: Book, appointment_id: str, priority: Annotated[str, Form(max_length=8)] = "") -> Response:
    """Check the appointment in at the desk: on time or late as the service decides, with priority
    when flagged (a disabled patient; the elderly by age)."""
    try:
        with writing() as session:
            found = service.read_appointment(session, appointment_id)
            if not _scoped(session, page, [found["patient_id"]]):
                raise AppointmentNotFoundError()
            doc = service.check_in(session, appointment_id, CheckInIn(priority=bool(priority) or None,
                                                                      channel="desk"), utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        if page.htmx:
            raise
        shown = appointment_id if err.status_code != 404 else ""  # the appointment, with why it was refused
        return _checkin_page(page, err.status_code, q=shown, error=err.to_dict())
    if page.htmx:
        with reading() as session:
            people = {doc["patient_id"]: _card(session, doc["patient_id"])}
        return page.render("staff/desk/_appointment.html", a=doc, people=people, done=True, **_labels(page))
    return _checkin_page(page, found=[doc], done=doc)


# --- paper sheet entry -------------------------------------------------------------------------

def _offline_page(page: Page, status: int = 200, **values: Any) -> Response:
    now = utc_now()
    values.setdefault("form", {"patient": page.request.query_params.get("patient", "")[:64],
                               "occurred_at": now.astimezone(get_settings().tz).strftime("%Y-%m-%dT%H:%M")})
    return page.render("staff/desk/offline.html", status=status,
                       behaviours=[(k, page.tr(v[0], v[1])) for k, v in OFFLINE.items()],
                       ref_labels={k: page.tr(v[2], v[3]) for k, v in OFFLINE.items()},
                       self_service=[(k, page.tr(*v)) for k, v in SELF_SERVICE.items()],
                       public_health=[(k, page.tr(*v)) for k, v in PUBLIC_HEALTH.items()], **values)


def _inner(behaviour: str, ref: str, option: str, staff_id: str) -> dict[str, Any]:
    """The attributes of the behaviour a sheet line records."""
    ref = ref.strip()
    if behaviour == "selfservice.used":
        if option not in SELF_SERVICE:
            raise invalid("option", "请选择自助服务类型 / Choose the self-service")
        return {"action": option, **({"kiosk_id": ref} if ref else {})}
    if behaviour == "public_health.completed":
        if option not in PUBLIC_HEALTH:
            raise invalid("option", "请选择公共卫生项目 / Choose the programme")
        if not ref:
            raise invalid("ref", "请填写服务项目 / Enter the item")
        return {"programme": option, "item": ref}
    if not ref:
        raise invalid("ref", "请填写此项 / This is required")
    if behaviour == "lecture.attended":
        return {"lecture_id": ref}
    if behaviour == "profile.item_completed":
        return {"item": ref}
    if behaviour == "conduct.violation":
        return {"reason": ref, "staff_id": staff_id}
    raise invalid("behaviour", "请选择行为 / Choose the behaviour")


def _occurred(raw: str, now: datetime) -> datetime:
    try:
        at = datetime.fromisoformat(raw.strip()).replace(tzinfo=get_settings().tz)
    except ValueError:
        raise invalid("occurred_at", "请填写发生时间 / Enter when it happened") from None
    if at > now + timedelta(minutes=5):
        raise invalid("occurred_at", "发生时间不能晚于现在 / It cannot be in the future")
    return at


@router.get("/staff/offline")
def offline_form(page: Entry) -> Response:
    """The paper sheet entry form: patient, behaviour (the reason code), sheet number, when."""
    return _offline_page(page)


@router.post("/staff/offline")
def offline_entry(page: Entry, patient: Text, behaviour: Annotated[str, Form(max_length=64)],
                  sheet_ref: Annotated[str, Form(max_length=100)], occurred_at: Annotated[str, Form(max_length=32)],
                  ref: Text = "", option: Annotated[str, Form(max_length=32)] = "") -> Response:
    """Record one line of a paper sheet as a `staff.offline_entry` event (the staff member its
    source): the rules score it as the behaviour it stands for; the outcome (points, notices)
    is shown. The same sheet line again changes nothing (a duplicate)."""
    principal = _principal(page)
    form = {"patient": patient, "behaviour": behaviour, "sheet_ref": sheet_ref, "occurred_at": occurred_at,
            "ref": ref, "option": option}
    now = utc_now()
    try:
        if behaviour not in OFFLINE:
            raise invalid("behaviour", "请选择行为 / Choose the behaviour")
        if not sheet_ref.strip():
            raise invalid("sheet_ref", "请填写登记表编号 / Enter the sheet number")
        inner = _inner(behaviour, ref, option, principal.id)
        at = _occurred(occurred_at, now)
        with writing() as session:
            pid = _one_patient(session, page, patient)
            raw = {"type": "staff.offline_entry", "patient": {"id": pid}, "occurred_at": at.isoformat(),
                   "source": f"staff:{principal.id}",
                   "source_event_id": f"sheet:{sheet_ref.strip()}:{behaviour}:{pid}",
                   "attributes": {"behaviour": behaviour, "attributes": inner, "sheet_ref": sheet_ref.strip(),
                                  "staff_id": principal.id}}
            result = events.ingest(session, [raw], now)[0]
            if isinstance(result, AppError):
                raise result
            person = _card(session, pid)
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _offline_page(page, err.status_code, form=form, error=err.to_dict(), errors=form_errors(err, page.lang))
    keep = {"occurred_at": occurred_at, "behaviour": behaviour, "sheet_ref": sheet_ref, "option": option}
    return _offline_page(page, form=keep, outcome=result, person=person,
                         behaviour_name=page.tr(*OFFLINE[behaviour][:2]))


# --- coupon verification (核销) -----------------------------------------------------------------

def _coupon_page(page: Page, status: int = 200, **values: Any) -> Response:
    return page.render("staff/desk/coupons.html", status=status, **values)


@router.get("/staff/coupons")
def coupon_form(page: Verify, code: Annotated[str, Query(max_length=64)] = "") -> Response:
    """The verification box (typed, or a QR scanner that types the code); with `code`, the code's state."""
    if not code.strip():
        return _coupon_page(page)
    try:
        with reading() as session:
            found = rewards.coupon(session, code)
            person = _card(session, found["patient_id"])
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _coupon_page(page, err.status_code, code=code, error=err.to_dict())
    return _coupon_page(page, code=code, found=found, person=person)


@router.post("/staff/coupons")
def verify_coupon(page: Verify, code: Annotated[str, Form(max_length=64)]) -> Response:
    """核销: use the code once; used, expired, refunded and unknown codes are refused with their own message."""
    principal = _principal(page)
    try:
        with writing() as session:
            used = rewards.verify(session, code, principal.actor(), utc_now())
            person = _card(session, used["patient_id"])
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _coupon_page(page, err.status_code, code=code, error=err.to_dict())
    return _coupon_page(page, used=used, person=person)


# --- the clinician's follow-up booking --------------------------------------------------------

def _own_sessions(page: Page, now: datetime) -> list[dict[str, Any]]:
    """The clinician's own future sessions, also those not yet open to the public."""
    with reading() as session:
        return service.clinician_sessions(session, _principal(page).id, now)


def _followup_page(page: Page, status: int = 200, **values: Any) -> Response:
    now = utc_now()
    values.setdefault("form", {"patient": page.request.query_params.get("patient", "")[:64]})
    values.setdefault("key", new_id())
    return page.render("staff/desk/followup.html", status=status, sessions=_own_sessions(page, now), **_labels(page),
                       **values)


@router.get("/staff/followup-booking")
def followup_form(page: FollowUp) -> Response:
    """The clinician's own sessions and the form to book a patient's follow-up in one."""
    return _followup_page(page)


@router.post("/staff/followup-booking")
def followup_book(page: FollowUp, patient: Text, idempotency_key: Annotated[str, Form(min_length=1, max_length=128)],
                  session_id: Annotated[str, Form(max_length=64)] = "",
                  session_other: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Book the follow-up (`booked_by: clinician`, also before the session opens to the public);
    only the clinician the session belongs to may (409 otherwise)."""
    principal = _principal(page)
    form = {"patient": patient, "session_id": session_id, "session_other": session_other}
    chosen = session_other.strip() or session_id.strip()
    try:
        if not chosen:
            raise invalid("session_other", "请选择出诊 / Choose a session")
        with writing() as session:
            pid = _one_patient(session, page, patient)
            body = AppointmentCreate(patient_id=pid, session_id=chosen, channel="online",
                                     idempotency_key=idempotency_key)
            doc, _created = service.book_follow_up(session, body, utc_now(), principal.id)
            person = _card(session, pid)
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _followup_page(page, err.status_code, form=form, error=err.to_dict(),
                              errors=form_errors(err, page.lang), key=new_id())
    return _followup_page(page, done=doc, person=person)
