"""住院与手术 for the patient: my admissions, surgeries and pre-visit exams (/me/admissions: dates,
arrival time, the ward's pre-admission instructions, the online change deadline, same-day discharge
for a day surgery, the exam time, when its result is expected and the follow-up after it) and one
admission order (/me/admissions/{order_id}: choose or move the date among the days with beds left,
cancel). The same services and permissions as the API (appointments:read / appointments:write for
the patient shown; a proxy with view reads, with book also chooses); an order of anyone else is 404
(carepoints.ownership). The patient's cut-off and reschedule limit are the service's."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from carepoints.kit.errors import AppError
from carepoints.kit.time import utc_now
from carepoints.pages.web import Page, invalid, patient_page, reading, writing
from carepoints.services.admissions import previsit, service, surgery

router = APIRouter(include_in_schema=False)

View = Annotated[Page, Depends(patient_page("appointments:read"))]
Change = Annotated[Page, Depends(patient_page("appointments:write"))]

WEEKDAYS = {1: ("周一", "Mon"), 2: ("周二", "Tue"), 3: ("周三", "Wed"), 4: ("周四", "Thu"), 5: ("周五", "Fri"),
            6: ("周六", "Sat"), 7: ("周日", "Sun")}
ORDER_STATUS = {"issued": ("待选择入院日期", "Choose your date"), "booked": ("已预约", "Booked"),
                "admitted": ("已入院", "Admitted"), "cancelled": ("已取消", "Cancelled"),
                "expired": ("已过期", "Expired")}
SURGERY_STATUS = {"requested": ("待安排", "Waiting for a date"), "scheduled": ("已安排", "Scheduled"),
                  "done": ("已完成", "Done"), "cancelled": ("已取消", "Cancelled")}
KINDS = {"elective": ("择期手术", "Elective surgery"), "day": ("日间手术", "Day surgery")}
FORM_ERRORS = (404, 409, 422)
DAYS_SHOWN = 14  # the first two weeks with a bed; the rest one tap away (fewer items for elderly mode)


def weekday(page: Page, day: str) -> str:
    return page.tr(*WEEKDAYS[date.fromisoformat(day).isoweekday()])


def labels(page: Page) -> dict[str, Any]:
    """The words the admissions templates use for codes."""
    return {"order_status": lambda s: page.tr(*ORDER_STATUS.get(s, (s, s))),
            "surgery_status": lambda s: page.tr(*SURGERY_STATUS.get(s, (s, s))),
            "kind_name": lambda k: page.tr(*KINDS.get(k, (k, k))), "weekday": lambda d: weekday(page, d)}


def _overview(page: Page) -> dict[str, Any]:
    now = utc_now()
    with reading() as session:
        orders = service.patient_orders(session, page.patient_id, now)
        return {"orders": orders, "surgeries": surgery.of_patient(session, page.patient_id),
                "previsits": previsit.of_patient(session, page.patient_id)}


@router.get("/me/admissions")
def overview(page: View) -> Response:
    """My admissions, surgeries and pre-visit exams, newest first."""
    return page.render("patient/admissions/index.html", tab="me", back="/me", **_overview(page), **labels(page))


def _order_page(page: Page, order_id: str, status: int = 200, **values: Any) -> Response:
    assert page.principal is not None  # noqa: S101 - signed in (patient_page)
    with reading() as session:
        doc = service.available_dates(session, order_id, page.principal.actor(), utc_now())
    order = doc["order"]
    days = [d for d in doc["days"] if d["bookable"] or d["current"]]
    shown = days if page.request.query_params.get("all") else days[:DAYS_SHOWN]
    return page.render("patient/admissions/order.html", status=status, tab="me", back="/me/admissions", o=order,
                       days=shown, more=len(days) > len(shown), **labels(page), **values)


@router.get("/me/admissions/{order_id}")
def order_detail(page: View, order_id: str) -> Response:
    """One admission order: its date and instructions, or the days to choose from."""
    done = page.request.query_params.get("done")
    message = {"booked": page.tr("入院日期已预约,请按入院须知准备。", "Your admission date is booked: please read the "
                                 "instructions."),
               "cancelled": page.tr("住院预约已取消。", "Your admission booking is cancelled.")}.get(done or "")
    return _order_page(page, order_id, flash=bool(message), kind="ok", message=message)


@router.post("/me/admissions/{order_id}/date")
def choose_date(page: Change, order_id: str, day: Annotated[str, Form(alias="date", max_length=10)] = "") -> Response:
    """Book the admission on the chosen day (or move it there)."""
    assert page.principal is not None  # noqa: S101 - signed in (patient_page)
    try:
        try:
            chosen = date.fromisoformat(day)
        except ValueError:
            raise invalid("date", "请选择入院日期 / Choose a date") from None
        with writing() as session:
            service.book_date(session, order_id, chosen, page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS or err.code == "admissions.order_not_found":
            raise
        return _order_page(page, order_id, err.status_code, error=err.to_dict())
    return page.redirect(f"/me/admissions/{order_id}?done=booked")


@router.post("/me/admissions/{order_id}/cancel")
def cancel(page: Change, order_id: str) -> Response:
    """Cancel the admission booking (until the cut-off)."""
    assert page.principal is not None  # noqa: S101 - signed in (patient_page)
    try:
        with writing() as session:
            service.cancel_order(session, order_id, page.principal.actor(), utc_now(), "patient_request")
    except AppError as err:
        if err.status_code != 409:
            raise
        return _order_page(page, order_id, err.status_code, error=err.to_dict())
    return page.redirect(f"/me/admissions/{order_id}?done=cancelled")
