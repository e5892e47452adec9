"""Online consultation use cases (在线咨询): health advice and service questions only — never a
diagnosis or a prescription. The patient (or a proxy with the `book` scope) accepts the notice
first, then opens a text-and-image thread with a named adviser (clinician, nurse or pharmacist)
or a department; a routed thread is claimed by one adviser of that department from the queue.
Either side closes it; `close-consultations` closes answered threads left idle; the patient
rates a closed thread once.

Guards: a claim is `UPDATE … WHERE assignee IS NULL`, a close `UPDATE … WHERE state <> 'closed'`,
a message `UPDATE … WHERE state = :read AND message_count = :read` (the thread row locked on
PostgreSQL, BEGIN IMMEDIATE on SQLite), a rating the rating's primary key, a retry the
idempotency key's unique constraint: the database, not Python, decides every race.

Audit: every write (`consult:thread:open|claim|close|rate`, `consult:message:post`,
`consult:adviser:set`) and every staff read (`consult:thread:view`, `consult:image:view`, so the
patient's access report lists them) with ids and codes only — never a subject, text or image.
The patient hears of a reply and of a close by the hospital through the outbox (ids only)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor, record
from carepoints.config import get_settings
from carepoints.engagement.community import photos
from carepoints.enrolment.privacy import has_consent
from carepoints.kit import retention
from carepoints.kit.ids import new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import as_utc, iso_z
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.security import scope
from carepoints.security import service as security
from carepoints.security.permissions import Role
from carepoints.services.consult import repository as repo
from carepoints.services.consult import states
from carepoints.services.consult.errors import (
    AdviserNotFoundError,
    AlreadyClaimedError,
    AlreadyRatedError,
    ChangedError,
    ConsentRequiredError,
    DepartmentNotFoundError,
    DisclaimerRequiredError,
    EmptyMessageError,
    IdempotencyConflictError,
    ImageNotFoundError,
    ImageTooLargeError,
    NoAdvisersError,
    NotAdviserError,
    NotAssigneeError,
    TargetRequiredError,
    ThreadClosedError,
    ThreadNotClosedError,
    ThreadNotFoundError,
    TooManyImagesError,
)
from carepoints.services.consult.schemas import PROFESSIONS, AdviserSet, Profession, RatingIn, ThreadOpen
from carepoints.services.consult.states import Author, State

# the notice the patient accepts before the first message (its version is a setting)
DISCLAIMER: tuple[tuple[str, str], ...] = (
    ("在线咨询不能替代面诊。", "Online consultation cannot replace a visit in person."),
    ("医护人员在线只提供健康建议和就医服务解答,不做诊断,不开处方。",
     "Staff give health advice and answer service questions online only: no diagnosis, no prescription."),
    ("胸痛、呼吸困难、大出血、意识不清等急症,请立即拨打120或前往急诊。",
     "For an emergency (chest pain, difficulty breathing, heavy bleeding, confusion) call 120 or go to the "
     "emergency department now."),
)
ACCEPT_WINDOW = timedelta(days=1)  # the notice must have been accepted within a day before the thread
CLOCK_SKEW = timedelta(minutes=2)
MESSAGE_PAGE = 200
RETENTION_KIND = "consult"
RETENTION_DAYS = 3 * 365  # closed threads; CAREPOINTS_RETENTION_DAYS=consult=N changes it
_ANY_THREAD = (Role.admin,)


def _conn(session: Session) -> Connection:
    return session.connection()


def disclaimer() -> dict[str, Any]:
    return {"version": get_settings().consult_disclaimer_version,
            "points": [{"zh": zh, "en": en} for zh, en in DISCLAIMER]}


def owners(session: Session, thread_id: str) -> list[str]:
    """Whose consultation this is (the ownership lookup of routes naming a thread by its id)."""
    return repo.owners(_conn(session), thread_id)


# --- roster -----------------------------------------------------------------------------------

def _adviser_doc(r: RowMapping) -> dict[str, Any]:
    zh, en = PROFESSIONS[Profession(r["profession"])]
    return {"staff_user_id": r["staff_user_id"], "department_id": r["department_id"],
            "department_zh": r["department_zh"], "department_en": r["department_en"],
            "profession": r["profession"], "profession_zh": zh, "profession_en": en,
            "display_name": r["display_name"], "title": r["title"], "active": bool(r["active"])}


def set_adviser(session: Session, staff_user_id: str, body: AdviserSet, actor: Actor, now: datetime) -> dict[str, Any]:
    """Put a clinician- or nurse-role staff user on a department's roster (a pharmacist signs in
    with one of those roles; the profession is what the patient sees). Audited with ids."""
    conn = _conn(session)
    user = security.staff_user(session, staff_user_id)  # 404 staff.not_found
    if user["role"] not in (Role.clinician, Role.nurse):
        raise NotAdviserError()
    if repo.department(conn, body.department_id) is None:
        raise DepartmentNotFoundError()
    repo.set_adviser(conn, {"staff_user_id": staff_user_id, "department_id": body.department_id,
                            "profession": str(body.profession), "display_name": body.display_name,
                            "title": body.title, "active": body.active, "created_at": now, "updated_at": now})
    record(session, actor, "consult:adviser:set", now, subject_id=staff_user_id, department_id=body.department_id,
           profession=str(body.profession), active=body.active)
    row = repo.adviser(conn, staff_user_id)
    assert row is not None  # noqa: S101 - just written
    return _adviser_doc(row)


def advisers(session: Session, department_id: str | None = None, *, active_only: bool = True) -> list[dict[str, Any]]:
    return [_adviser_doc(r) for r in repo.roster(_conn(session), department_id, active_only=active_only)]


def departments(session: Session) -> list[dict[str, Any]]:
    """Departments a patient may ask (with at least one active adviser)."""
    return [dict(r) for r in repo.roster_departments(_conn(session))]


def _active_adviser(conn: Connection, staff_user_id: str) -> RowMapping | None:
    row = repo.adviser(conn, staff_user_id)
    return row if row is not None and row["active"] and row["user_active"] else None


# --- documents --------------------------------------------------------------------------------

def _who(names: dict[str, RowMapping], staff_id: str | None) -> dict[str, Any] | None:
    if staff_id is None:
        return None
    r = names.get(staff_id)
    if r is None:
        return {"staff_user_id": staff_id, "display_name": None, "title": "", "profession": None}
    return {"staff_user_id": staff_id, "display_name": r["display_name"], "title": r["title"],
            "profession": r["profession"]}


def _iso(value: datetime | None) -> str | None:
    return iso_z(as_utc(value)) if value is not None else None


def _thread_doc(conn: Connection, r: RowMapping, now: datetime) -> dict[str, Any]:
    target = get_settings().consult_response_minutes
    names = repo.staff_names(conn, [i for i in (r["assignee_staff_id"], r["requested_staff_id"]) if i])
    waiting = as_utc(r["waiting_since"]) if r["waiting_since"] is not None else None
    due = states.due_by(waiting, target)
    return {
        "id": r["id"], "patient_id": r["patient_id"], "opened_by": r["opened_by"], "state": r["state"],
        "target": r["target"], "department_id": r["department_id"], "department_zh": r["department_zh"],
        "department_en": r["department_en"], "profession": r["profession"], "subject": r["subject"],
        "adviser": _who(names, r["assignee_staff_id"]), "requested_adviser": _who(names, r["requested_staff_id"]),
        "created_at": _iso(r["created_at"]), "last_message_at": _iso(r["last_message_at"]),
        "disclaimer_version": r["disclaimer_version"], "disclaimer_accepted_at": _iso(r["disclaimer_accepted_at"]),
        "waiting_since": _iso(waiting), "waiting_minutes": states.waited_minutes(waiting, now),
        "due_by": _iso(due), "overdue": states.overdue(waiting, now, target), "response_target_minutes": target,
        "first_response_at": _iso(r["first_response_at"]), "first_response_seconds": r["first_response_seconds"],
        "closed_at": _iso(r["closed_at"]), "closed_by": r["closed_by"], "close_reason": r["close_reason"],
        "rating": None if r.get("rating") is None else {"stars": r["rating"], "comment": r.get("rating_comment")},
        "message_count": r["message_count"], "image_count": r["image_count"],
    }


def _message_doc(m: RowMapping | dict[str, Any]) -> dict[str, Any]:
    return {"id": m["id"], "seq": m["seq"], "author": m["author"], "author_id": m["author_id"], "text": m["body"],
            "image_id": m["image_id"], "width": m.get("width"), "height": m.get("height"),
            "created_at": _iso(m["created_at"])}


def _messages(conn: Connection, thread_id: str, after: int) -> list[dict[str, Any]]:
    return [_message_doc(m) for m in repo.messages_after(conn, thread_id, max(0, after), MESSAGE_PAGE)]


# --- who may do what --------------------------------------------------------------------------

def _thread(conn: Connection, thread_id: str, *, lock: bool = False) -> RowMapping:
    row = repo.thread(conn, thread_id, lock=lock)
    if row is None:
        raise ThreadNotFoundError()
    return row


def _patient_thread(session: Session, thread_id: str, pid: str | None, *, lock: bool = False) -> RowMapping:
    """The thread of `pid` (None: of whoever owns it), whose patient the request must reach (a
    patient token: itself or a proxied patient); anyone else's thread is 404."""
    row = _thread(_conn(session), thread_id, lock=lock)
    if pid is not None and row["patient_id"] != pid:
        raise ThreadNotFoundError()
    scope.ensure(row["patient_id"], session)
    return row


def _eligible(adviser: RowMapping, row: RowMapping) -> bool:
    """May this adviser take this routed, unclaimed thread?"""
    return (row["target"] == "department" and row["assignee_staff_id"] is None
            and adviser["department_id"] == row["department_id"]
            and row["profession"] in (None, adviser["profession"]))


def _staff_thread(session: Session, thread_id: str, actor: Actor, *, lock: bool = False) -> RowMapping:
    """A thread staff may see: their own, an unclaimed one they could take, or any for admins;
    every other is 404 (ids cannot be probed)."""
    conn = _conn(session)
    row = _thread(conn, thread_id, lock=lock)
    if actor.role in _ANY_THREAD:
        return row
    adviser = _active_adviser(conn, actor.id)
    if adviser is None or not (row["assignee_staff_id"] == actor.id or _eligible(adviser, row)):
        raise ThreadNotFoundError()
    return row


# --- the patient's side -----------------------------------------------------------------------

def _check_disclaimer(body: ThreadOpen, now: datetime) -> None:
    version = get_settings().consult_disclaimer_version
    at = as_utc(body.disclaimer_accepted_at)
    if body.disclaimer_version != version or not now - ACCEPT_WINDOW <= at <= now + CLOCK_SKEW:
        raise DisclaimerRequiredError(version=version)


def _route(conn: Connection, body: ThreadOpen) -> dict[str, Any]:
    """Whom the thread is for: a named adviser (assigned at once) or a department (the queue)."""
    if (body.department_id is None) == (body.adviser_id is None):
        raise TargetRequiredError()
    if body.adviser_id is not None:
        adviser = _active_adviser(conn, body.adviser_id)
        if adviser is None:
            raise AdviserNotFoundError()
        return {"target": "adviser", "department_id": adviser["department_id"], "profession": adviser["profession"],
                "requested_staff_id": adviser["staff_user_id"], "assignee_staff_id": adviser["staff_user_id"],
                "claimed_at": None}
    assert body.department_id is not None  # noqa: S101 - one of the two (checked above)
    if repo.department(conn, body.department_id) is None:
        raise DepartmentNotFoundError()
    wanted = str(body.profession) if body.profession else None
    if not any(wanted in (None, a["profession"]) for a in repo.roster(conn, body.department_id, active_only=True)):
        raise NoAdvisersError()
    return {"target": "department", "department_id": body.department_id, "profession": wanted,
            "requested_staff_id": None, "assignee_staff_id": None, "claimed_at": None}


def _same_request(row: RowMapping, body: ThreadOpen, route: dict[str, Any]) -> bool:
    return bool(row["subject"] == body.subject and row["department_id"] == route["department_id"]
                and row["requested_staff_id"] == route["requested_staff_id"]
                and row["profession"] == route["profession"])


def open_thread(session: Session, body: ThreadOpen, actor: Actor, now: datetime) -> tuple[dict[str, Any], int]:
    """Open a consultation with its first message (201); the same idempotency key again answers
    the stored thread (200), with other content 409. Needs the patient's `health_data` consent
    and the current notice accepted within the last day (422 `consult.disclaimer_required`)."""
    conn = _conn(session)
    pid = patients.id_for(session, body.patient_id)
    if not patients.exists(session, pid):
        raise PatientNotFoundError()
    _check_disclaimer(body, now)
    route = _route(conn, body)
    existing = repo.by_key(conn, pid, body.idempotency_key)
    if existing is not None:
        if not _same_request(existing, body, route):
            raise IdempotencyConflictError()
        return thread_view(session, existing["id"], now), 200
    if not has_consent(session, pid, "health_data"):
        raise ConsentRequiredError()
    tid = new_id()
    row = {"id": tid, "patient_id": pid, "opened_by": actor.id, **route, "subject": body.subject,
           "state": str(State.open), "disclaimer_version": body.disclaimer_version,
           "disclaimer_accepted_at": as_utc(body.disclaimer_accepted_at), "idempotency_key": body.idempotency_key,
           "message_count": 0, "image_count": 0, "waiting_since": now, "last_message_at": now,
           "first_response_at": None, "first_response_seconds": None, "created_at": now, "closed_at": None,
           "closed_by": None, "close_reason": None}
    if not repo.insert_thread(conn, row):  # the same key in a concurrent request: that one won
        found = repo.by_key(conn, pid, body.idempotency_key)
        assert found is not None  # noqa: S101 - the unique constraint just said so
        return thread_view(session, found["id"], now), 200
    record(session, actor, "consult:thread:open", now, subject_id=tid, patient_id=pid,
           on_behalf_of=pid if actor.id != pid else None, department_id=route["department_id"],
           target=route["target"], adviser_id=route["requested_staff_id"])
    _post(session, _thread(conn, tid), Author.patient, actor, now, text=body.text, image=None, key=None)
    return thread_view(session, tid, now), 201


def thread_view(session: Session, thread_id: str, now: datetime, *, after: int = 0) -> dict[str, Any]:
    conn = _conn(session)
    row = _thread(conn, thread_id)
    return {**_thread_doc(conn, row, now), "messages": _messages(conn, thread_id, after)}


def patient_threads(session: Session, pid: str, now: datetime, *, limit: int = 50) -> dict[str, Any]:
    """The patient's consultations, latest activity first."""
    conn = _conn(session)
    if not patients.exists(session, pid):
        raise PatientNotFoundError()
    return {"patient_id": pid, "items": [_thread_doc(conn, r, now) for r in repo.of_patient(conn, pid, limit)]}


def patient_thread(session: Session, thread_id: str, pid: str | None, now: datetime, *,
                   after: int = 0) -> dict[str, Any]:
    """One of the patient's threads with its messages after `after` (all by default)."""
    conn = _conn(session)
    row = _patient_thread(session, thread_id, pid)
    return {**_thread_doc(conn, row, now), "messages": _messages(conn, thread_id, after)}


# --- messages ---------------------------------------------------------------------------------

def _clean(raw: bytes) -> tuple[bytes, str, int, int]:
    limit = get_settings().consult_image_max_bytes
    if len(raw) > limit:
        raise ImageTooLargeError(limit_mb=round(limit / 1024 / 1024, 1))
    return photos.clean_image(raw)  # decoded by content, re-encoded without metadata (EXIF location)


def image_limit() -> int:
    return get_settings().consult_image_max_bytes


def image_too_large() -> ImageTooLargeError:
    return ImageTooLargeError(limit_mb=round(get_settings().consult_image_max_bytes / 1024 / 1024, 1))


def _staff_may_write(conn: Connection, row: RowMapping, actor: Actor, now: datetime) -> bool:
    """An adviser answers their own thread, or takes an unclaimed one by answering it (the
    guarded claim). True when this answer claimed it."""
    adviser = _active_adviser(conn, actor.id)
    if adviser is None:
        raise NotAdviserError()
    if row["assignee_staff_id"] == actor.id:
        return False
    if row["assignee_staff_id"] is not None:
        raise NotAssigneeError()
    if not _eligible(adviser, row):
        raise NotAdviserError()
    if not repo.claim(conn, row["id"], actor.id, now):
        raise AlreadyClaimedError()
    return True


def _post(session: Session, row: RowMapping, author: Author, actor: Actor, now: datetime, *, text: str | None,
          image: bytes | None, key: str | None) -> tuple[dict[str, Any], int]:
    conn = _conn(session)
    if key is not None:
        done = repo.message_by_key(conn, row["id"], key)
        if done is not None:
            return _message_doc(done), 200
    if row["state"] == State.closed:
        raise ThreadClosedError()
    if not (text and text.strip()) and image is None:
        raise EmptyMessageError()
    claimed = _staff_may_write(conn, row, actor, now) if author is Author.staff else False
    image_id: str | None = None
    width: int | None = None
    height: int | None = None
    if image is not None:
        data, media_type, w, h = _clean(image)
        width, height = w, h
        limit = get_settings().consult_max_images
        if not repo.count_image(conn, row["id"], limit):
            raise TooManyImagesError(limit=limit)
        image_id = new_id()
        repo.add_image(conn, {"id": image_id, "thread_id": row["id"], "media_type": media_type, "size": len(data),
                              "width": w, "height": h, "data": data, "created_at": now})
    waiting = as_utc(row["waiting_since"]) if row["waiting_since"] is not None else None
    step = states.after_message(State(row["state"]), author, waiting, row["first_response_at"] is not None, now)
    values: dict[str, Any] = {"state": str(step.state), "waiting_since": step.waiting_since, "last_message_at": now}
    if step.first_response:
        values.update(first_response_at=now,
                      first_response_seconds=states.response_seconds(as_utc(row["created_at"]), now))
    if not repo.advance(conn, row["id"], row["state"], row["message_count"], **values):
        raise ChangedError()
    msg = {"id": new_id(), "thread_id": row["id"], "seq": row["message_count"] + 1, "author": str(author),
           "author_id": actor.id, "body": text.strip() if text else None, "image_id": image_id,
           "idempotency_key": key, "created_at": now}
    repo.add_message(conn, msg)
    msg.update(width=width, height=height)
    pid = row["patient_id"]
    record(session, actor, "consult:message:post", now, subject_id=row["id"], patient_id=pid,
           on_behalf_of=pid if author is Author.patient and actor.id != pid else None, seq=msg["seq"],
           author=str(author), image_id=image_id, claimed=claimed or None)
    if author is Author.staff:
        enqueue_many(conn, [("consult.reply", pid, {"patient_id": pid, "thread_id": row["id"]})], now)
    return _message_doc(msg), 201


def post_as_patient(session: Session, thread_id: str, pid: str | None, actor: Actor, now: datetime, *,
                    text: str | None = None, image: bytes | None = None,
                    key: str | None = None) -> tuple[dict[str, Any], int]:
    """The patient (or their proxy) writes: text and / or one image (201); the same
    idempotency key again answers the stored message (200). 409 `consult.closed` once closed."""
    row = _patient_thread(session, thread_id, pid, lock=True)
    return _post(session, row, Author.patient, actor, now, text=text, image=image, key=key)


def post_as_staff(session: Session, thread_id: str, actor: Actor, now: datetime, *, text: str | None = None,
                  image: bytes | None = None, key: str | None = None) -> tuple[dict[str, Any], int]:
    """An adviser answers (an unclaimed routed thread is claimed by answering it); the patient
    is told there is a reply. 403 for a thread someone else answers."""
    row = _staff_thread(session, thread_id, actor, lock=True)
    return _post(session, row, Author.staff, actor, now, text=text, image=image, key=key)


def image_of(session: Session, thread_id: str, image_id: str) -> tuple[bytes, str]:
    found = repo.image(_conn(session), thread_id, image_id)
    if found is None:
        raise ImageNotFoundError()
    return bytes(found["data"]), str(found["media_type"])


def patient_image(session: Session, thread_id: str, image_id: str, pid: str | None) -> tuple[bytes, str]:
    _patient_thread(session, thread_id, pid)
    return image_of(session, thread_id, image_id)


def staff_image(session: Session, thread_id: str, image_id: str, actor: Actor, now: datetime) -> tuple[bytes, str]:
    """An image of a thread the staff member may see; the read is audited."""
    row = _staff_thread(session, thread_id, actor)
    found = image_of(session, thread_id, image_id)
    record(session, actor, "consult:image:view", now, subject_id=thread_id, patient_id=row["patient_id"],
           image_id=image_id)
    return found


# --- the hospital's side ----------------------------------------------------------------------

def staff_thread(session: Session, thread_id: str, actor: Actor, now: datetime, *, after: int = 0) -> dict[str, Any]:
    """A thread with its messages after `after`, for staff: audited `consult:thread:view` when it
    shows any message (a poll that finds nothing new is not a read of anything)."""
    conn = _conn(session)
    row = _staff_thread(session, thread_id, actor)
    doc = {**_thread_doc(conn, row, now), "messages": _messages(conn, thread_id, after)}
    adviser = _active_adviser(conn, actor.id)
    doc["can_claim"] = adviser is not None and _eligible(adviser, row) and row["state"] != State.closed
    doc["can_answer"] = (row["state"] != State.closed and adviser is not None
                         and (row["assignee_staff_id"] == actor.id or bool(doc["can_claim"])))
    doc["patient_name"] = patients.display_name(session, row["patient_id"], masked=True)
    if doc["messages"] or after == 0:
        record(session, actor, "consult:thread:view", now, subject_id=thread_id, patient_id=row["patient_id"],
               after=after or None)
    return doc


def claim(session: Session, thread_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """Take an unclaimed routed thread from the queue; two advisers at once: exactly one gets it
    (409 `consult.already_claimed` for the other). Claiming one's own again changes nothing."""
    conn = _conn(session)
    row = _thread(conn, thread_id)
    adviser = _active_adviser(conn, actor.id)
    if adviser is None:
        raise NotAdviserError()
    if row["assignee_staff_id"] == actor.id:
        return thread_view(session, thread_id, now)
    if row["assignee_staff_id"] is not None:
        if adviser["department_id"] != row["department_id"]:
            raise ThreadNotFoundError()
        raise AlreadyClaimedError()
    if not _eligible(adviser, row):
        raise ThreadNotFoundError()
    if row["state"] == State.closed:
        raise ThreadClosedError()
    if not repo.claim(conn, thread_id, actor.id, now):
        raise AlreadyClaimedError()
    record(session, actor, "consult:thread:claim", now, subject_id=thread_id, patient_id=row["patient_id"],
           department_id=row["department_id"])
    return thread_view(session, thread_id, now)


def _close(session: Session, row: RowMapping, actor: Actor, now: datetime, by: str) -> None:
    conn = _conn(session)
    if not repo.close(conn, row["id"], now, by, by):
        raise ThreadClosedError()
    pid = row["patient_id"]
    record(session, actor, "consult:thread:close", now, subject_id=row["id"], patient_id=pid,
           on_behalf_of=pid if by == "patient" and actor.id != pid else None, by=by, reason=by)
    if by != "patient":
        enqueue_many(conn, [("consult.closed", pid, {"patient_id": pid, "thread_id": row["id"]})], now)


def close_as_patient(session: Session, thread_id: str, pid: str | None, actor: Actor, now: datetime) -> dict[str, Any]:
    """The patient ends the consultation (409 `consult.closed` when it already is)."""
    row = _patient_thread(session, thread_id, pid)
    _close(session, row, actor, now, "patient")
    return thread_view(session, thread_id, now)


def close_as_staff(session: Session, thread_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """The adviser (or an admin) ends the consultation; the patient is told and may rate it."""
    row = _staff_thread(session, thread_id, actor)
    if actor.role not in _ANY_THREAD and row["assignee_staff_id"] not in (None, actor.id):
        raise NotAssigneeError()
    _close(session, row, actor, now, "staff")
    return thread_view(session, thread_id, now)


def rate(session: Session, thread_id: str, patient_id: str | None, body: RatingIn, actor: Actor,
         now: datetime) -> dict[str, Any]:
    """1–5 stars and an optional comment, once per closed thread (409 before it closes and
    the second time: the rating's primary key decides between two at once)."""
    row = _patient_thread(session, thread_id, patient_id)
    pid = row["patient_id"]
    if row["state"] != State.closed:
        raise ThreadNotClosedError()
    comment = body.comment.strip() if body.comment and body.comment.strip() else None
    if not repo.rate(_conn(session), {"thread_id": thread_id, "patient_id": pid, "stars": body.stars,
                                      "comment": comment, "created_at": now}):
        raise AlreadyRatedError()
    record(session, actor, "consult:thread:rate", now, subject_id=thread_id, patient_id=pid, stars=body.stars,
           on_behalf_of=pid if actor.id != pid else None)
    return thread_view(session, thread_id, now)


def queue(session: Session, actor: Actor, now: datetime, *, limit: int = 200) -> dict[str, Any]:
    """The adviser's work: threads waiting for the hospital (their own and the unclaimed ones of
    their department and profession; every one for admins), longest wait first, each with the
    minutes waited, the response-time target and an overdue flag; and their threads waiting for
    the patient. Names masked (张*明); no subject or text (opening a thread is the audited read)."""
    conn = _conn(session)
    if actor.role in _ANY_THREAD:
        pairs: list[tuple[str, str]] | None = None
        adviser = _active_adviser(conn, actor.id)
    else:
        adviser = _active_adviser(conn, actor.id)
        if adviser is None:
            return {"adviser": None, "response_target_minutes": get_settings().consult_response_minutes,
                    "items": [], "mine": []}
        pairs = [(adviser["department_id"], adviser["profession"])]
    waiting = repo.queue(conn, actor.id, pairs, limit)
    mine = repo.assigned(conn, actor.id, limit) if adviser is not None else []

    def item(r: RowMapping) -> dict[str, Any]:
        doc = _thread_doc(conn, r, now)
        doc.pop("subject")
        doc["patient_name"] = patients.display_name(session, r["patient_id"], masked=True)
        doc["mine"] = r["assignee_staff_id"] == actor.id
        return doc

    return {"adviser": _adviser_doc(adviser) if adviser is not None else None,
            "response_target_minutes": get_settings().consult_response_minutes,
            "items": [item(r) for r in waiting], "mine": [item(r) for r in mine]}


# --- jobs and retention -----------------------------------------------------------------------

def close_idle(session: Session, now: datetime, *, limit: int = 200) -> int:
    """Job step (`close-consultations`): close answered threads with no message for
    `consult_idle_hours` (one batch); each patient is told and may rate it."""
    conn = _conn(session)
    before = states.idle_cutoff(now, get_settings().consult_idle_hours)
    closed = 0
    for r in repo.idle(conn, before, limit):
        if not repo.close_idle(conn, r["id"], before, now):
            continue
        closed += 1
        record(session, Actor.system("consult.close_idle"), "consult:thread:close", now, subject_id=r["id"],
               patient_id=r["patient_id"], by="system", reason="inactivity")
        enqueue_many(conn, [("consult.closed", r["patient_id"], {"patient_id": r["patient_id"],
                                                                 "thread_id": r["id"]})], now)
    return closed


def purge(session: Session, cutoff: datetime) -> int:
    """Retention (kit.retention kind `consult`): threads closed before `cutoff`, with their
    messages, images and rating, one batch."""
    return repo.purge_closed(_conn(session), cutoff, retention.BATCH)


retention.register(RETENTION_KIND, RETENTION_DAYS, purge, min_days=30,
                   description="closed consultations with their messages, images and rating")
