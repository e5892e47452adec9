"""Learning API: education content and quizzes, health lectures, visit reviews and
health-profile items. Each first qualifying step answers the spine's outcome
(awards, notices, balance)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from carepoints.engagement.learning import education, lectures, profile, reviews
from carepoints.engagement.learning.schemas import (
    AttemptCreate,
    ContentCreate,
    ContentStatus,
    ContentUpdate,
    LectureCreate,
    ProfileItemKind,
    ProfileValue,
    RegistrationCreate,
    ReviewCreate,
    SignInCreate,
)
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["learning"])


# --- education --------------------------------------------------------------------------

@router.post("/education/items", status_code=201)
def create_item(body: ContentCreate, p: Principal = Depends(require("content:write"))) -> JSON:
    """Add a video or article with its quiz (`pass_mark` is a percentage of questions right)."""
    with write_tx() as session:
        return JSON(education.create(session, body, p.actor(), utc_now()), status_code=201)


@router.patch("/education/items/{item_id}")
def update_item(item_id: str, body: ContentUpdate, p: Principal = Depends(require("content:write"))) -> JSON:
    """Change an item; a new quiz raises its version. A retired item cannot change (409)."""
    with write_tx() as session:
        return JSON(education.update_item(session, item_id, body, p.actor(), utc_now()))


@router.post("/education/items/{item_id}/publish")
def publish_item(item_id: str, p: Principal = Depends(require("content:write"))) -> JSON:
    """Publish an item: patients see it and may take its quiz."""
    with write_tx() as session:
        return JSON(education.set_status(session, item_id, ContentStatus.published, p.actor(), utc_now()))


@router.post("/education/items/{item_id}/retire")
def retire_item(item_id: str, p: Principal = Depends(require("content:write"))) -> JSON:
    """Take an item off the catalogue for good (attempts and completions stay)."""
    with write_tx() as session:
        return JSON(education.set_status(session, item_id, ContentStatus.retired, p.actor(), utc_now()))


@router.get("/education/items")
def list_items(tag: str | None = Query(None, min_length=1, max_length=64),
               condition: str | None = Query(None, min_length=1, max_length=64), limit: int = Query(50, ge=1, le=200),
               before: str | None = Query(None, max_length=36),
               _p: Principal = Depends(require("engagement:read"))) -> JSON:
    """Published items, newest first, by tag and/or targeted condition code; quizzes without answers."""
    with read_tx() as session:
        return JSON(education.catalogue(session, tag=tag, condition=condition, limit=limit, before=before))


@router.get("/education/items/{item_id}")
def get_item(item_id: str, _p: Principal = Depends(require("engagement:read"))) -> JSON:
    """One item with its quiz, without the correct answers."""
    with read_tx() as session:
        return JSON(education.read(session, item_id))


@router.post("/education/items/{item_id}/attempts", status_code=201,
             responses={200: {"description": "the same idempotency key again (replay)"}})
def attempt(item_id: str, body: AttemptCreate, _p: Principal = Depends(require("engagement:write"))) -> JSON:
    """Submit the quiz answers (one list of choice indexes per question). Scored here; the
    first pass of a patient on an item emits `education.completed` (+20 by default), later
    passes answer `duplicate` with a notice, a fail says how many were right and may be retried."""
    with write_tx() as session:
        doc, created = education.attempt(session, item_id, body, utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.get("/education/items/{item_id}/attempts")
def list_attempts(item_id: str, patient_id: str = Query(max_length=64),
                  _p: Principal = Depends(require("engagement:read"))) -> JSON:
    """A patient's attempts on an item, newest first."""
    with read_tx() as session:
        return JSON({"items": education.attempts_of(session, item_id, patient_id)})


# --- lectures ----------------------------------------------------------------------------

@router.post("/lectures", status_code=201)
def create_lecture(body: LectureCreate, p: Principal = Depends(require("content:write"))) -> JSON:
    """Schedule a health lecture (健康讲座) with a number of seats."""
    with write_tx() as session:
        return JSON(lectures.create(session, body, p.actor(), utc_now()), status_code=201)


@router.get("/lectures")
def list_lectures(limit: int = Query(50, ge=1, le=200), _p: Principal = Depends(require("engagement:read"))) -> JSON:
    """Lectures not yet over, soonest first, with the seats left."""
    with read_tx() as session:
        return JSON({"items": lectures.upcoming(session, utc_now(), limit=limit)})


@router.get("/lectures/{lecture_id}")
def get_lecture(lecture_id: str, _p: Principal = Depends(require("engagement:read"))) -> JSON:
    """One lecture with the seats left."""
    with read_tx() as session:
        return JSON(lectures.read(session, lecture_id))


@router.post("/lectures/{lecture_id}/registrations", status_code=201,
             responses={200: {"description": "already registered"}})
def register(lecture_id: str, body: RegistrationCreate, p: Principal = Depends(require("engagement:write"))
             ) -> JSON:
    """Take a seat until the lecture starts; 409 `engagement.lecture_full` when none is left."""
    with write_tx() as session:
        doc, created = lectures.register(session, lecture_id, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.post("/lectures/{lecture_id}/registrations/{registration_id}/cancel")
def cancel_registration(lecture_id: str, registration_id: str,
                        p: Principal = Depends(require("engagement:write"))) -> JSON:
    """Cancel a registration and free its seat (not after signing in)."""
    with write_tx() as session:
        return JSON(lectures.cancel(session, lecture_id, registration_id, p.actor(), utc_now()))


@router.post("/lectures/{lecture_id}/sign-ins", status_code=201,
             responses={200: {"description": "already signed in"}})
def sign_in(lecture_id: str, body: SignInCreate, p: Principal = Depends(require("lectures:write"))) -> JSON:
    """Staff at the door sign a patient in, within the window around the lecture (409
    `engagement.lecture_sign_in_closed` outside it). Walk-ins without a registration take a
    free seat. The first sign-in emits `lecture.attended` (+30 by default)."""
    with write_tx() as session:
        doc, created = lectures.sign_in(session, lecture_id, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)


# --- reviews -----------------------------------------------------------------------------

@router.post("/appointments/{appointment_id}/review", status_code=201)
def submit_review(appointment_id: str, body: ReviewCreate,
                  _p: Principal = Depends(require("engagement:write"))) -> JSON:
    """Review an attended visit (rating 1–5, text up to 2000 characters), once. A text that
    nearly repeats one of the patient's own earlier reviews is kept but earns nothing
    (notice `engagement.review_repeated`)."""
    with write_tx() as session:
        return JSON(reviews.submit(session, appointment_id, body, utc_now()), status_code=201)


@router.get("/appointments/{appointment_id}/review")
def get_review(appointment_id: str, _p: Principal = Depends(require("engagement:read"))) -> JSON:
    """The review of a visit."""
    with read_tx() as session:
        return JSON(reviews.read(session, appointment_id))


@router.get("/patients/{patient_id}/reviews")
def patient_reviews(patient_id: str, limit: int = Query(50, ge=1, le=200),
                    before: str | None = Query(None, max_length=36),
                    _p: Principal = Depends(require("engagement:read"))) -> JSON:
    """A patient's reviews, newest first."""
    with read_tx() as session:
        return JSON(reviews.of_patient(session, patient_id, limit=limit, before=before))


# --- health profile ------------------------------------------------------------------------

@router.put("/patients/{patient_id}/profile/{item}")
def put_profile_item(patient_id: str, item: ProfileItemKind, body: ProfileValue,
                     p: Principal = Depends(require("engagement:write"))) -> JSON:
    """Fill in or change one item of the health profile; the first value of each item emits
    `profile.item_completed` (+30 by default), later edits earn nothing."""
    with write_tx() as session:
        return JSON(profile.put(session, patient_id, item, body, p.actor(), utc_now()))


@router.get("/patients/{patient_id}/profile")
def get_profile(patient_id: str, _p: Principal = Depends(require("engagement:read"))) -> JSON:
    """Every item of the patient's health profile and which are complete."""
    with read_tx() as session:
        return JSON(profile.read(session, patient_id))
