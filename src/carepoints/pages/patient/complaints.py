"""我的投诉 for the patient: the list (/me/complaints: the department, the category, what they
wrote, 处理中 / 已处理 and the hospital's reply once handled) and the form (/me/complaints/new:
one of their recent visits or a department, a category, their words). The same service and
permissions as the API (complaints:read, complaints:write; a proxy with view reads); a visit of
anyone else is refused as 404. The form's idempotency key makes a double tap one complaint."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response
from pydantic import ValidationError

from carepoints.kit.errors import AppError
from carepoints.kit.time import utc_now
from carepoints.pages.web import Page, form_errors, invalid, patient_page, reading, writing
from carepoints.services.satisfaction import service
from carepoints.services.satisfaction.schemas import CATEGORY_NAMES, ComplaintIn

router = APIRouter(include_in_schema=False)

Read = Annotated[Page, Depends(patient_page("complaints:read"))]
Write = Annotated[Page, Depends(patient_page("complaints:write"))]
DONE = ("投诉已提交,我们会尽快处理并答复您。", "Your complaint was sent. We will handle it and reply soon.")


def categories(page: Page) -> list[tuple[str, str]]:
    return [(k, page.tr(zh, en)) for k, (zh, en) in CATEGORY_NAMES.items()]


def _list(page: Page, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        doc = service.complaints_of(session, page.patient_id, limit=20 if page.elderly else 50)
    names = dict(categories(page))
    return page.render("patient/complaints/index.html", status=status, tab="me", back="/me", items=doc["items"],
                       category_name=lambda c: names.get(c, c), **values)


@router.get("/me/complaints")
def complaint_list(page: Read) -> Response:
    """The patient's complaints, newest first, with the hospital's reply once handled."""
    done = page.request.query_params.get("done") == "1"
    return _list(page, flash=page.tr(*DONE) if done else None, message=page.tr(*DONE) if done else None, kind="ok")


def _form(page: Page, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        visits = service.recent_visits(session, page.patient_id, utc_now(), limit=5 if page.elderly else 10)
        departments = service.departments(session)
    values.setdefault("form", {"subject": f"visit:{visits[0]['id']}" if visits else "department"})
    values.setdefault("errors", {})
    values.setdefault("error", None)
    return page.render("patient/complaints/new.html", status=status, tab="me", back="/me/complaints", visits=visits,
                       departments=departments, categories=categories(page), key=secrets.token_urlsafe(12), **values)


@router.get("/me/complaints/new")
def complaint_form(page: Write) -> Response:
    """The form: which visit (or department), what kind of problem, what happened."""
    return _form(page)


def body_of(subject: str, department: str, category: str, text: str, key: str) -> ComplaintIn:
    """The form as the API's body: `subject` is `visit:<appointment id>` or `department` (then the
    `department` field names it)."""
    kind, _, ref = subject.partition(":")
    if kind == "department" and department:
        appointment_id, department_id = None, department
    elif kind == "visit" and ref:
        appointment_id, department_id = ref, None
    else:
        raise invalid("subject", "请选择就诊记录或科室 / Choose a visit or a department")
    if category not in CATEGORY_NAMES:
        raise invalid("category", "请选择问题类型 / Choose what the problem was about")
    if not 5 <= len(text.strip()) <= 1000:
        raise invalid("text", "请用 5–1000 字说明情况 / Describe it in 5 to 1000 characters")
    try:
        return ComplaintIn(appointment_id=appointment_id, department_id=department_id, category=category,
                           text=text, idempotency_key=key or None)
    except ValidationError:
        raise invalid("subject", "请选择就诊记录或科室 / Choose a visit or a department") from None


@router.post("/me/complaints")
def complaint_submit(page: Write, subject: Annotated[str, Form(max_length=80)] = "",
                     department: Annotated[str, Form(max_length=36)] = "",
                     category: Annotated[str, Form(max_length=20)] = "",
                     text: Annotated[str, Form(max_length=4000)] = "",
                     key: Annotated[str, Form(max_length=100)] = "") -> Response:
    """File the complaint (once per form: its key), then back to the list."""
    assert page.principal is not None  # noqa: S101 - signed in (patient_page)
    form = {"subject": subject, "department": department, "category": category, "text": text}
    try:
        body = body_of(subject, department, category, text, key)
        with writing() as session:
            service.file_complaint(session, page.patient_id, body, page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code not in (404, 409, 422):
            raise
        errors = form_errors(err, page.lang)
        if err.status_code == 404:
            errors = {"subject": page.say(err.detail)}
        return _form(page, err.status_code, form=form, errors=errors, error=err.to_dict())
    return page.redirect("/me/complaints?done=1")
