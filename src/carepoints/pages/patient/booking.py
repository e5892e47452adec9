"""The patient's booking pages: department → clinician → session → book (/me/book/...), my
appointments with cancel and its cut-off explained (/me/appointments/...), and the waitlist
(候补) with its offers to confirm (/me/waitlist/...).

The same services and permissions as the scheduling API (scheduling.endpoints): sessions
open for booking from `service.list_sessions` / `read_session` (schedule:read), booking
through `service.book` (appointments:write; the same idempotency key books once), cancel
through `service.cancel` (by the patient, until the cut-off), the waitlist through
`scheduling.waitlist`; a patient's own appointments and waitlist entries from the data
download's sections (`scheduling.privacy`). Names of institutions, departments and
clinicians are read with the scheduling repository's `get` (no query of its own).
Record ids in the path are checked by carepoints.ownership (another patient's → 404)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.kit.errors import AppError
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.ratelimit import limiter
from carepoints.kit.time import local_date, utc_now
from carepoints.pages.web import Page, patient_page, reading, writing
from carepoints.patients import institutions as patient_links
from carepoints.rules import service as rules
from carepoints.rules.programme import HoursBetweenCondition
from carepoints.scheduling import privacy, service, waitlist
from carepoints.scheduling.errors import (
    AppointmentNotFoundError,
    ClinicianNotFoundError,
    DepartmentNotFoundError,
    WaitlistEntryNotFoundError,
)
from carepoints.scheduling.schemas import AppointmentCreate, CancelIn, WaitlistJoin
from carepoints.scheduling.slots import usable_pools

router = APIRouter(include_in_schema=False)

Read = Annotated[Page, Depends(patient_page("schedule:read"))]
Mine = Annotated[Page, Depends(patient_page("appointments:read"))]
Write = Annotated[Page, Depends(patient_page("appointments:write"))]
Key = Annotated[str, Form(min_length=1, max_length=128)]

CHANNEL = "online"  # a patient books online; on-site slots are the front desk's
LIVE = ("booked", "checked_in")
# errors a form re-renders with the message (the rest render as the error page)
FORM_ERRORS = (404, 409, 422, 429)

APPOINTMENT_STATUS = {
    "booked": ("已预约", "Booked"), "checked_in": ("已签到", "Checked in"), "attended": ("已就诊", "Attended"),
    "cancelled": ("已取消", "Cancelled"), "no_show": ("未就诊(爽约)", "Missed"),
}
WAITLIST_STATUS = {
    "waiting": ("候补排队中", "Waiting"), "offered": ("有号源,待您确认", "A slot is offered: confirm it"),
    "booked": ("候补成功,已约上", "Booked from the waitlist"), "lapsed": ("确认超时,已顺延", "Offer lapsed"),
    "declined": ("已放弃候补", "Left the waitlist"), "skipped": ("未能约上", "Skipped"),
    "cancelled": ("出诊取消,候补结束", "Session cancelled"),
}
LEVELS = {"general": ("普通号", "General"), "expert": ("专家号", "Expert")}
DONE = {
    "booked": ("预约成功!请按时就诊。", "Booked! Please come on time."),
    "cancelled": ("已取消预约。", "The appointment is cancelled."),
    "joined": ("已加入候补,有号源时会通知您。", "You are on the waitlist: we will tell you when a slot frees up."),
    "confirmed": ("已确认,预约成功!", "Confirmed: you are booked!"),
    "declined": ("已放弃候补。", "You left the waitlist."),
}


# --- helpers -----------------------------------------------------------------------------------

def _now() -> datetime:
    return utc_now()


def _today(now: datetime) -> Any:
    return local_date(now, get_settings().tz)


def _hhmm(iso: str) -> str:
    return iso[11:16]


_WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")
_WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _day_text(page: Page, iso: str, now: datetime) -> str:
    """A day in plain words: 12月3日 周四(今天) / Thu 3 Dec (today)."""
    day = datetime.fromisoformat(iso[:10]).date()
    offset = (day - _today(now)).days
    near = {0: ("今天", "today"), 1: ("明天", "tomorrow"), 2: ("后天", "in 2 days")}.get(offset)
    zh = f"{day.month}月{day.day}日 周{_WEEKDAYS[day.weekday()]}" + (f"({near[0]})" if near else "")
    en = f"{_WEEKDAYS_EN[day.weekday()]} {day.day} {_MONTHS_EN[day.month - 1]}" + (f" ({near[1]})" if near else "")
    return page.tr(zh, en)


def _ahead(doc: dict[str, Any], now: datetime) -> bool:
    """Still ahead of the patient: booked and not over, or checked in today (the patient may still be
    waiting to be called after the session's end)."""
    if doc["status"] not in LIVE:
        return False
    if datetime.fromisoformat(doc["end"]) > now:
        return True
    started = datetime.fromisoformat(doc["start"])
    return bool(doc["status"] == "checked_in" and local_date(started, get_settings().tz) == _today(now))


def _free(doc: dict[str, Any], now: datetime) -> int:
    """Free slots an online booking by the patient may take now (scheduling.slots.usable_pools)."""
    day = datetime.fromisoformat(doc["date"]).date()
    pools = usable_pools(CHANNEL, day, _today(now), referral_released=False)
    return sum(int(doc["free"].get(p, 0)) for p in pools)


def _name(page: Page, row: Any) -> str:
    if row is None:
        return ""
    en = row.get("name_en") if hasattr(row, "get") else None
    return page.tr(row["name_zh"], en or row["name_zh"])


def _department(session: Session, department_id: str) -> Any:
    row = service.catalogue_entry(session, "department", department_id) if is_id(department_id) else None
    if row is None:
        raise DepartmentNotFoundError()
    return row


def _clinician(session: Session, clinician_id: str) -> Any:
    row = service.catalogue_entry(session, "clinician", clinician_id) if is_id(clinician_id) else None
    if row is None:
        raise ClinicianNotFoundError()
    return row


def _session_info(page: Page, session: Session, session_ids: Iterable[str], now: datetime
                  ) -> dict[str, dict[str, Any]]:
    """Session id → the session (service.read_session) with its clinician and department names."""
    out: dict[str, dict[str, Any]] = {}
    depts: dict[str, Any] = {}
    for sid in dict.fromkeys(session_ids):
        doc = service.read_session(session, sid, now)
        dept_id = doc["department"]
        if dept_id not in depts:
            depts[dept_id] = service.catalogue_entry(session, "department", dept_id)
        doc["department_name"] = _name(page, depts[dept_id])
        clin = service.catalogue_entry(session, "clinician", doc["clinician"]) if doc["clinician"] else None
        doc["clinician_title"] = clin["title"] if clin is not None else None
        if doc["clinician_name"] is None and doc["resource"]:
            res = service.catalogue_entry(session, "resource", doc["resource"])
            doc["clinician_name"] = res["name"] if res is not None else ""
        doc["time"] = f"{_hhmm(doc['start'])}–{_hhmm(doc['end'])}"
        doc["day_text"] = _day_text(page, doc["date"], now)
        doc["level_text"] = page.tr(*LEVELS.get(doc["level"], (doc["level"], doc["level"])))
        doc["free_now"] = _free(doc, now)
        out[sid] = doc
    return out


def _done(page: Page) -> dict[str, Any]:
    """The success flash after a redirect (`?done=booked`)."""
    words = DONE.get(page.request.query_params.get("done") or "")
    message = page.tr(*words) if words else None
    return {"flash": message, "message": message, "kind": "ok"}


def _cutoff_words(page: Page) -> str:
    hours = get_settings().cancel_cutoff_hours
    return page.tr(f"就诊前{hours}小时内不能在线取消,请联系医院", f"Online cancellation closes {hours} hours before "
                   "the visit: after that, please call the hospital")


def _book_ahead(session: Session, page: Page, doc: dict[str, Any], now: datetime) -> str | None:
    """What booking this session now earns by the programme's `book_ahead` rule, in words
    (None when the programme has no such rule)."""
    programme = rules.programmes(session).at(now).programme
    rule = next((r for r in programme.rules if r.code == "book_ahead" and r.status == "active"), None)
    if rule is None or rule.points <= 0:
        return None
    need = next((c.min for c in rule.conditions if isinstance(c, HoursBetweenCondition) and c.min), None)
    start = datetime.fromisoformat(doc["start"])
    ahead_hours = (start - now).total_seconds() / 3600
    if need is None or ahead_hours >= need:
        return page.tr(f"提前预约并按约就诊,可得{rule.points}积分",
                       f"Booked ahead: attend and earn {rule.points} points")
    days = f"{need / 24:g}"
    return page.tr(f"提前{days}天预约并按约就诊可得{rule.points}积分(本次不够提前)",
                   f"Booking {days} days ahead and attending earns {rule.points} points (this one is too close)")


def _own(doc: dict[str, Any], page: Page, error: type[AppError]) -> None:
    """The record is the shown patient's (ownership lets a proxy reach both: show only the one shown)."""
    if doc.get("patient_id") != page.patient_id:
        raise error()


# --- browse: departments → clinicians → sessions --------------------------------------------------

@router.get("/me/book")
def departments(page: Read) -> Response:
    """The departments with sessions open for booking, the patient's institutions first."""
    now = _now()
    with reading() as session:
        docs = [d for d in service.list_sessions(session, now) if d["clinician"]]
        dept_ids = sorted({d["department"] for d in docs})
        inst_of, _ = service.institutions_of(session, dept_ids, [])
        mine = [str(i["institution_id"]) for i in patient_links.institutions_of(session, page.patient_id)]
        groups: dict[str, dict[str, Any]] = {}
        for dept_id in dept_ids:
            inst_id = inst_of.get(dept_id, "")
            if inst_id not in groups:
                inst = service.catalogue_entry(session, "institution", inst_id) if inst_id else None
                groups[inst_id] = {"id": inst_id, "name": _name(page, inst), "mine": inst_id in mine,
                                   "departments": []}
            dept = service.catalogue_entry(session, "department", dept_id)
            sessions = [d for d in docs if d["department"] == dept_id]
            groups[inst_id]["departments"].append({
                "id": dept_id, "name": _name(page, dept), "clinicians": len({d["clinician"] for d in sessions}),
                "free": sum(_free(d, now) for d in sessions)})
    ordered = sorted(groups.values(), key=lambda g: (not g["mine"], g["name"]))
    own = [g for g in ordered if g["mine"]] or ordered
    others = [g for g in ordered if g not in own]
    return page.render("patient/booking/departments.html", tab="book", groups=own, others=others,
                       **_done(page))


@router.get("/me/book/departments/{department_id}")
def department(page: Read, department_id: str) -> Response:
    """The department's clinicians with their next session that still has a free slot."""
    now = _now()
    with reading() as session:
        dept = _department(session, department_id)
        docs = [d for d in service.list_sessions(session, now, department=department_id) if d["clinician"]]
        clinicians: dict[str, dict[str, Any]] = {}
        for doc in docs:
            free = _free(doc, now)
            entry = clinicians.get(doc["clinician"])
            if entry is None:
                row = service.catalogue_entry(session, "clinician", doc["clinician"])
                entry = clinicians[doc["clinician"]] = {
                    "id": doc["clinician"], "name": doc["clinician_name"], "title": row["title"] if row else None,
                    "next": None, "free": 0, "sessions": 0}
            entry["sessions"] += 1
            entry["free"] += free
            if free and entry["next"] is None:
                entry["next"] = {"date": doc["date"], "day_text": _day_text(page, doc["date"], now),
                                 "time": f"{_hhmm(doc['start'])}–{_hhmm(doc['end'])}",
                                 "free": free, "fee": doc["fee_cny"]}
    return page.render("patient/booking/department.html", tab="book", back="/me/book", department=dept,
                       department_name=_name(page, dept), clinicians=list(clinicians.values()))


@router.get("/me/book/clinicians/{clinician_id}")
def clinician(page: Read, clinician_id: str) -> Response:
    """The clinician's open sessions by day (free places, level, fee, time); a full session
    offers the waitlist (候补). A QR code opens this page."""
    now = _now()
    with reading() as session:
        row = _clinician(session, clinician_id)
        dept = _department(session, row["department_id"])
        ids = [d["id"] for d in service.list_sessions(session, now, clinician=clinician_id)]
        info = _session_info(page, session, ids, now)
        booked = {a["session_id"]: a["id"] for a in privacy.appointments(session, page.patient_id)
                  if a["status"] in LIVE}
        waiting = {w["session_id"]: w["id"] for w in privacy.waitlist_entries(session, page.patient_id)
                   if w["status"] in service.WAITING}
    days: dict[str, list[dict[str, Any]]] = {}
    for doc in info.values():
        days.setdefault(doc["day_text"], []).append(doc)
    url = str(page.request.base_url).rstrip("/") + f"/me/book/clinicians/{row['id']}"
    return page.render("patient/booking/clinician.html", tab="book", back=f"/me/book/departments/{dept['id']}",
                       clinician=row, department_name=_name(page, dept), days=days, url=url,
                       booked=booked, waiting=waiting, waitlist_key=new_id())


# --- book --------------------------------------------------------------------------------------------

def _confirm_page(page: Page, session_id: str, status: int = 200, **values: Any) -> Response:
    now = _now()
    with reading() as session:
        doc = _session_info(page, session, [session_id], now)[session_id]
        earns = _book_ahead(session, page, doc, now)
    start = datetime.fromisoformat(doc["start"])
    cutoff = start - timedelta(hours=get_settings().cancel_cutoff_hours)
    values.setdefault("key", new_id())  # one key per confirm page: a double submit books once
    back = f"/me/book/clinicians/{doc['clinician']}" if doc["clinician"] else "/me/book"
    return page.render("patient/booking/confirm.html", status=status, tab="book", back=back, s=doc, earns=earns,
                       cutoff=cutoff.isoformat(), cutoff_words=_cutoff_words(page),
                       cutoff_hours=get_settings().cancel_cutoff_hours, **values)


@router.get("/me/book/sessions/{session_id}")
def confirm(page: Read, session_id: str) -> Response:
    """Confirm a booking: the session's time, fee, the cancellation cut-off in words and the
    points booking ahead earns (if the programme says)."""
    return _confirm_page(page, session_id)


@router.post("/me/book/sessions/{session_id}")
def book(page: Write, session_id: str, idempotency_key: Key) -> Response:
    """Book the next free online slot of the session (service.book, as POST /appointments):
    the same key again answers the same appointment; refusals re-render the confirm page."""
    assert page.principal is not None  # noqa: S101 - signed in (patient_page)
    try:
        # the API's limit too (scheduling.endpoints._limit_booking): attempts per patient a minute, 429
        limiter.check("book:" + page.patient_id, get_settings().rate_limit_booking_per_minute or None)
        data = AppointmentCreate(patient_id=page.patient_id, session_id=session_id, channel=CHANNEL,
                                 idempotency_key=idempotency_key,
                                 proxy_patient_id=page.principal.id if page.acting else None)
        with writing() as session:
            doc, _created = service.book(session, data, _now(), actor=page.principal.actor())
    except AppError as err:
        if err.status_code not in FORM_ERRORS or err.code == "scheduling.session_not_found":
            raise
        return _confirm_page(page, session_id, err.status_code, error=err.to_dict(), key=new_id())
    return page.redirect(f"/me/appointments/{doc['id']}?done=booked")


@router.post("/me/book/sessions/{session_id}/waitlist")
def join_waitlist(page: Write, session_id: str, idempotency_key: Key) -> Response:
    """候补: queue for a full session (waitlist.join, as POST /sessions/{id}/waitlist)."""
    try:
        data = WaitlistJoin(patient_id=page.patient_id, channel=CHANNEL, idempotency_key=idempotency_key)
        with writing() as session:
            doc, _created = waitlist.join(session, session_id, data, _now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS or err.code == "scheduling.session_not_found":
            raise
        return _confirm_page(page, session_id, err.status_code, error=err.to_dict(), key=new_id())
    return page.redirect(f"/me/waitlist/{doc['id']}?done=joined")


# --- my appointments ------------------------------------------------------------------------------

@router.get("/me/appointments")
def appointments(page: Mine) -> Response:
    """Upcoming appointments (soonest first) and past ones (latest first)."""
    now = _now()
    with reading() as session:
        docs = privacy.appointments(session, page.patient_id)
        info = _session_info(page, session, [d["session_id"] for d in docs], now)
    for d in docs:
        d["session"] = info[d["session_id"]]
        d["status_text"] = page.tr(*APPOINTMENT_STATUS.get(d["status"], (d["status"], d["status"])))
        d["day_text"] = _day_text(page, d["start"], now)
    upcoming = [d for d in docs if _ahead(d, now)]
    past = [d for d in reversed(docs) if d not in upcoming][: 10 if page.elderly else 30]
    return page.render("patient/booking/appointments.html", tab="book", back="/me/book", upcoming=upcoming,
                       past=past, **_done(page))


def _appointment_page(page: Page, appointment_id: str, status: int = 200, **values: Any) -> Response:
    now = _now()
    with reading() as session:
        doc = service.read_appointment(session, appointment_id)
        _own(doc, page, AppointmentNotFoundError)
        info = _session_info(page, session, [doc["session_id"]], now)[doc["session_id"]]
    hours = get_settings().cancel_cutoff_hours
    start = datetime.fromisoformat(doc["start"])
    cutoff = start - timedelta(hours=hours)
    doc["status_text"] = page.tr(*APPOINTMENT_STATUS.get(doc["status"], (doc["status"], doc["status"])))
    doc["day_text"] = _day_text(page, doc["start"], now)
    values = {**_done(page), **values}
    return page.render("patient/booking/appointment.html", status=status, tab="book", back="/me/appointments",
                       a=doc, s=info, can_cancel=doc["status"] == "booked" and now <= cutoff,
                       too_late=doc["status"] == "booked" and now > cutoff, cutoff=cutoff.isoformat(),
                       cutoff_words=_cutoff_words(page), **values)


@router.get("/me/appointments/{appointment_id}")
def appointment(page: Mine, appointment_id: str) -> Response:
    """One appointment: its number, time, status, and cancel (before the cut-off) or the
    cut-off explained."""
    return _appointment_page(page, appointment_id)


@router.post("/me/appointments/{appointment_id}/cancel")
def cancel(page: Write, appointment_id: str) -> Response:
    """Cancel by the patient (service.cancel, as POST /appointments/{id}/cancel): refused after
    the cut-off (409 scheduling.cancel_too_late), shown on the appointment's page."""
    with reading() as session:
        _own(service.read_appointment(session, appointment_id), page, AppointmentNotFoundError)
    try:
        with writing() as session:
            service.cancel(session, appointment_id, CancelIn(by="patient"), _now())
    except AppError as err:
        if err.status_code != 409:
            raise
        return _appointment_page(page, appointment_id, err.status_code, error=err.to_dict(), flash=None)
    return page.redirect(f"/me/appointments/{appointment_id}?done=cancelled")


# --- waitlist --------------------------------------------------------------------------------------

@router.get("/me/waitlist")
def waitlist_entries(page: Mine) -> Response:
    """The patient's waitlist entries, live ones first."""
    now = _now()
    with reading() as session:
        rows = privacy.waitlist_entries(session, page.patient_id)
        info = _session_info(page, session, [r["session_id"] for r in rows], now)
    entries = [{**r, "session": info[r["session_id"]], "live": r["status"] in service.WAITING,
                "status_text": page.tr(*WAITLIST_STATUS.get(r["status"], (r["status"], r["status"])))}
               for r in reversed(rows)]
    entries.sort(key=lambda e: not e["live"])
    return page.render("patient/booking/waitlist.html", tab="book", back="/me/appointments",
                       entries=entries[: 10 if page.elderly else 30])


def _entry_page(page: Page, entry_id: str, status: int = 200, **values: Any) -> Response:
    now = _now()
    with reading() as session:
        doc = waitlist.read(session, entry_id)
        _own(doc, page, WaitlistEntryNotFoundError)
        info = _session_info(page, session, [doc["session_id"]], now)[doc["session_id"]]
    doc["status_text"] = page.tr(*WAITLIST_STATUS.get(doc["status"], (doc["status"], doc["status"])))
    values = {**_done(page), **values}
    return page.render("patient/booking/entry.html", status=status, tab="book", back="/me/waitlist", w=doc,
                       s=info, **values)


@router.get("/me/waitlist/{entry_id}")
def entry(page: Mine, entry_id: str) -> Response:
    """A waitlist entry: place in line, or the offered slot to confirm or decline before its deadline."""
    return _entry_page(page, entry_id)


def _decide(page: Page, entry_id: str, confirm_it: bool) -> Response:
    with reading() as session:
        _own(waitlist.read(session, entry_id), page, WaitlistEntryNotFoundError)
    try:
        with writing() as session:
            doc = (waitlist.confirm if confirm_it else waitlist.decline)(session, entry_id, _now())
    except AppError as err:
        if err.status_code != 409:
            raise
        return _entry_page(page, entry_id, err.status_code, error=err.to_dict(), flash=None)
    if confirm_it and doc.get("appointment_id"):
        return page.redirect(f"/me/appointments/{doc['appointment_id']}?done=confirmed")
    return page.redirect(f"/me/waitlist/{entry_id}?done={'confirmed' if confirm_it else 'declined'}")


@router.post("/me/waitlist/{entry_id}/confirm")
def confirm_offer(page: Write, entry_id: str) -> Response:
    """Take the slot offered (waitlist.confirm, as POST /waitlist/{id}/confirm)."""
    return _decide(page, entry_id, True)


@router.post("/me/waitlist/{entry_id}/decline")
def decline_offer(page: Write, entry_id: str) -> Response:
    """Leave the waitlist or turn the offer down (waitlist.decline, as POST /waitlist/{id}/decline)."""
    return _decide(page, entry_id, False)
