"""Online consultation API (在线咨询) under /consultations. Patients (and proxies: `view` reads,
`book` asks) open threads, write, close and rate (`consult:ask`, `consult:read`); advisers —
clinician- and nurse-role staff on a department's roster — work the queue, claim, answer and
close (`consult:answer`, each staff read audited); admins keep the roster (`consult:manage`).
A patient token reaches only its own (or proxied) patients' threads: anyone else's is 404."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from carepoints.kit import uploads
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require, require_any
from carepoints.security.service import Principal
from carepoints.services.consult import service
from carepoints.services.consult.schemas import AdviserSet, MessageIn, RatingIn, ThreadOpen

router = APIRouter(prefix="/consultations", tags=["consultations"])
_either = require_any("consult:read", "consult:ask", "consult:answer")
_write = require_any("consult:ask", "consult:answer")



def _patient_side(p: Principal) -> bool:
    return p.reach is not None


@router.get("/disclaimer")
def get_disclaimer(_p: Principal = Depends(_either)) -> JSON:
    """The notice a patient accepts before the first message (不能替代面诊, 不做诊断和处方,
    急症请拨打120) and its version, which `POST /consultations` must name."""
    return JSON(service.disclaimer())


@router.get("/advisers")
def list_advisers(department_id: str | None = Query(None, max_length=36),
                  _p: Principal = Depends(require_any("consult:ask", "consult:answer", "consult:manage"))) -> JSON:
    """Who answers consultations (active advisers: name, title, profession, department) and the
    departments a patient may ask."""
    with read_tx() as session:
        return JSON({"items": service.advisers(session, department_id),
                     "departments": service.departments(session)})


@router.put("/advisers/{staff_user_id}")
def set_adviser(staff_user_id: str, body: AdviserSet, p: Principal = Depends(require("consult:manage"))) -> JSON:
    """Put a clinician- or nurse-role staff user on a department's roster as a clinician, nurse
    or pharmacist (again: updated; `active: false` takes them off)."""
    with write_tx() as session:
        return JSON(service.set_adviser(session, staff_user_id, body, p.actor(), utc_now()))


@router.get("/queue")
def get_queue(p: Principal = Depends(require("consult:answer"))) -> JSON:
    """Threads waiting for the hospital, longest wait first, with the minutes waited, the
    response-time target and `overdue`; and the caller's threads waiting for the patient."""
    with read_tx() as session:
        return JSON(service.queue(session, p.actor(), utc_now()))


@router.post("", status_code=201, responses={200: {"description": "the same idempotency key again"}})
def open_thread(body: ThreadOpen, p: Principal = Depends(require("consult:ask"))) -> JSON:
    """Open a consultation with its first message, for a named adviser (`adviser_id`) or a
    department (`department_id`, optionally a `profession`). The current notice must have been
    accepted (`disclaimer_version`, `disclaimer_accepted_at`) within the last day; needs the
    patient's health_data consent (409 `consult.consent_required`)."""
    with write_tx() as session:
        doc, status = service.open_thread(session, body, p.actor(), utc_now())
    return JSON(doc, status_code=status)


@router.get("")
def list_threads(patient_id: str = Query(min_length=1, max_length=64), limit: int = Query(50, ge=1, le=200),
                 _p: Principal = Depends(require("consult:read"))) -> JSON:
    """The patient's consultations, latest activity first."""
    with read_tx() as session:
        return JSON(service.patient_threads(session, patient_id, utc_now(), limit=limit))


@router.get("/{thread_id}")
def get_thread(thread_id: str, after: int = Query(0, ge=0), p: Principal = Depends(_either)) -> JSON:
    """The thread with its messages after seq `after` (all by default: polling asks for the new
    ones). A staff read that shows any message is audited."""
    now = utc_now()
    if _patient_side(p):
        with read_tx() as session:
            return JSON(service.patient_thread(session, thread_id, None, now, after=after))
    with write_tx() as session:
        return JSON(service.staff_thread(session, thread_id, p.actor(), now, after=after))


@router.post("/{thread_id}/messages", status_code=201, responses={200: {"description": "the same key again"}})
def post_message(thread_id: str, body: MessageIn, p: Principal = Depends(_write)) -> JSON:
    """A text message; an adviser answering an unclaimed routed thread takes it. 409
    `consult.closed` once closed."""
    now = utc_now()
    with write_tx() as session:
        if _patient_side(p):
            doc, status = service.post_as_patient(session, thread_id, None, p.actor(), now,
                                                  text=body.text, key=body.idempotency_key)
        else:
            doc, status = service.post_as_staff(session, thread_id, p.actor(), now, text=body.text,
                                                key=body.idempotency_key)
    return JSON(doc, status_code=status)


@router.post("/{thread_id}/images", status_code=201, responses={200: {"description": "the same key again"}})
def post_image(thread_id: str, request: Request, file: UploadFile = File(...),
               text: str | None = Form(None, max_length=2000),
               idempotency_key: str | None = Form(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$"),
               p: Principal = Depends(_write)) -> JSON:
    """An image message (multipart: file, text?, idempotency_key?): JPEG / PNG / WebP judged by
    content, at most `consult_image_max_bytes` (413), re-encoded without metadata."""
    raw = uploads.read_limited(file.file, service.image_limit(), service.image_too_large,
                               declared=request.headers.get("content-length", ""))
    now = utc_now()
    with write_tx() as session:
        if _patient_side(p):
            doc, status = service.post_as_patient(session, thread_id, None, p.actor(), now,
                                                  text=text, image=raw, key=idempotency_key)
        else:
            doc, status = service.post_as_staff(session, thread_id, p.actor(), now, text=text, image=raw,
                                                key=idempotency_key)
    return JSON(doc, status_code=status)


@router.get("/{thread_id}/images/{image_id}")
def get_image(thread_id: str, image_id: str, p: Principal = Depends(_either)) -> Response:
    """One image of the thread (no public URL; a staff read is audited)."""
    if _patient_side(p):
        with read_tx() as session:
            data, media_type = service.patient_image(session, thread_id, image_id, None)
    else:
        with write_tx() as session:
            data, media_type = service.staff_image(session, thread_id, image_id, p.actor(), utc_now())
    return Response(content=data, media_type=media_type, headers={"Cache-Control": "private, no-store"})


@router.post("/{thread_id}/claim")
def claim(thread_id: str, p: Principal = Depends(require("consult:answer"))) -> JSON:
    """Take an unclaimed routed thread (two advisers at once: one gets it, the other 409
    `consult.already_claimed`)."""
    with write_tx() as session:
        return JSON(service.claim(session, thread_id, p.actor(), utc_now()))


@router.post("/{thread_id}/close")
def close(thread_id: str, p: Principal = Depends(_write)) -> JSON:
    """End the consultation (the patient, or its adviser); 409 `consult.closed` when it already is."""
    now = utc_now()
    with write_tx() as session:
        if _patient_side(p):
            return JSON(service.close_as_patient(session, thread_id, None, p.actor(), now))
        return JSON(service.close_as_staff(session, thread_id, p.actor(), now))


@router.post("/{thread_id}/rating", status_code=201)
def rate(thread_id: str, body: RatingIn, p: Principal = Depends(require("consult:ask"))) -> JSON:
    """1–5 stars and an optional comment, once per closed thread."""
    with write_tx() as session:
        return JSON(service.rate(session, thread_id, None, body, p.actor(), utc_now()),
                    status_code=201)
