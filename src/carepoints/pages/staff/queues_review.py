"""The console's review queues for records and abuse: duplicate records with their merge
(/staff/duplicates) and fraud signals (/staff/fraud). The same services and permissions as
the API (enrolment.identity_endpoints, enrolment.merge_endpoints, operations.fraud_endpoints)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import Response

from carepoints.enrolment import identity, merge
from carepoints.kit.errors import AppError
from carepoints.kit.time import utc_now
from carepoints.operations import fraud
from carepoints.pages.staff.queues_common import FORM_ERRORS, context, names
from carepoints.pages.web import Page, form_errors, invalid, reading, staff_page, writing

router = APIRouter(include_in_schema=False)

_Before = Query(None, max_length=36)
DuplicateStatus = Literal["open", "dismissed", "merged"]
FraudStatus = Literal["open", "dismissed", "actioned"]
FraudKind = Literal["velocity", "repeated_reading", "implausible_reading", "staff_outlier", "shared_phone",
                    "shared_device"]
MERGE_REASONS = ("duplicate_registration", "verified_same_person", "recorded_in_error")
REVIEW_ACTIONS = ("dismiss", "freeze", "revoke_events", "freeze_and_revoke")


# --- duplicates ----------------------------------------------------------------------------

@router.get("/staff/duplicates")
def duplicates(page: Annotated[Page, Depends(staff_page("identity:review"))], status: DuplicateStatus = "open",
               before: str | None = _Before) -> Response:
    """Possible duplicates side by side (masked), why they match; dismiss or merge."""
    with reading() as session:
        found = identity.duplicates(session, status=status, limit=20, before=before)
    return page.render("staff/queues/duplicates.html", **context(
        page, items=found["items"], next=found["next"], shown=status))


@router.post("/staff/duplicates/{candidate_id}/dismiss")
def dismiss_duplicate(page: Annotated[Page, Depends(staff_page("identity:review"))], candidate_id: str,
                      note: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Two different people: the candidate leaves the open list."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    with writing() as session:
        identity.dismiss(session, candidate_id, page.principal.actor(), utc_now(), note=note.strip() or None)
    if not page.htmx:
        return page.redirect("/staff/duplicates?done=dismissed")
    with reading() as session:
        doc = identity.candidate(session, candidate_id)
    return page.render("staff/queues/_duplicate.html", **context(page, c=doc))


def _pair(page: Page, candidate_id: str, survivor: str) -> dict[str, Any]:
    with reading() as session:
        doc = identity.candidate(session, candidate_id)
    ids = doc["patient_ids"]
    if survivor not in ids:
        raise invalid("survivor_id", "请选择这两份档案之一作为保留档案 / Choose one of the two records to keep")
    keep = next(p for p in doc["patients"] if p["id"] == survivor)
    drop = next(p for p in doc["patients"] if p["id"] != survivor)
    return {"c": doc, "keep": keep, "drop": drop, "merge_reasons": MERGE_REASONS}


@router.get("/staff/duplicates/{candidate_id}/merge")
def merge_confirm(page: Annotated[Page, Depends(staff_page("patients:merge"))], candidate_id: str,
                  survivor: Annotated[str, Query(max_length=36)]) -> Response:
    """The confirmation step: which record stays, which one is merged into it."""
    return page.render("staff/queues/merge.html", **context(page, **_pair(page, candidate_id, survivor)))


@router.post("/staff/duplicates/{candidate_id}/merge")
def merge_records(page: Annotated[Page, Depends(staff_page("patients:merge"))], candidate_id: str,
                  survivor_id: Annotated[str, Form(max_length=36)],
                  reason_code: Annotated[str, Form(max_length=64)] = "duplicate_registration",
                  note: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Merge the other record of the pair into the chosen survivor (enrolment.merge)."""
    assert page.principal is not None  # noqa: S101
    ctx = _pair(page, candidate_id, survivor_id)
    try:
        if reason_code not in MERGE_REASONS:
            raise invalid("reason_code", "请选择合并原因 / Choose a reason")
        with writing() as session:
            merge.merge(session, survivor_id, ctx["drop"]["id"], page.principal.actor(), utc_now(),
                        reason_code=reason_code, note=note.strip() or None)
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return page.render("staff/queues/merge.html", status=err.status_code, **context(
            page, **ctx, error=err.to_dict(), errors=form_errors(err, page.lang), note=note))
    return page.redirect("/staff/duplicates?status=merged&done=merged")


# --- fraud signals -------------------------------------------------------------------------

@router.get("/staff/fraud")
def fraud_queue(page: Annotated[Page, Depends(staff_page("fraud:read"))], status: FraudStatus = "open",
                kind: FraudKind | None = None, before: str | None = _Before) -> Response:
    """The fraud review queue (admins review, auditors read)."""
    with reading() as session:
        found = fraud.signals(session, status=status, kind=kind, limit=30, before=before)
        who = names(session, [s["patient_id"] for s in found["items"]])
    return page.render("staff/queues/fraud.html", **context(
        page, items=found["items"], next=found["next"], shown=status, kind_filter=kind, names=who,
        kinds=list(get_args(FraudKind)), actions=REVIEW_ACTIONS))


@router.post("/staff/fraud/{signal_id}/review")
def review_signal(page: Annotated[Page, Depends(staff_page("fraud:review"))], signal_id: str,
                  action: Annotated[str, Form(max_length=32)],
                  note: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Dismiss the signal, freeze its patients' earning, revoke its events, or both."""
    assert page.principal is not None  # noqa: S101
    if action not in REVIEW_ACTIONS:
        raise invalid("action", "请选择处理方式 / Choose an action")
    with writing() as session:
        doc = fraud.review(session, signal_id, action, page.principal.actor(), utc_now(), note=note.strip() or None)
    if not page.htmx:
        return page.redirect("/staff/fraud?done=reviewed")
    with reading() as session:
        who = names(session, [doc["patient_id"]])
    return page.render("staff/queues/_signal_row.html", **context(page, s=doc, names=who, actions=REVIEW_ACTIONS))
