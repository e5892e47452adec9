"""Recommendations API (为您推荐): a patient's suggested tasks and content with the reason for
each (`recommendations:read`: the patient, a proxy with view, the hospital's app, the front desk
and admins; staff reads are audited), and the patient's switch to turn them off and on
(`recommendations:write`: the patient, the hospital's app acting for them, the front desk and
admins; a proxy may not), stored and audited."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.service import Principal
from carepoints.services.recommend import service
from carepoints.services.recommend.schemas import SwitchIn

router = APIRouter(tags=["recommendations"])
_read = require("recommendations:read")
_write = require("recommendations:write")


@router.get("/patients/{patient_id}/recommendations")
def get_recommendations(patient_id: str, limit: int | None = Query(None, ge=1, le=20),
                        elderly: bool | None = Query(None), p: Principal = Depends(_read)) -> JSON:
    """The patient's recommendations, best first: kind (task, content, lecture, service), target
    (a link of the patient pages), score, and the reason (code, zh, en) with the facts it rests on.
    At most `limit` (default: the rules' number, fewer in elderly mode, from `elderly` or the
    patient's setting). Switched off: `enabled: false` and no items."""
    staff = p.kind == "staff"
    with (write_tx() if staff else read_tx()) as session:
        pid = service.patient_id(session, patient_id)
        doc = service.recommendations(session, pid, utc_now(), limit=limit, elderly=elderly,
                                      viewer=p.actor() if staff else None)
    return JSON(doc)


@router.get("/patients/{patient_id}/recommendations/settings")
def get_recommendation_settings(patient_id: str, p: Principal = Depends(_read)) -> JSON:
    """Whether the patient's recommendations are on (`enabled`, never set: on) and since when."""
    with read_tx() as session:
        return JSON(service.setting(session, service.patient_id(session, patient_id)))


@router.put("/patients/{patient_id}/recommendations/settings")
def put_recommendation_settings(patient_id: str, body: SwitchIn, p: Principal = Depends(_write)) -> JSON:
    """Turn the patient's recommendations on or off (`{"enabled": false}`). The same value again
    answers `changed: false` and changes nothing; a change is audited `recommend:settings:update`."""
    with write_tx() as session:
        pid = service.patient_id(session, patient_id)
        return JSON(service.switch(session, pid, body.enabled, p.actor(), utc_now()))
