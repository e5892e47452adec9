"""Queue call API (候诊提醒): the desk (front desk, nurses, clinicians of the session's department)
or the HIS (an integration key) call the next checked-in patient, call again, skip; the desk's
board with masked names; each patient's position (counts only). Admins assign desk staff to a
department."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.service import Principal
from carepoints.services.queue import service

router = APIRouter(tags=["queue"])

_call = require("queue:call")


@router.post("/sessions/{session_id}/queue/call-next")
def call_next(session_id: str, p: Principal = Depends(_call)) -> JSON:
    """Call the next waiting patient (priority check-ins first, then by turn; late arrivals after
    the on-time patients whose slots began before they arrived; skipped once → at the end).
    Answers the call: {id, appointment_id, seq, called_at, status}. Two desks at once never call
    the same patient. 409 `queue.empty` when nobody waits; 403 `queue.not_your_department`."""
    with write_tx() as session:
        return JSON(service.call_next(session, session_id, p.actor(), utc_now()))


@router.post("/sessions/{session_id}/queue/recall")
def recall(session_id: str, p: Principal = Depends(_call)) -> JSON:
    """Call the current patient again (the caller's latest open call, else the session's).
    409 `queue.nothing_called` when no call is open."""
    with write_tx() as session:
        return JSON(service.recall(session, session_id, p.actor(), utc_now()))


@router.post("/sessions/{session_id}/queue/skip")
def skip(session_id: str, p: Principal = Depends(_call)) -> JSON:
    """The called patient is absent: skipped once they go to the end of the queue (`requeued`),
    twice they leave it. 409 `queue.nothing_called` when no call is open."""
    with write_tx() as session:
        return JSON(service.skip(session, session_id, p.actor(), utc_now()))


@router.get("/sessions/{session_id}/queue")
def board(session_id: str, p: Principal = Depends(require("queue:read"))) -> JSON:
    """The session's queue: current number, open calls, the waiting list in call order with
    masked names, and the mean minutes between calls."""
    with read_tx() as session:
        return JSON(service.board(session, session_id, p.actor(), utc_now()))


@router.get("/patients/{patient_id}/queue")
def patient_queue(patient_id: str, _p: Principal = Depends(require("appointments:read"))) -> JSON:
    """The patient's checked-in appointments today: current number, how many are ahead, the
    estimated wait (none with too few calls today). A patient token: its own (or proxied)."""
    with read_tx() as session:
        return JSON({"items": service.positions(session, patient_id, utc_now())})


@router.put("/departments/{department_id}/queue-staff/{staff_user_id}")
def assign_desk(department_id: str, staff_user_id: str, p: Principal = Depends(require("queue:assign"))) -> JSON:
    """Let a front-desk or nurse user call the sessions of the department (idempotent)."""
    with write_tx() as session:
        return JSON(service.assign_desk(session, department_id, staff_user_id, p.actor(), utc_now()))
