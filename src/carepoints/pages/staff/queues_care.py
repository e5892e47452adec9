"""The care team's and moderators' queues: care alerts (/staff/care-alerts), the follow-up
queue with a phone follow-up recorded by a nurse (/staff/followups) and community moderation
(/staff/moderation). The same services and permissions as the API (engagement.care.endpoints,
engagement.followups.endpoints, engagement.community.endpoints)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import Response
from starlette.datastructures import FormData

from carepoints.engagement.care import service as care
from carepoints.engagement.care.schemas import AlertResolution
from carepoints.engagement.community import posts
from carepoints.engagement.community.schemas import PostStatus, Reject, RejectReason
from carepoints.engagement.followups import responses
from carepoints.engagement.followups import service as followups
from carepoints.engagement.followups.schemas import Channel, ResponseCreate, StepState
from carepoints.kit.errors import AppError
from carepoints.kit.time import utc_now
from carepoints.pages.staff.queues_common import FORM_ERRORS, context, form_data, names
from carepoints.pages.web import Page, form_errors, invalid, questionnaire_answers, reading, staff_page, writing

router = APIRouter(include_in_schema=False)

_Before = Query(None, max_length=36)
AlertView = Literal["active", "resolved"]
QueueState = Literal["due", "overdue", "upcoming"]
ModerationStatus = Literal["pending", "approved", "rejected"]
RESOLUTIONS = [r.value for r in AlertResolution]
REJECT_REASONS = [r.value for r in RejectReason]


# --- care alerts ---------------------------------------------------------------------------

@router.get("/staff/care-alerts")
def care_alerts(page: Annotated[Page, Depends(staff_page("care:read"))], view: AlertView = "active",
                before: str | None = _Before) -> Response:
    """Open and acknowledged alerts, critical first (or the resolved ones)."""
    status = ["open", "acknowledged"] if view == "active" else ["resolved"]
    with reading() as session:
        found = care.queue(session, status=status, limit=30, before=before)
        who = names(session, [a["patient_id"] for a in found["items"]])
    return page.render("staff/queues/care_alerts.html", **context(
        page, items=found["items"], next=found["next"], view=view, names=who, resolutions=RESOLUTIONS))


def _alert_row(page: Page, doc: dict[str, Any], code: str) -> Response:
    if not page.htmx:
        return page.redirect(f"/staff/care-alerts?done={code}")
    with reading() as session:
        who = names(session, [doc["patient_id"]])
    return page.render("staff/queues/_alert_row.html", **context(page, a=doc, names=who, resolutions=RESOLUTIONS))


@router.post("/staff/care-alerts/{alert_id}/acknowledge")
def acknowledge_alert(page: Annotated[Page, Depends(staff_page("care:write"))], alert_id: str) -> Response:
    """Seen and being handled (an unassigned alert is taken by whoever acknowledges it)."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    with writing() as session:
        doc = care.acknowledge(session, alert_id, page.principal.actor(), utc_now())
    return _alert_row(page, doc, "acknowledged")


@router.post("/staff/care-alerts/{alert_id}/resolve")
def resolve_alert(page: Annotated[Page, Depends(staff_page("care:write"))], alert_id: str,
                  resolution: Annotated[str, Form(max_length=32)]) -> Response:
    """Close the alert with a resolution code."""
    assert page.principal is not None  # noqa: S101
    if resolution not in RESOLUTIONS:
        raise invalid("resolution", "请选择处理结果 / Choose a resolution")
    with writing() as session:
        doc = care.resolve(session, alert_id, AlertResolution(resolution), page.principal.actor(), utc_now())
    return _alert_row(page, doc, "resolved")


# --- follow-ups ----------------------------------------------------------------------------

@router.get("/staff/followups")
def followup_queue(page: Annotated[Page, Depends(staff_page("followups:read"))], state: QueueState = "due",
                   offset: int = Query(0, ge=0, le=100_000)) -> Response:
    """Abnormal answers waiting for the team first, then the steps due / overdue / upcoming."""
    now = utc_now()
    with reading() as session:
        found = followups.queue(session, state=StepState(state), day=followups.today(now), limit=30, offset=offset)
        abnormal = care.queue(session, status=["open", "acknowledged"], kind="abnormal_answer", limit=20)["items"] \
            if page.principal is not None and page.principal.can("care:read") else []
        who = names(session, [s["patient_id"] for s in found["items"]] + [a["patient_id"] for a in abnormal])
    return page.render("staff/queues/followups.html", **context(
        page, items=found["items"], next_offset=found["next_offset"], state=state, abnormal=abnormal, names=who,
        day=found["date"]))


def _step_page(page: Page, step_id: str, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        view = followups.step_view(session, step_id, utc_now())
        who = names(session, [view["step"]["patient_id"]])
    return page.render("staff/queues/followup.html", status=status, **context(page, **view, names=who, **values))


@router.get("/staff/followups/{step_id}")
def followup_step(page: Annotated[Page, Depends(staff_page("followups:write"))], step_id: str) -> Response:
    """Record a phone follow-up: the questionnaire's questions as a form."""
    return _step_page(page, step_id, answers={})


@router.post("/staff/followups/{step_id}")
def record_followup(page: Annotated[Page, Depends(staff_page("followups:write"))], step_id: str,
                    form: Annotated[FormData, Depends(form_data)]) -> Response:
    """The nurse's phone follow-up: the answers checked against the questionnaire; abnormal
    ones alert the care team (and the page says so)."""
    assert page.principal is not None  # noqa: S101
    with reading() as session:
        questions = followups.step_view(session, step_id, utc_now())["questionnaire"]["questions"]
    raw = {str(q["id"]): form.getlist(f"q_{q['id']}") for q in questions}
    try:
        answers = questionnaire_answers(questions, form)
        with writing() as session:
            doc, _created = responses.answer_step(session, step_id, ResponseCreate(
                answers=answers, channel=Channel.phone), page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _step_page(page, step_id, err.status_code, answers=raw, error=err.to_dict(),
                          errors=form_errors(err, page.lang))
    return page.redirect("/staff/followups?done=" + ("recorded_abnormal" if doc["care_team_notified"] else "recorded"))


# --- moderation ----------------------------------------------------------------------------

@router.get("/staff/moderation")
def moderation(page: Annotated[Page, Depends(staff_page("moderation:write"))], status: ModerationStatus = "pending",
               before: str | None = _Before) -> Response:
    """Posts waiting for approval, oldest first (approval is what makes them earn)."""
    with reading() as session:
        found = posts.queue(session, status=PostStatus(status), limit=20, before=before)
        who = names(session, [p["patient_id"] for p in found["items"]])
    return page.render("staff/queues/moderation.html", **context(
        page, items=found["items"], next=found["next"], shown=status, names=who, reasons=REJECT_REASONS))


def _post_card(page: Page, doc: dict[str, Any], code: str) -> Response:
    if not page.htmx:
        return page.redirect(f"/staff/moderation?done={code}")
    with reading() as session:
        who = names(session, [doc["patient_id"]])
    return page.render("staff/queues/_post.html", **context(page, p=doc, names=who, reasons=REJECT_REASONS))


@router.post("/staff/moderation/{post_id}/approve")
def approve_post(page: Annotated[Page, Depends(staff_page("moderation:write"))], post_id: str) -> Response:
    """Approve: the post goes public and its author earns the community reward."""
    assert page.principal is not None  # noqa: S101
    with writing() as session:
        doc = posts.approve(session, post_id, page.principal.actor(), utc_now())
    awards = (doc.get("outcome") or {}).get("awards") or []
    doc["awarded"] = sum(int(a.get("points") or 0) for a in awards)
    return _post_card(page, doc, "post_approved")


@router.post("/staff/moderation/{post_id}/reject")
def reject_post(page: Annotated[Page, Depends(staff_page("moderation:write"))], post_id: str,
                reason_code: Annotated[str, Form(max_length=32)],
                note: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Reject with a reason code (and a note to the author); the author is told."""
    assert page.principal is not None  # noqa: S101
    if reason_code not in REJECT_REASONS:
        raise invalid("reason_code", "请选择驳回原因 / Choose a reason")
    with writing() as session:
        doc = posts.reject(session, post_id, Reject(reason_code=RejectReason(reason_code), note=note.strip() or None),
                           page.principal.actor(), utc_now())
    return _post_card(page, doc, "post_rejected")
