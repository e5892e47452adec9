"""Education content (videos, articles) with quizzes, and quiz attempts.

Staff manage items (audited); patients see published items with the quiz but never
its answers. An attempt is scored here (`quiz.score`), stored, and a pass emits
`education.completed` with the source key `education:{patient}:{item}`: only the
first pass of a patient on an item is emitted (the `education_completions` row
decides, under the patient's lock), later passes answer `duplicate` with a notice,
a fail emits nothing and may be retried."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.engagement import spine
from carepoints.engagement.learning import quiz as quizzes
from carepoints.engagement.learning.errors import (
    AnswersMismatchError,
    ContentNotFoundError,
    ContentNotPublishedError,
    ContentRetiredError,
    IdempotencyConflictError,
)
from carepoints.engagement.learning.models import EducationCompletion, EducationItem, EducationLabel, QuizAttempt
from carepoints.engagement.learning.schemas import AttemptCreate, ContentCreate, ContentStatus, ContentUpdate, Quiz
from carepoints.kit.bulk import insert_new
from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id, request_digest

_items = table(EducationItem)
_labels = table(EducationLabel)
_attempts = table(QuizAttempt)
_done = table(EducationCompletion)


# --- content (staff) ---------------------------------------------------------------------

def _quiz_doc(quiz: Quiz) -> dict[str, Any]:
    return {"pass_mark": quiz.pass_mark, "questions": [
        {"id": q.id or f"q{n}", "text": q.text, "choices": list(q.choices), "correct": sorted(q.correct),
         "multi": q.multi} for n, q in enumerate(quiz.questions, start=1)]}


def _set_labels(session: Session, item_id: str, tags: list[str] | None, conditions: list[str] | None) -> None:
    conn = session.connection()
    for kind, values in (("tag", tags), ("condition", conditions)):
        if values is None:
            continue
        conn.execute(delete(_labels).where(_labels.c.item_id == item_id, _labels.c.kind == kind))
        rows = [{"item_id": item_id, "kind": kind, "value": v} for v in dict.fromkeys(values)]
        if rows:
            conn.execute(insert(_labels), rows)


def _labels_of(session: Session, item_ids: list[str]) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {i: {"tag": [], "condition": []} for i in item_ids}
    if item_ids:
        rows = session.connection().execute(select(_labels).where(_labels.c.item_id.in_(item_ids))
                                            .order_by(_labels.c.kind, _labels.c.value))
        for row in rows.mappings():
            out[row["item_id"]][row["kind"]].append(row["value"])
    return out


def _doc(row: RowMapping, labels: dict[str, list[str]], *, answers: bool) -> dict[str, Any]:
    return {"id": row["id"], "kind": row["kind"], "title": row["title"], "body_url": row["body_url"],
            "body_text": row["body_text"], "duration_seconds": row["duration_seconds"],
            "tags": labels["tag"], "conditions": labels["condition"], "status": row["status"],
            "version": row["version"], "quiz": row["quiz"] if answers else quizzes.public(row["quiz"]),
            "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat(),
            "published_at": row["published_at"].isoformat() if row["published_at"] else None}


def _row(session: Session, item_id: str, *, lock: bool = False) -> RowMapping:
    if not is_id(item_id):
        raise ContentNotFoundError()
    stmt = select(_items).where(_items.c.id == item_id)
    row = session.connection().execute(stmt.with_for_update() if lock else stmt).mappings().first()
    if row is None:
        raise ContentNotFoundError()
    return row


def read(session: Session, item_id: str, *, answers: bool = False) -> dict[str, Any]:
    """One item; the quiz without its correct answers unless `answers` (staff)."""
    row = _row(session, item_id)
    return _doc(row, _labels_of(session, [item_id])[item_id], answers=answers)


def create(session: Session, data: ContentCreate, actor: Actor, now: datetime) -> dict[str, Any]:
    iid = new_id()
    published = data.status == ContentStatus.published
    session.connection().execute(insert(_items).values(
        id=iid, kind=data.kind.value, title=data.title.model_dump(exclude_none=True), body_url=data.body_url,
        body_text=data.body_text, duration_seconds=data.duration_seconds, quiz=_quiz_doc(data.quiz),
        status=data.status, version=1, created_at=now, updated_at=now, published_at=now if published else None))
    _set_labels(session, iid, data.tags, data.conditions)
    audit.record(session, actor, "engagement:education:create", now, subject_id=iid, status=data.status)
    return read(session, iid, answers=True)


def update_item(session: Session, item_id: str, data: ContentUpdate, actor: Actor, now: datetime
                ) -> dict[str, Any]:
    """Change an item (not a retired one); a new quiz raises `version` (attempts keep the
    version they were scored against)."""
    row = _row(session, item_id, lock=True)
    if row["status"] == ContentStatus.retired:
        raise ContentRetiredError()
    values: dict[str, Any] = {"updated_at": now}
    if data.title is not None:
        values["title"] = data.title.model_dump(exclude_none=True)
    if data.body_url is not None:
        values.update(body_url=data.body_url, body_text=None)
    if data.body_text is not None:
        values.update(body_text=data.body_text, body_url=None)
    if data.duration_seconds is not None:
        values["duration_seconds"] = data.duration_seconds
    if data.quiz is not None:
        values.update(quiz=_quiz_doc(data.quiz), version=row["version"] + 1)
    session.connection().execute(update(_items).where(_items.c.id == item_id).values(**values))
    _set_labels(session, item_id, data.tags, data.conditions)
    audit.record(session, actor, "engagement:education:update", now, subject_id=item_id,
                 fields=sorted(data.model_fields_set))
    return read(session, item_id, answers=True)


def set_status(session: Session, item_id: str, status: ContentStatus, actor: Actor, now: datetime
               ) -> dict[str, Any]:
    """Publish or retire an item; the same status again changes nothing. Retired is final."""
    row = _row(session, item_id, lock=True)
    if row["status"] == status:
        return read(session, item_id, answers=True)
    if row["status"] == ContentStatus.retired:
        raise ContentRetiredError()
    values: dict[str, Any] = {"status": status.value, "updated_at": now}
    if status == ContentStatus.published and row["published_at"] is None:
        values["published_at"] = now
    session.connection().execute(update(_items).where(_items.c.id == item_id).values(**values))
    audit.record(session, actor, f"engagement:education:{'publish' if status == 'published' else 'retire'}", now,
                 subject_id=item_id)
    return read(session, item_id, answers=True)


def catalogue(session: Session, *, tag: str | None = None, condition: str | None = None, limit: int = 50,
              before: str | None = None) -> dict[str, Any]:
    """Published items, newest first, optionally those with a tag and/or a condition code."""
    stmt = select(_items).where(_items.c.status == ContentStatus.published.value)
    for kind, value in (("tag", tag), ("condition", condition)):
        if value is not None:
            stmt = stmt.where(exists().where(_labels.c.item_id == _items.c.id, _labels.c.kind == kind,
                                             _labels.c.value == value))
    if before is not None:
        stmt = stmt.where(_items.c.id < before)
    rows = session.connection().execute(stmt.order_by(_items.c.id.desc()).limit(limit + 1)).mappings().all()
    page = rows[:limit]
    labels = _labels_of(session, [r["id"] for r in page])
    return {"items": [_doc(r, labels[r["id"]], answers=False) for r in page],
            "next": page[-1]["id"] if len(rows) > limit else None}


# --- attempts (patients) -------------------------------------------------------------------

def _attempt_doc(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "item_id": row["item_id"], "patient_id": row["patient_id"],
            "passed": bool(row["passed"]), "score": row["score"], "pass_mark": row["pass_mark"],
            "right": row["correct_count"], "questions": row["question_count"],
            "watched_seconds": row["watched_seconds"], "created_at": row["created_at"].isoformat(),
            "outcome": row["outcome"]}


def _by_key(session: Session, patient_id: str, key: str) -> RowMapping | None:
    return session.connection().execute(select(_attempts).where(
        _attempts.c.patient_id == patient_id, _attempts.c.idempotency_key == key)).mappings().first()


def _replay(row: RowMapping, digest: str) -> dict[str, Any]:
    if row["request_digest"] != digest:
        raise IdempotencyConflictError()
    return _attempt_doc(row)


def attempt(session: Session, item_id: str, data: AttemptCreate, now: datetime) -> tuple[dict[str, Any], bool]:
    """Score and store an attempt; on the patient's first pass emit `education.completed`.
    Answers the attempt with the spine's outcome, and whether it is new (a replay of the
    same `idempotency_key` answers the stored attempt; with other answers it is a 409)."""
    item = _row(session, item_id)
    pid = spine.patient_of(session, data.patient_id, data.patient).patient_id
    digest = request_digest({"item": item_id, "answers": data.answers, "watched": data.watched_seconds})
    if data.idempotency_key is not None and (prior := _by_key(session, pid, data.idempotency_key)) is not None:
        return _replay(prior, digest), False
    if item["status"] != ContentStatus.published:
        raise ContentNotPublishedError()
    try:
        result = quizzes.score(item["quiz"], data.answers)
    except quizzes.AnswerShapeError as exc:
        raise AnswersMismatchError(reason=str(exc)) from exc
    row: dict[str, Any] = {
        "id": new_id(), "patient_id": pid, "item_id": item_id, "item_version": item["version"],
        "idempotency_key": data.idempotency_key, "request_digest": digest, "answers": data.answers,
        "correct_count": result.right, "question_count": result.questions, "score": result.score,
        "pass_mark": result.pass_mark, "passed": result.passed, "watched_seconds": data.watched_seconds,
        "outcome": {}, "created_at": now}
    conn = session.connection()
    if not insert_new(conn, _attempts, row, ("patient_id", "idempotency_key")):
        prior = _by_key(session, pid, str(data.idempotency_key))
        assert prior is not None  # noqa: S101 - the conflicting row exists
        return _replay(prior, digest), False
    row["outcome"] = _outcome(session, item_id, pid, row, now)
    conn.execute(update(_attempts).where(_attempts.c.id == row["id"]).values(outcome=row["outcome"]))
    return _attempt_doc(row), True


def _outcome(session: Session, item_id: str, pid: str, row: dict[str, Any], now: datetime) -> dict[str, Any]:
    if not row["passed"]:
        return spine.quiet(session, pid, now, "engagement.quiz_not_passed",
                           f"测验未通过(答对{row['correct_count']}/{row['question_count']}题),可以再试一次 / "
                           f"Quiz not passed ({row['correct_count']} of {row['question_count']} right); "
                           "you can try again")
    conn = session.connection()
    if not insert_new(conn, _done, {"patient_id": pid, "item_id": item_id, "attempt_id": row["id"],
                                    "event_id": None, "completed_at": now}, ("patient_id", "item_id")):
        first = conn.execute(select(_done.c.event_id).where(_done.c.patient_id == pid,
                                                            _done.c.item_id == item_id)).scalar()
        return spine.quiet(session, pid, now, "engagement.already_completed",
                           "该内容已学习并通过测验,不再重复计分 / Already completed: no further points",
                           event_id=first, duplicate=True)
    outcome = spine.emit(session, "education.completed", pid, now, now, f"education:{pid}:{item_id}",
                         {"content_id": item_id, "score": row["score"], "pass_mark": row["pass_mark"]})
    conn.execute(update(_done).where(_done.c.patient_id == pid, _done.c.item_id == item_id)
                 .values(event_id=outcome["event_id"]))
    return outcome


def attempts_of(session: Session, item_id: str, patient_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """A patient's attempts on an item, newest first."""
    _row(session, item_id)
    rows = session.connection().execute(select(_attempts).where(
        _attempts.c.item_id == item_id, _attempts.c.patient_id == patient_id)
        .order_by(_attempts.c.id.desc()).limit(limit)).mappings()
    return [_attempt_doc(r) for r in rows]
