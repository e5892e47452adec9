"""The console's points queues: manual adjustments with maker-checker (/staff/adjustments)
and appeals of penalties (/staff/appeals). The same services and permissions as the API
(operations.adjustment_endpoints, operations.appeal_endpoints)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import Response

from carepoints.enrolment import service as enrolment
from carepoints.events import service as events
from carepoints.events.schemas import PatientRef
from carepoints.kit.errors import AppError
from carepoints.kit.ids import is_id
from carepoints.kit.time import utc_now
from carepoints.operations import adjustments, appeals
from carepoints.pages.staff.queues_common import FORM_ERRORS, context, names
from carepoints.pages.web import Page, form_errors, invalid, reading, staff_page, writing
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.rules import service as rules

router = APIRouter(include_in_schema=False)

ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_Before = Query(None, pattern=ID)
History = Literal["posted", "rejected", "expired"]
AppealStatus = Literal["open", "upheld", "reversed"]
_PHONE = re.compile(r"^1\d{10}$")


# --- adjustments ---------------------------------------------------------------------------

def _adjustments_page(page: Page, status: int = 200, *, history: str = "posted", before: str | None = None,
                      **values: Any) -> Response:
    with reading() as session:
        pending = adjustments.queue(session, status="pending", limit=100)
        decided = adjustments.queue(session, status=history, limit=20, before=before)
        shown = pending["items"] + decided["items"]
        who = names(session, [a["patient_id"] for a in shown])
        conf = rules.current_settings(session, utc_now()).settings.adjustments
    reasons = {code: page.tr(n.zh, n.en) for code, n in conf.reason_codes.items()}
    values.setdefault("form", {})
    return page.render("staff/queues/adjustments.html", status=status, **context(
        page, pending=pending["items"], decided=decided["items"], next=decided["next"], history=history,
        names=who, reasons=reasons, reason_options=list(reasons.items()), threshold=conf.approval_threshold,
        **values))


@router.get("/staff/adjustments")
def adjustments_queue(page: Annotated[Page, Depends(staff_page("adjustments:read"))], history: History = "posted",
                      before: str | None = _Before) -> Response:
    """The pending adjustments (approve / reject), the form to propose one, the decided history."""
    return _adjustments_page(page, history=history, before=before)


def _patient_of(raw: str) -> str:
    """A patient id, or a phone number that names exactly one patient."""
    value = raw.strip().replace(" ", "")
    if is_id(value):
        return value
    if _PHONE.match(value):
        with reading() as session:
            found = patients.find(session, phone=value)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise invalid("patient", "该手机号下有多位患者,请填写患者编号 / Several patients share this phone: "
                                     "enter the patient id")
    raise PatientNotFoundError()


def _points(raw: str) -> int:
    try:
        value = int(raw.strip().replace("+", ""))
    except ValueError:
        raise invalid("points", "请填写整数 / Enter a whole number") from None
    if value == 0 or abs(value) > adjustments.MAX_POINTS:
        raise invalid("points", f"不能为 0,且不超过 ±{adjustments.MAX_POINTS} / "
                                f"Non-zero, at most ±{adjustments.MAX_POINTS}")
    return value


@router.post("/staff/adjustments")
def propose_adjustment(page: Annotated[Page, Depends(staff_page("adjustments:write"))],
                       patient: Annotated[str, Form(max_length=64)], points: Annotated[str, Form(max_length=12)],
                       reason_code: Annotated[str, Form(max_length=64)],
                       note: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Propose a manual adjustment: within the threshold it posts at once, above it it waits
    for a second staff member."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    form = {"patient": patient, "points": points, "reason_code": reason_code, "note": note}
    try:
        if not note.strip():
            raise invalid("note", "请填写备注 / A note is required")
        value = _points(points)
        pid = _patient_of(patient)
        with writing() as session:
            doc, _created = adjustments.create(session, page.principal.actor(), utc_now(), ref=PatientRef(id=pid),
                                               points=value, reason_code=reason_code, note=note.strip())
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _adjustments_page(page, err.status_code, form=form, error=err.to_dict(),
                                 errors=form_errors(err, page.lang))
    return page.redirect("/staff/adjustments?done=" + ("proposed" if doc["status"] == "pending" else "posted"))


def _decided_row(page: Page, doc: dict[str, Any], code: str) -> Response:
    if not page.htmx:
        return page.redirect(f"/staff/adjustments?done={code}")
    with reading() as session:
        who = names(session, [doc["patient_id"]])
        conf = rules.current_settings(session, utc_now()).settings.adjustments
    reasons = {c: page.tr(n.zh, n.en) for c, n in conf.reason_codes.items()}
    return page.render("staff/queues/_adjustment_row.html", **context(page, a=doc, names=who, reasons=reasons))


@router.post("/staff/adjustments/{adjustment_id}/approve")
def approve_adjustment(page: Annotated[Page, Depends(staff_page("adjustments:approve"))], adjustment_id: str,
                       note: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Approve a pending adjustment (never one's own: the service refuses) and post it."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    with writing() as session:
        doc = adjustments.approve(session, adjustment_id, page.principal.actor(), utc_now(),
                                  note=note.strip() or None)
    return _decided_row(page, doc, "approved")


@router.post("/staff/adjustments/{adjustment_id}/reject")
def reject_adjustment(page: Annotated[Page, Depends(staff_page("adjustments:approve"))], adjustment_id: str,
                      note: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Reject a pending adjustment with a note: nothing is posted."""
    assert page.principal is not None  # noqa: S101
    if not note.strip():
        raise invalid("note", "驳回时请填写原因 / A note is required to reject")
    with writing() as session:
        doc = adjustments.reject(session, adjustment_id, page.principal.actor(), utc_now(), note=note.strip())
    return _decided_row(page, doc, "rejected")


# --- appeals -------------------------------------------------------------------------------

@router.get("/staff/appeals")
def appeals_queue(page: Annotated[Page, Depends(staff_page("appeals:read"))], status: AppealStatus = "open",
                  before: str | None = _Before) -> Response:
    """The appeals queue, newest first, by state."""
    with reading() as session:
        found = appeals.queue(session, status=status, limit=30, before=before)
        who = names(session, [a["patient_id"] for a in found["items"]])
    return page.render("staff/queues/appeals.html", **context(
        page, items=found["items"], next=found["next"], shown=status, names=who))


def _appeal_context(page: Page, appeal_id: str) -> dict[str, Any]:
    with reading() as session:
        doc = appeals.appeal(session, appeal_id)
        pid = doc["patient_id"]
        who = names(session, [pid])
        event = events.attributes_of(session, [doc["event_id"]]).get(doc["event_id"]) if doc["event_id"] else None
        history = cast("list[dict[str, Any]]", enrolment.entries(session, pid, limit=10, cursor=None)["items"])
        summary = enrolment.points(session, pid, utc_now())
    penalty = [h for h in history if h["event_id"] == doc["event_id"]]
    return {"a": doc, "names": who, "event": event, "history": history, "summary": summary,
            "penalty_points": sum(int(h["points"]) for h in penalty if int(h["points"]) < 0) if penalty else None}


@router.get("/staff/appeals/{appeal_id}")
def appeal_detail(page: Annotated[Page, Depends(staff_page("appeals:read"))], appeal_id: str) -> Response:
    """One appeal: the penalty it appeals, the patient's recent history, the decision."""
    return page.render("staff/queues/appeal.html", **context(page, **_appeal_context(page, appeal_id)))


@router.post("/staff/appeals/{appeal_id}/decide")
def decide_appeal(page: Annotated[Page, Depends(staff_page("appeals:decide"))], appeal_id: str,
                  outcome: Annotated[str, Form(max_length=16)],
                  note: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Uphold (nothing changes) or reverse (the penalty's event is revoked, points back)."""
    assert page.principal is not None  # noqa: S101
    try:
        if outcome not in appeals.OUTCOMES:
            raise invalid("outcome", "请选择维持或撤销 / Choose uphold or reverse")
        if not note.strip():
            raise invalid("note", "请填写处理说明 / A note is required")
        with writing() as session:
            appeals.decide(session, appeal_id, outcome, page.principal.actor(), utc_now(), note=note.strip())
    except AppError as err:
        if err.status_code not in (400, 409, 422):
            raise
        ctx = _appeal_context(page, appeal_id)
        template = "staff/queues/_appeal_decision.html" if page.htmx else "staff/queues/appeal.html"
        return page.render(template, status=err.status_code, **context(
            page, **ctx, error=err.to_dict(), errors=form_errors(err, page.lang), note=note))
    if page.htmx:
        return page.render("staff/queues/_appeal_decision.html", **context(
            page, **_appeal_context(page, appeal_id), oob=True))  # the history and balance refreshed too
    return page.redirect(f"/staff/appeals/{appeal_id}?done={outcome}")
