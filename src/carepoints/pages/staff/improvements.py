"""满意度改进事项 in the staff console (/staff/improvements, improvements:read: front desk, nurses,
clinicians, admins, auditors): the queue of items from low surveys, negative reviews and complaints
by department (filters: state, department, kind, mine), one item (/staff/improvements/{item_id}:
what the patient said, masked name, the notes; the read audited like the API's) with the forms to
assign it, record what was done and close it with the resolution (improvements:write). Staff take a
patient's complaint at /staff/patients/{patient_id}/complaints/new (complaints:write; a staff user
bound to institutions reaches only their patients: the page rule checks the path's patient). Every
change goes through services.satisfaction like the API and is audited there."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response
from pydantic import ValidationError

from carepoints.kit.errors import AppError, ValidationFailedError
from carepoints.kit.time import utc_now
from carepoints.pages.patient.complaints import body_of
from carepoints.pages.web import Page, form_errors, reading, staff_page, writing
from carepoints.services.satisfaction import service
from carepoints.services.satisfaction.schemas import CATEGORY_NAMES, AssignIn, CloseIn, ComplaintIn, NoteIn

router = APIRouter(include_in_schema=False)

Read = Annotated[Page, Depends(staff_page("improvements:read"))]
Write = Annotated[Page, Depends(staff_page("improvements:write"))]
File = Annotated[Page, Depends(staff_page("complaints:write"))]

KINDS = {"survey": ("满意度调查", "Survey"), "review": ("就诊评价", "Review"), "complaint": ("投诉", "Complaint")}
STATES = {"open": ("待处理", "Open"), "assigned": ("处理中", "Assigned"), "closed": ("已关闭", "Closed")}
REASONS = {"rating": ("评分低", "Low rating"), "overall": ("总体不满意", "Overall"), "waiting": ("候诊时间", "Waiting"),
           "staff": ("服务态度", "Staff"), "recommend": ("不愿推荐", "Would not recommend"), **CATEGORY_NAMES}
DONE = {"assigned": ("已分配", "Assigned"), "noted": ("已记录处理措施", "Action recorded"),
        "closed": ("已关闭并记录处理结果", "Closed with its resolution"),
        "filed": ("投诉已登记,已进入改进事项", "Complaint recorded: it is on the improvement queue")}
FORM_ERRORS = (404, 409, 422)


def _principal(page: Page) -> Any:
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    return page.principal


def words(page: Page) -> dict[str, Any]:
    """Names of kinds, states and reasons in the page's language (the templates' lookups)."""
    return {"kind_name": lambda k: page.tr(*KINDS.get(k, (k, k))),
            "state_name": lambda s: page.tr(*STATES.get(s, (s, s))),
            "reason_name": lambda r: page.tr(*REASONS.get(r, (r, r)))}


def _flash(page: Page) -> dict[str, Any]:
    done = DONE.get(page.request.query_params.get("done") or "")
    text = page.tr(*done) if done else None
    return {"flash": text, "message": text, "kind": "ok"}


@router.get("/staff/improvements")
def queue(page: Read) -> Response:
    """The items, newest first, by state, department, kind and mine."""
    q = page.request.query_params
    state = q.get("status") if q.get("status") in ("open", "assigned", "closed", "all") else "open"
    kind = q.get("kind") if q.get("kind") in KINDS else None
    department_id = (q.get("department_id") or "")[:36] or None
    mine = q.get("mine") == "1"
    before = (q.get("before") or "")[:36] or None
    with reading() as session:
        doc = service.items(session, status=None if state == "all" else state, department_id=department_id,
                            kind=kind, assignee_id=_principal(page).id if mine else None, before=before, limit=30)
        departments = service.departments(session)
    keep = {k: v for k, v in (("status", state), ("kind", kind or ""), ("department_id", department_id or ""),
                              ("mine", "1" if mine else "")) if v}
    more = f"/staff/improvements?{urlencode({**keep, 'before': doc['next']})}" if doc["next"] else None
    return page.render("staff/improvements/index.html", items=doc["items"], more=more, state=state, kind_filter=kind,
                       department_id=department_id, mine=mine, departments=departments, kinds=KINDS, states=STATES,
                       can_see_dashboard=_principal(page).can("satisfaction:read"), **words(page), **_flash(page))


@router.get("/staff/improvements/complaint")
def complaint_for(page: File) -> Response:
    """The index's "record a complaint" box: on to that patient's complaint form."""
    pid = (page.request.query_params.get("patient_id") or "").strip()[:36]
    return page.redirect(f"/staff/patients/{quote(pid, safe='')}/complaints/new", status=303)


def _detail(page: Page, item_id: str, status: int = 200, **values: Any) -> Response:
    with writing() as session:  # the read is audited
        doc = service.view_item(session, item_id, _principal(page).actor(), utc_now())
        staff = service.handlers(session)
    values.setdefault("errors", {})
    values.setdefault("error", None)
    values.setdefault("form", {})
    return page.render("staff/improvements/detail.html", status=status, item=doc, staff=staff,
                       can_write=_principal(page).can("improvements:write"), back="/staff/improvements",
                       **words(page), **{**_flash(page), **values})


@router.get("/staff/improvements/{item_id}")
def item(page: Read, item_id: str) -> Response:
    """One item: what the patient said (masked name), its notes and, for handlers, the forms."""
    return _detail(page, item_id)


def _body(model: type[Any], **fields: Any) -> Any:
    try:
        return model(**fields)
    except ValidationError as err:
        raise ValidationFailedError(fields=[{"loc": [str(e["loc"][-1]) if e.get("loc") else ""],
                                             "msg": f"填写有误 / {e.get('msg', 'invalid')}"} for e in err.errors()]
                                    ) from None


def _act(page: Page, item_id: str, done: str, action: Any, form: dict[str, str]) -> Response:
    try:
        with writing() as session:
            action(session)
    except AppError as err:
        if err.status_code not in FORM_ERRORS or err.code == "satisfaction.item_not_found":
            raise
        return _detail(page, item_id, err.status_code, error=err.to_dict(), errors=form_errors(err, page.lang),
                       form=form)
    return page.redirect(f"/staff/improvements/{item_id}?done={done}")


@router.post("/staff/improvements/{item_id}/assign")
def assign(page: Write, item_id: str, staff_user_id: Annotated[str, Form(max_length=36)] = "") -> Response:
    """Give the item to a staff member (they are told in their inbox)."""
    actor = _principal(page).actor()
    return _act(page, item_id, "assigned", lambda s: service.assign(
        s, item_id, _body(AssignIn, staff_user_id=staff_user_id), actor, utc_now()), {"staff_user_id": staff_user_id})


@router.post("/staff/improvements/{item_id}/notes")
def note(page: Write, item_id: str, text: Annotated[str, Form(max_length=4000)] = "") -> Response:
    """Record what was done."""
    actor = _principal(page).actor()
    return _act(page, item_id, "noted", lambda s: service.add_note(
        s, item_id, _body(NoteIn, text=text), actor, utc_now()), {"text": text})


@router.post("/staff/improvements/{item_id}/close")
def close(page: Write, item_id: str, resolution: Annotated[str, Form(max_length=4000)] = "") -> Response:
    """Close with the resolution (a complaint's patient reads it)."""
    actor = _principal(page).actor()
    return _act(page, item_id, "closed", lambda s: service.close(
        s, item_id, _body(CloseIn, resolution=resolution), actor, utc_now()), {"resolution": resolution})


# --- a complaint taken at the desk -------------------------------------------------------------

def _complaint_form(page: Page, patient_id: str, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        pid = service.patient_id(session, patient_id)
        visits = service.recent_visits(session, pid, utc_now(), limit=10)
        departments = service.departments(session)
    values.setdefault("form", {"subject": f"visit:{visits[0]['id']}" if visits else "department"})
    values.setdefault("errors", {})
    values.setdefault("error", None)
    return page.render("staff/improvements/complaint.html", status=status, pid=pid, visits=visits,
                       departments=departments, categories=[(k, page.tr(*v)) for k, v in CATEGORY_NAMES.items()],
                       key=secrets.token_urlsafe(12), back="/staff/improvements", **values)


@router.get("/staff/patients/{patient_id}/complaints/new")
def complaint_form(page: File, patient_id: str) -> Response:
    """The desk's complaint form for a patient (their visits or a department)."""
    return _complaint_form(page, patient_id)


@router.post("/staff/patients/{patient_id}/complaints")
def complaint_submit(page: File, patient_id: str, subject: Annotated[str, Form(max_length=80)] = "",
                     department: Annotated[str, Form(max_length=36)] = "",
                     category: Annotated[str, Form(max_length=20)] = "",
                     text: Annotated[str, Form(max_length=4000)] = "",
                     key: Annotated[str, Form(max_length=100)] = "") -> Response:
    """Record the patient's complaint; on to its improvement item."""
    form = {"subject": subject, "department": department, "category": category, "text": text}
    try:
        body: ComplaintIn = body_of(subject, department, category, text, key)
        with writing() as session:
            pid = service.patient_id(session, patient_id)
            doc, _created = service.file_complaint(session, pid, body, _principal(page).actor(), utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS or err.code == "patients.not_found":
            raise
        errors = form_errors(err, page.lang) or {"subject": page.say(err.detail)}
        return _complaint_form(page, patient_id, err.status_code, form=form, errors=errors, error=err.to_dict())
    if not _principal(page).can("improvements:read"):
        return page.redirect(f"/staff/patients/{patient_id}")
    return page.redirect(f"/staff/improvements/{doc['item_id']}?done=filed")
