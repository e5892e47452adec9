"""在线咨询 in the staff console (consult:answer: clinician- and nurse-role advisers on a department's
roster; admins see every thread): /staff/consult is the queue — threads waiting for the hospital,
longest wait first, minutes waited against the response-time target, overdue in red — and the
adviser's own threads waiting for the patient, refreshed by HTMX polling. /staff/consult/{id} is a
thread (each read audited `consult:thread:view`, as the API's): take it (claim), answer with text
and / or an image, close it; the patient's new messages appear without reloading."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from carepoints.audit.service import Actor
from carepoints.kit import uploads
from carepoints.kit.errors import AppError, ValidationFailedError
from carepoints.kit.time import utc_now
from carepoints.pages.patient.consult import ACCEPT, adviser_line, profession_name, state_name
from carepoints.pages.web import Page, form_errors, reading, staff_page, writing
from carepoints.services.consult import service

router = APIRouter(include_in_schema=False)
Answer = Annotated[Page, Depends(staff_page("consult:answer"))]
POLL_SECONDS = 5
QUEUE_POLL_SECONDS = 15


def _actor(page: Page) -> Actor:
    assert page.principal is not None  # noqa: S101 - a signed-in page
    return page.principal.actor()


def _labels(page: Page) -> dict[str, Any]:
    return {"state_name": lambda s: state_name(page, s), "adviser_line": lambda w: adviser_line(page, w),
            "profession_name": lambda p: profession_name(page, p)}


def _queue(page: Page) -> dict[str, Any]:
    with reading() as session:
        return service.queue(session, _actor(page), utc_now())


@router.get("/staff/consult")
def queue(page: Answer) -> Response:
    """Threads waiting for the hospital (overdue first to catch the eye) and mine waiting for the patient."""
    return page.render("staff/consult/queue.html", q=_queue(page), poll=QUEUE_POLL_SECONDS, **_labels(page))


@router.get("/staff/consult/queue")
def queue_fragment(page: Answer) -> Response:
    """The queue table (HTMX polling)."""
    return page.render("staff/consult/_queue.html", q=_queue(page), poll=QUEUE_POLL_SECONDS, **_labels(page))


def _thread_page(page: Page, thread_id: str, status: int = 200, **values: Any) -> Response:
    with writing() as session:  # a staff read is audited
        doc = service.staff_thread(session, thread_id, _actor(page), utc_now())
    last = doc["messages"][-1]["seq"] if doc["messages"] else 0
    return page.render("staff/consult/thread.html", status=status, t=doc, messages=doc["messages"], last=last,
                       poll=POLL_SECONDS, base=f"/staff/consult/{thread_id}", accept=ACCEPT,
                       key=secrets.token_urlsafe(16), viewer="staff",
                       max_mb=round(service.image_limit() / 1024 / 1024, 1), **_labels(page), **values)


@router.get("/staff/consult/{thread_id}")
def thread(page: Answer, thread_id: str) -> Response:
    """The conversation; take it, answer, close (the read is audited)."""
    return _thread_page(page, thread_id)


@router.get("/staff/consult/{thread_id}/messages")
def poll(page: Answer, thread_id: str, after: int = 0, state: str = "") -> Response:
    """HTMX polling: new messages after `after` (audited only when there are any); a thread that
    closed meanwhile reloads the page."""
    with writing() as session:
        doc = service.staff_thread(session, thread_id, _actor(page), utc_now(), after=max(1, after))
    if doc["state"] == "closed" and state != "closed":
        return page.finish(Response(status_code=204, headers={"HX-Refresh": "true"}))
    last = doc["messages"][-1]["seq"] if doc["messages"] else max(0, after)
    return page.render("patient/consult/_poll.html", t=doc, messages=doc["messages"], last=last, poll=POLL_SECONDS,
                       base=f"/staff/consult/{thread_id}", viewer="staff", **_labels(page))


def _act(page: Page, thread_id: str, action: Any, ok: str) -> Response:
    try:
        with writing() as session:
            action(session)
    except AppError as err:
        if err.status_code not in (403, 409, 413, 415, 422):
            raise
        return _thread_page(page, thread_id, err.status_code, error=err.to_dict(),
                            errors=form_errors(err, page.lang))
    return page.redirect(f"/staff/consult/{thread_id}{ok}")


@router.post("/staff/consult/{thread_id}/claim")
def claim(page: Answer, thread_id: str) -> Response:
    """Take the thread from the queue (someone faster: the page says so)."""
    return _act(page, thread_id, lambda s: service.claim(s, thread_id, _actor(page), utc_now()), "#composer")


@router.post("/staff/consult/{thread_id}/messages")
def reply(page: Answer, thread_id: str, request: Request, text: Annotated[str, Form(max_length=4000)] = "",
          key: Annotated[str, Form(max_length=64)] = "",
          file: Annotated[UploadFile | None, File()] = None) -> Response:
    """Answer with text and / or one image (an unclaimed thread is taken by answering it)."""
    raw = None
    try:
        if file is not None and file.filename:
            raw = uploads.read_limited(file.file, service.image_limit(), service.image_too_large,
                                       declared=request.headers.get("content-length", ""))
        if len(text.strip()) > 2000:
            raise ValidationFailedError(fields=[{"loc": ["text"], "msg": "最多2000字 / At most 2000 characters"}])
    except AppError as err:
        return _thread_page(page, thread_id, err.status_code, error=err.to_dict(), errors=form_errors(err, page.lang))
    return _act(page, thread_id, lambda s: service.post_as_staff(s, thread_id, _actor(page), utc_now(),
                                                                 text=text or None, image=raw, key=key or None),
                "#composer")


@router.post("/staff/consult/{thread_id}/close")
def close(page: Answer, thread_id: str) -> Response:
    """End the consultation; the patient is told and may rate it."""
    return _act(page, thread_id, lambda s: service.close_as_staff(s, thread_id, _actor(page), utc_now()), "")


@router.get("/staff/consult/{thread_id}/images/{image_id}")
def image(page: Answer, thread_id: str, image_id: str) -> Response:
    """An image of the thread (the read is audited)."""
    with writing() as session:
        data, media_type = service.staff_image(session, thread_id, image_id, _actor(page), utc_now())
    return page.finish(Response(content=data, media_type=media_type, headers={"Cache-Control": "private, no-store"}))
