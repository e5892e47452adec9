"""Queue call use cases (候诊提醒): call the next checked-in patient of a session, call them
again, skip an absent one; the desk's board and each patient's position.

Calls of one session run one at a time (`kit.db.serialise` per session on PostgreSQL, BEGIN
IMMEDIATE on SQLite) and the partial unique index on live calls backs it: two desks calling at
the same moment never call the same patient. Each call is audited; the called patient and the
patient a call leaves exactly `queue_notice_ahead` away are told through the outbox (the latter
once per appointment, recorded under a primary key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor, record
from carepoints.config import get_settings
from carepoints.kit.bulk import savepoint
from carepoints.kit.db import serialise
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import as_utc, local_date
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.scheduling import service as scheduling
from carepoints.security import service as security
from carepoints.security.permissions import Role
from carepoints.services.queue import order
from carepoints.services.queue import repository as repo
from carepoints.services.queue.errors import (
    DepartmentNotFoundError,
    NotDeskRoleError,
    NothingCalledError,
    NotYourDepartmentError,
    QueueEmptyError,
    SessionClosedError,
    SessionNotFoundError,
)

_ANY_DEPARTMENT = (Role.admin, Role.integration)
_OPEN = ("called", "recalled")


def _conn(session: Session) -> Connection:
    return session.connection()


def _session(conn: Connection, session_id: str) -> RowMapping:
    row = repo.session_row(conn, session_id) if is_id(session_id) else None
    if row is None:
        raise SessionNotFoundError()
    return row


def departments_of(session: Session, actor: Actor) -> list[str] | None:
    """The departments whose sessions the actor calls; None = every department (admins, the HIS)."""
    if actor.kind == "api_key" or actor.role in _ANY_DEPARTMENT:
        return None
    return repo.desk_departments(_conn(session), actor.id)


def _authorise(conn: Connection, sess: RowMapping, actor: Actor) -> None:
    """Admins and integration keys call any session; front desk, nurses and clinicians only the
    sessions of their department (403 `queue.not_your_department`)."""
    if actor.kind == "api_key" or actor.role in _ANY_DEPARTMENT:
        return
    if sess["department_id"] not in repo.desk_departments(conn, actor.id):
        raise NotYourDepartmentError()


def _room(sess: RowMapping) -> str:
    return f"{sess['clinician_name']}诊室" if sess["clinician_name"] else "诊室"


def _waiting(conn: Connection, session_id: str) -> list[order.Waiting]:
    live, skipped = repo.call_state(conn, session_id)
    out = []
    for r in repo.checked_in(conn, session_id):
        if r["id"] in live or r["checked_in_at"] is None:
            continue
        skips, skipped_at = skipped.get(r["id"], (0, None))
        out.append(order.Waiting(
            appointment_id=r["id"], patient_id=r["patient_id"], seq=r["seq"], slot_start=as_utc(r["slot_start"]),
            checked_in_at=as_utc(r["checked_in_at"]), late=bool(r["late"]), priority=bool(r["priority"]),
            skips=skips, last_skipped_at=as_utc(skipped_at) if skipped_at is not None else None))
    return order.order(out)


def _call_doc(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "session_id": row["session_id"], "appointment_id": row["appointment_id"],
            "seq": row["seq"], "called_at": as_utc(row["called_at"]).isoformat(), "status": row["status"],
            "recall_count": row["recall_count"], "source": row["source"]}


def _tell_called(conn: Connection, sess: RowMapping, patient_id: str, appointment_id: str, seq: int,
                 now: datetime) -> None:
    enqueue_many(conn, [("queue.called", patient_id, {"patient_id": patient_id, "appointment_id": appointment_id,
                                                      "seq": seq, "room": _room(sess)})], now)


def _tell_near(conn: Connection, sess: RowMapping, queue: list[order.Waiting], now: datetime) -> None:
    """The patient exactly N ahead-count away after this call hears so, once per appointment."""
    n = get_settings().queue_notice_ahead
    if len(queue) <= n:
        return
    w = queue[n]
    if repo.note_once(conn, w.appointment_id, "near", now):
        enqueue_many(conn, [("queue.near", w.patient_id, {"patient_id": w.patient_id,
                                                          "appointment_id": w.appointment_id, "ahead": n,
                                                          "room": _room(sess)})], now)


def call_next(session: Session, session_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """Call the first waiting patient of the session (order.py). The caller's own open call of
    the session is done first. 409 `queue.empty` when nobody waits."""
    conn = _conn(session)
    sess = _session(conn, session_id)
    _authorise(conn, sess, actor)
    if sess["status"] != "open":
        raise SessionClosedError()
    serialise(conn, "queue:" + sess["id"])
    for prior in repo.open_calls(conn, sess["id"]):
        if prior["called_by"] == actor.id:
            repo.set_call(conn, prior["id"], _OPEN, status="done", closed_at=now)
    queue = _waiting(conn, sess["id"])
    for i, w in enumerate(queue):
        row = {"id": new_id(), "session_id": sess["id"], "appointment_id": w.appointment_id, "seq": w.seq,
               "called_at": now, "called_by": actor.id, "source": "his" if actor.kind == "api_key" else "staff",
               "recall_count": 0, "status": "called", "checked_in_at": w.checked_in_at, "closed_at": None}
        try:
            with savepoint(conn, "cp_queue_call"):
                repo.add_call(conn, row)
        except IntegrityError:
            continue  # called by another desk in between (the unique index decided): the next one
        record(session, actor, "queue:call:call", now, subject_id=row["id"], patient_id=w.patient_id,
               appointment_id=w.appointment_id, session_id=sess["id"])
        _tell_called(conn, sess, w.patient_id, w.appointment_id, w.seq, now)
        _tell_near(conn, sess, queue[i + 1:], now)
        return _call_doc(row)
    raise QueueEmptyError()


def _open_call(conn: Connection, session_id: str, actor: Actor) -> RowMapping:
    """The caller's latest open call of the session, else the session's latest open call."""
    calls = sorted(repo.open_calls(conn, session_id), key=lambda r: (as_utc(r["called_at"]), r["id"]), reverse=True)
    mine = [c for c in calls if c["called_by"] == actor.id]
    if not (mine or calls):
        raise NothingCalledError()
    return (mine or calls)[0]


def recall(session: Session, session_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """Call the current patient again (过号重呼): the recall count rises, the patient is told again.
    409 `queue.nothing_called` when no call is open."""
    conn = _conn(session)
    sess = _session(conn, session_id)
    _authorise(conn, sess, actor)
    serialise(conn, "queue:" + sess["id"])
    call = _open_call(conn, sess["id"], actor)
    if not repo.set_call(conn, call["id"], _OPEN, status="recalled", recall_count=call["recall_count"] + 1):
        raise NothingCalledError()
    patient_id = _patient_of(conn, sess["id"], call["appointment_id"])
    record(session, actor, "queue:call:recall", now, subject_id=call["id"], patient_id=patient_id,
           appointment_id=call["appointment_id"], session_id=sess["id"])
    if patient_id is not None:
        _tell_called(conn, sess, patient_id, call["appointment_id"], call["seq"], now)
    return _call_doc({**call, "status": "recalled", "recall_count": call["recall_count"] + 1})


def _patient_of(conn: Connection, session_id: str, appointment_id: str) -> str | None:
    for r in repo.checked_in(conn, session_id):
        if r["id"] == appointment_id:
            return str(r["patient_id"])
    return None


def skip(session: Session, session_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """The called patient is absent (过号): the call is closed as skipped. Skipped once, the patient
    goes to the end of the queue (`requeued: true`); skipped twice, out of the queue."""
    conn = _conn(session)
    sess = _session(conn, session_id)
    _authorise(conn, sess, actor)
    serialise(conn, "queue:" + sess["id"])
    call = _open_call(conn, sess["id"], actor)
    if not repo.set_call(conn, call["id"], _OPEN, status="skipped", closed_at=now):
        raise NothingCalledError()
    _live, skipped = repo.call_state(conn, sess["id"])
    skips = skipped.get(call["appointment_id"], (1, now))[0]
    record(session, actor, "queue:call:skip", now, subject_id=call["id"],
           patient_id=_patient_of(conn, sess["id"], call["appointment_id"]),
           appointment_id=call["appointment_id"], session_id=sess["id"])
    return {**_call_doc({**call, "status": "skipped"}), "requeued": skips < order.MAX_SKIPS}


def board(session: Session, session_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """The desk's view: the current number, the open calls and the waiting list in call order
    with masked names (张*明), priority and late flags."""
    conn = _conn(session)
    sess = _session(conn, session_id)
    _authorise(conn, sess, actor)
    queue = _waiting(conn, sess["id"])
    latest = repo.latest(conn, sess["id"])
    interval = order.average_interval([as_utc(t) for t in repo.call_times(conn, sess["id"])],
                                      get_settings().queue_estimate_min_calls)
    return {
        "session": _session_doc(sess),
        "current": None if latest is None else {"seq": latest["seq"], "status": latest["status"],
                                                 "appointment_id": latest["appointment_id"]},
        "calling": [_call_doc(c) for c in repo.open_calls(conn, sess["id"])],
        "waiting": [{"appointment_id": w.appointment_id, "seq": w.seq,
                     "name": patients.display_name(session, w.patient_id, masked=True),
                     "priority": w.priority, "late": w.late, "skipped": w.skips > 0} for w in queue],
        "average_minutes": None if interval is None else round(interval, 1),
    }


def _session_doc(sess: RowMapping) -> dict[str, Any]:
    tz = get_settings().tz
    return {"id": sess["id"], "department": sess["department_id"], "department_zh": sess["department_zh"],
            "department_en": sess["department_en"], "clinician_name": sess["clinician_name"],
            "date": sess["day"].isoformat(), "start": as_utc(sess["starts_at"]).astimezone(tz).strftime("%H:%M"),
            "end": as_utc(sess["ends_at"]).astimezone(tz).strftime("%H:%M"), "room": _room(sess)}


def todays_sessions(session: Session, actor: Actor, now: datetime) -> list[dict[str, Any]]:
    """Today's open sessions the actor may call (their departments; every one for admins)."""
    tz = get_settings().tz
    rows = repo.sessions_of_day(_conn(session), local_date(now, tz), departments_of(session, actor))
    return [{"id": r["id"], "department_zh": r["department_zh"], "department_en": r["department_en"],
             "clinician_name": r["clinician_name"],
             "start": as_utc(r["starts_at"]).astimezone(tz).strftime("%H:%M"),
             "end": as_utc(r["ends_at"]).astimezone(tz).strftime("%H:%M")} for r in rows]


def positions(session: Session, patient_id: str, now: datetime) -> list[dict[str, Any]]:
    """For each of the patient's checked-in appointments today: the session's current number,
    how many are ahead, and the estimated wait in minutes ((ahead + 1) × the mean minutes
    between today's calls of the session; None with fewer than `queue_estimate_min_calls`
    calls). Counts only: never who is ahead."""
    conn = _conn(session)
    settings = get_settings()
    if not patients.exists(session, patient_id):
        raise PatientNotFoundError()
    out = []
    for a in repo.patient_checked_in(conn, [patient_id], local_date(now, settings.tz)):
        sess = repo.session_row(conn, a["session_id"])
        assert sess is not None  # noqa: S101 - a foreign key
        latest = repo.latest(conn, a["session_id"])
        live = repo.live_call_of(conn, a["id"])
        queue = _waiting(conn, a["session_id"])
        ahead = order.ahead_of(queue, a["id"])
        interval = order.average_interval([as_utc(t) for t in repo.call_times(conn, a["session_id"])],
                                          settings.queue_estimate_min_calls)
        if live is not None and live["status"] in _OPEN:
            state = "called"
        elif ahead is not None:
            state = "waiting"
        else:
            state = "out"  # skipped twice, or seen
        out.append({"appointment_id": a["id"], "session_id": a["session_id"], "seq": a["seq"],
                    "department_zh": sess["department_zh"], "department_en": sess["department_en"],
                    "room": _room(sess), "current_seq": None if latest is None else latest["seq"],
                    "ahead": ahead, "state": state,
                    "estimate_minutes": order.estimate_minutes(ahead, interval) if ahead is not None else None})
    return out


def assign_desk(session: Session, department_id: str, staff_user_id: str, actor: Actor,
                now: datetime) -> dict[str, Any]:
    """Let a front-desk or nurse user call the sessions of a department (again: no change)."""
    conn = _conn(session)
    known = {d["id"] for d in scheduling.departments(session)}
    if not is_id(department_id) or department_id not in known:
        raise DepartmentNotFoundError()
    user = security.staff_user(session, staff_user_id)
    if user["role"] not in (Role.frontdesk, Role.nurse):
        raise NotDeskRoleError()
    created = repo.assign(conn, department_id, staff_user_id, now)
    if created:
        record(session, actor, "queue:desk:assign", now, subject_id=staff_user_id, department_id=department_id)
    return {"department_id": department_id, "staff_user_id": staff_user_id, "created": created}
