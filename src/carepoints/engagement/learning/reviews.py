"""Visit reviews: one per attended appointment, by its patient.

A review emits `review.submitted` {appointment_id, rating, text} (the `review` rule
pays for 50 characters or more, once per appointment), unless its text nearly repeats
one of the same patient's earlier reviews (`textgate`, threshold
`review_repeat_similarity`): then it is stored with `repeat_of` and earns nothing,
and the answer says why. Other patients' reviews never count against a patient."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.engagement import spine
from carepoints.engagement.learning import textgate
from carepoints.engagement.learning.errors import ReviewExistsError, ReviewNotAttendedError, ReviewNotFoundError
from carepoints.engagement.learning.models import Review
from carepoints.engagement.learning.schemas import ReviewCreate
from carepoints.kit.bulk import insert_new
from carepoints.kit.db import table
from carepoints.kit.ids import new_id
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.scheduling import service as scheduling

_reviews = table(Review)
REPEAT = "engagement.review_repeated"
# how many of the patient's latest reviews the gate compares with
HISTORY = 200


def _doc(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "appointment_id": row["appointment_id"], "patient_id": row["patient_id"],
            "rating": row["rating"], "text": row["text"], "earned_points": row["repeat_of"] is None,
            "repeat_of": row["repeat_of"], "created_at": row["created_at"].isoformat(), "outcome": row["outcome"]}


def _by_appointment(session: Session, appointment_id: str) -> RowMapping | None:
    return session.connection().execute(select(_reviews).where(_reviews.c.appointment_id == appointment_id)
                                        ).mappings().first()


def _earlier(session: Session, patient_id: str) -> list[tuple[str, str]]:
    rows = session.connection().execute(select(_reviews.c.id, _reviews.c.text)
                                        .where(_reviews.c.patient_id == patient_id)
                                        .order_by(_reviews.c.id.desc()).limit(HISTORY))
    return [(r[0], r[1]) for r in rows]


def submit(session: Session, appointment_id: str, data: ReviewCreate, now: datetime) -> dict[str, Any]:
    """Review an attended appointment (409 `engagement.review_not_attended` otherwise, 409
    `engagement.review_exists` for a second one)."""
    appt = scheduling.read_appointment(session, appointment_id)
    if appt["status"] != "attended":
        raise ReviewNotAttendedError()
    pid = spine.patient_of(session, appt["patient_id"], None).patient_id
    if _by_appointment(session, appointment_id) is not None:
        raise ReviewExistsError()
    repeat = textgate.nearest_repeat(data.text, _earlier(session, pid), get_settings().review_repeat_similarity)
    row: dict[str, Any] = {"id": new_id(), "appointment_id": appointment_id, "patient_id": pid,
                           "rating": data.rating, "text": data.text, "repeat_of": repeat[0] if repeat else None,
                           "similarity": round(repeat[1] * 1000) if repeat else None, "outcome": {},
                           "created_at": now}
    if repeat is not None:
        row["outcome"] = spine.quiet(session, pid, now, REPEAT,
                                     "评价内容与您以前的评价高度重复,本次不计积分 / This review nearly repeats one of "
                                     "your earlier reviews, so it earns no points")
    else:
        row["outcome"] = spine.emit(session, "review.submitted", pid, now, now, f"review:{appointment_id}",
                                    {"appointment_id": appointment_id, "rating": data.rating, "text": data.text})
    if not insert_new(session.connection(), _reviews, row, ("appointment_id",)):
        raise ReviewExistsError()
    return _doc(row)


def read(session: Session, appointment_id: str) -> dict[str, Any]:
    scheduling.read_appointment(session, appointment_id)
    row = _by_appointment(session, appointment_id)
    if row is None:
        raise ReviewNotFoundError()
    return _doc(row)


def of_patient(session: Session, patient_id: str, *, limit: int = 50, before: str | None = None
               ) -> dict[str, Any]:
    """A patient's reviews, newest first."""
    if not patients.exists(session, patient_id):
        raise PatientNotFoundError()
    stmt = select(_reviews).where(_reviews.c.patient_id == patient_id)
    if before is not None:
        stmt = stmt.where(_reviews.c.id < before)
    rows = session.connection().execute(stmt.order_by(_reviews.c.id.desc()).limit(limit + 1)).mappings().all()
    return {"items": [_doc(r) for r in rows[:limit]], "next": rows[limit - 1]["id"] if len(rows) > limit else None}
