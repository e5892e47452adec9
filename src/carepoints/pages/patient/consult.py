"""在线咨询 for the patient (and a proxy: `view` reads, `book` asks): the list (/me/consult), a new
consultation (/me/consult/new: the notice first — 不能替代面诊, 不做诊断和处方, 急症请拨打120 — then
whom to ask and the first message), one thread (/me/consult/{thread_id}: the messages, a reply with
an optional image, close, the rating once closed). New messages appear without reloading: the
thread polls `/me/consult/{id}/messages?after=<last seq>` every few seconds (HTMX) and appends
what came. The same services and permissions as the API; anyone else's thread is 404. Texts and
images are health data: shown to the patient only, never logged."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError

from carepoints.config import get_settings
from carepoints.kit import uploads
from carepoints.kit.errors import AppError, ValidationFailedError
from carepoints.kit.time import utc_now
from carepoints.pages.web import Page, form_errors, patient_page, reading, writing
from carepoints.patients import service as patients
from carepoints.services.consult import service
from carepoints.services.consult.schemas import PROFESSIONS, Profession, RatingIn, ThreadOpen

router = APIRouter(include_in_schema=False)

Read = Annotated[Page, Depends(patient_page("consult:read"))]
Ask = Annotated[Page, Depends(patient_page("consult:ask"))]
POLL_SECONDS = 5
ACCEPT = "image/jpeg,image/png,image/webp"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATES = {"open": ("等待回复", "Waiting for a reply"), "answered": ("已回复", "Answered"),
          "waiting": ("等待回复", "Waiting for a reply"), "closed": ("已结束", "Closed")}


def state_name(page: Page, state: str) -> str:
    return page.tr(*STATES.get(state, (state, state)))


def profession_name(page: Page, profession: str | None) -> str:
    if profession is None:
        return ""
    return page.tr(*PROFESSIONS.get(Profession(profession), (profession, profession)))


def adviser_line(page: Page, who: dict[str, Any] | None) -> str:
    """"王医生 · 主治医师 · 医生", or "" when nobody has it yet."""
    if who is None or not who.get("display_name"):
        return ""
    parts = [who["display_name"], who.get("title") or "", profession_name(page, who.get("profession"))]
    return " · ".join(p for p in parts if p)


def _acting_name(page: Page) -> str | None:
    if not page.acting:
        return None
    with reading() as session:
        return patients.display_name(session, page.patient_id, masked=True)


def _invalid(err: ValidationError) -> ValidationFailedError:
    fields = [{"loc": [str(e["loc"][-1]) if e.get("loc") else ""], "msg": f"填写有误 / {e.get('msg', 'invalid')}"}
              for e in err.errors()]
    return ValidationFailedError(fields=fields)


def _labels(page: Page) -> dict[str, Any]:
    return {"state_name": lambda s: state_name(page, s), "adviser_line": lambda w: adviser_line(page, w),
            "profession_name": lambda p: profession_name(page, p), "acting_name": _acting_name(page)}


@router.get("/me/consult")
def threads(page: Read) -> Response:
    """My consultations, latest activity first, each with its state and adviser."""
    with reading() as session:
        doc = service.patient_threads(session, page.patient_id, utc_now())
    return page.render("patient/consult/index.html", tab="me", back="/me", items=doc["items"], **_labels(page))


# --- a new consultation -------------------------------------------------------------------------

def _accepted(page: Page) -> datetime | None:
    """When the notice was accepted in this session (its current version only)."""
    raw = page.data.get("cd")
    if not isinstance(raw, list) or len(raw) != 2 or raw[1] != get_settings().consult_disclaimer_version:
        return None
    try:
        return datetime.fromisoformat(str(raw[0]))
    except ValueError:
        return None


def _new_page(page: Page, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        advisers = service.advisers(session)
        departments = service.departments(session)
    values.setdefault("key", secrets.token_urlsafe(16))
    return page.render("patient/consult/new.html", status=status, tab="me", back="/me/consult",
                       disclaimer=service.disclaimer(), accepted=_accepted(page) is not None, advisers=advisers,
                       departments=departments, max_text=2000, **_labels(page), **values)


@router.get("/me/consult/new")
def new(page: Ask, step: str = "") -> Response:
    """The notice first; once accepted (this session), whom to ask and the first message."""
    if step != "ask":
        page.set(cd=None)
    return _new_page(page)


@router.post("/me/consult/new/accept")
def accept(page: Ask) -> Response:
    """The patient has read the notice and agrees: remembered with its time for the first message."""
    page.set(cd=[utc_now().isoformat(), get_settings().consult_disclaimer_version])
    return page.redirect("/me/consult/new?step=ask")


@router.post("/me/consult/new")
def create(page: Ask, target: Annotated[str, Form(max_length=80)] = "",
           subject: Annotated[str, Form(max_length=200)] = "", text: Annotated[str, Form(max_length=4000)] = "",
           key: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Open the consultation with its first message (the notice's acceptance time goes with it)."""
    assert page.principal is not None  # noqa: S101 - signed in (patient_page)
    kind, _, target_id = target.partition(":")
    form = {"target": target, "subject": subject, "text": text}
    try:
        try:
            body = ThreadOpen(patient_id=page.patient_id, subject=subject, text=text, idempotency_key=key or "-",
                              department_id=target_id if kind == "department" else None,
                              adviser_id=target_id if kind == "adviser" else None,
                              disclaimer_version=get_settings().consult_disclaimer_version,
                              disclaimer_accepted_at=_accepted(page) or _EPOCH)
        except ValidationError as err:
            raise _invalid(err) from None
        with writing() as session:
            doc, _status = service.open_thread(session, body, page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code not in (404, 409, 422):
            raise
        return _new_page(page, err.status_code, error=err.to_dict(), errors=form_errors(err, page.lang), form=form,
                         key=key or None)
    page.set(cd=None)  # the next consultation shows the notice again
    return page.redirect(f"/me/consult/{doc['id']}")


# --- one thread ---------------------------------------------------------------------------------

def _thread_page(page: Page, thread_id: str, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        doc = service.patient_thread(session, thread_id, page.patient_id, utc_now())
    last = doc["messages"][-1]["seq"] if doc["messages"] else 0
    return page.render("patient/consult/thread.html", status=status, tab="me", back="/me/consult", t=doc,
                       messages=doc["messages"], last=last, poll=POLL_SECONDS, base=f"/me/consult/{thread_id}",
                       accept=ACCEPT, key=secrets.token_urlsafe(16), disclaimer=service.disclaimer(),
                       max_mb=round(service.image_limit() / 1024 / 1024, 1), viewer="patient", **_labels(page),
                       **values)


@router.get("/me/consult/{thread_id}")
def thread(page: Read, thread_id: str) -> Response:
    """The conversation, the reply box (text and / or one image), close; the rating once closed."""
    return _thread_page(page, thread_id)


@router.get("/me/consult/{thread_id}/messages")
def poll(page: Read, thread_id: str, after: int = 0, state: str = "") -> Response:
    """HTMX polling: the messages after `after` (appended out of band) and the next poller; a
    thread that closed meanwhile reloads the page (the rating appears)."""
    with reading() as session:
        doc = service.patient_thread(session, thread_id, page.patient_id, utc_now(), after=max(0, after))
    if doc["state"] == "closed" and state != "closed":
        return page.finish(Response(status_code=204, headers={"HX-Refresh": "true"}))
    last = doc["messages"][-1]["seq"] if doc["messages"] else max(0, after)
    return page.render("patient/consult/_poll.html", t=doc, messages=doc["messages"], last=last, poll=POLL_SECONDS,
                       base=f"/me/consult/{thread_id}", viewer="patient", **_labels(page))


@router.post("/me/consult/{thread_id}/messages")
def reply(page: Ask, thread_id: str, request: Request, text: Annotated[str, Form(max_length=4000)] = "",
          key: Annotated[str, Form(max_length=64)] = "",
          file: Annotated[UploadFile | None, File()] = None) -> Response:
    """Send a message (text and / or one image); back to the thread at its end."""
    assert page.principal is not None  # noqa: S101 - signed in (patient_page)
    try:
        raw = None
        if file is not None and file.filename:
            raw = uploads.read_limited(file.file, service.image_limit(), service.image_too_large,
                                       declared=request.headers.get("content-length", ""))
        if len(text.strip()) > 2000:
            raise ValidationFailedError(fields=[{"loc": ["text"], "msg": "最多2000字 / At most 2000 characters"}])
        with writing() as session:
            service.post_as_patient(session, thread_id, page.patient_id, page.principal.actor(), utc_now(),
                                    text=text or None, image=raw, key=key or None)
    except AppError as err:
        if err.status_code not in (409, 413, 415, 422):
            raise
        return _thread_page(page, thread_id, err.status_code, error=err.to_dict(), errors=form_errors(err, page.lang),
                            draft=text)
    return page.redirect(f"/me/consult/{thread_id}#composer")


@router.post("/me/consult/{thread_id}/close")
def close(page: Ask, thread_id: str) -> Response:
    """End the consultation (already closed: the page says so)."""
    assert page.principal is not None  # noqa: S101 - signed in (patient_page)
    try:
        with writing() as session:
            service.close_as_patient(session, thread_id, page.patient_id, page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code != 409:
            raise
        return _thread_page(page, thread_id, err.status_code, error=err.to_dict())
    return page.redirect(f"/me/consult/{thread_id}")


@router.post("/me/consult/{thread_id}/rating")
def rating(page: Ask, thread_id: str, stars: Annotated[int, Form(ge=0, le=9)] = 0,
           comment: Annotated[str, Form(max_length=1000)] = "") -> Response:
    """Rate the closed consultation once: 1–5 stars, an optional comment."""
    assert page.principal is not None  # noqa: S101 - signed in (patient_page)
    try:
        try:
            body = RatingIn(stars=stars, comment=comment or None)
        except ValidationError as err:
            raise _invalid(err) from None
        with writing() as session:
            service.rate(session, thread_id, page.patient_id, body, page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code not in (409, 422):
            raise
        return _thread_page(page, thread_id, err.status_code, error=err.to_dict(), errors=form_errors(err, page.lang))
    return page.redirect(f"/me/consult/{thread_id}")


@router.get("/me/consult/{thread_id}/images/{image_id}")
def image(page: Read, thread_id: str, image_id: str) -> Response:
    """An image of the thread (no public URL)."""
    with reading() as session:
        data, media_type = service.patient_image(session, thread_id, image_id, page.patient_id)
    return page.finish(Response(content=data, media_type=media_type, headers={"Cache-Control": "private, no-store"}))
