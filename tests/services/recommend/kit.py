"""What the recommendation tests share: a patient's token, the engagement data a snapshot reads
(conditions, readings, education items, lectures, medication plans, an online booking) made
through the real API and services, and reads of the switch rows and the audit log."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from carepoints.audit.models import AuditEntry
from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.scheduling import service as sch
from carepoints.scheduling.schemas import AppointmentCreate
from carepoints.security import otp
from carepoints.services.recommend.models import RecommendationSetting

if TYPE_CHECKING:
    from tests.api_client import Api

_n = iter(range(10**6))


def patient_token(pid: str) -> str:
    token, _ttl = otp.patient_token(pid, utc_now(), get_settings())
    return token


def condition(api: Api, pid: str, code: str) -> None:
    r = api.request("PUT", f"/patients/{pid}/conditions/{code}", {"source": "his"})
    assert r.status_code in (200, 201), r.text


def reading(api: Api, pid: str, kind: str = "blood_pressure") -> None:
    body: dict[str, Any] = {"kind": kind, "taken_at": (api.now() - timedelta(minutes=2)).isoformat(),
                            "provenance": "self_reported"}
    body.update({"systolic": 128, "diastolic": 82} if kind == "blood_pressure" else {"glucose": 6.1})
    r = api.post(f"/patients/{pid}/measurements", body)
    assert r.status_code == 201, r.text


def item(api: Api, zh: str, *, conditions: tuple[str, ...] = (), tags: tuple[str, ...] = ()) -> str:
    r = api.post("/education/items", {
        "kind": "article", "title": {"zh": zh}, "body_text": "正文", "duration_seconds": 60,
        "tags": list(tags), "conditions": list(conditions), "status": "published",
        "quiz": {"pass_mark": 60, "questions": [{"text": "对吗?", "choices": ["对", "错"], "correct": [0]}]}})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def lecture(api: Api, zh: str, *, days: int = 2, seats: int = 30) -> str:
    start = api.now() + timedelta(days=days)
    r = api.post("/lectures", {"title": {"zh": zh}, "starts_at": start.isoformat(),
                               "ends_at": (start + timedelta(hours=1)).isoformat(), "place": "门诊楼报告厅",
                               "seats": seats})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def plan(api: Api, pid: str) -> str:
    today = api.now().date()
    r = api.post(f"/patients/{pid}/medication-plans", {"medicine_name": "药品A", "times": ["00:00", "23:59"],
                                                        "start_date": (today - timedelta(days=1)).isoformat()})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def followup(api: Api, pid: str, days_ago: int = 1) -> None:
    """A routine follow-up after a discharge `days_ago` days back, its one step due a day after it."""
    q = api.post("/questionnaires", {"code": "rec_fu", "title": {"zh": "出院随访"}, "purpose": "followup",
                                     "questions": [
        {"id": "ok", "text": {"zh": "感觉好吗"}, "type": "single", "required": True,
         "choices": [{"value": "yes", "label": {"zh": "好"}}, {"value": "no", "label": {"zh": "不好"}}]}]})
    assert q.status_code in (200, 201), q.text
    r = api.post("/followup-plans", {"patient_id": pid, "trigger": "discharge", "questionnaire": "rec_fu",
                                     "occurred_on": (api.now().date() - timedelta(days=days_ago)).isoformat(),
                                     "channel": "app", "offsets": [1], "encounter_id": f"E{next(_n)}"})
    assert r.status_code == 201, r.text


def book_online(pid: str) -> None:
    """An appointment the patient booked online (the booking tests' hospital, two days ahead)."""
    from tests.pages.test_patient_booking import Hospital

    sess = Hospital().ahead(2)
    with write_tx() as s:
        sch.book(s, AppointmentCreate(patient_id=pid, session_id=sess["id"], channel="online",
                                      idempotency_key=f"rec{next(_n)}"), utc_now())


def switch_rows() -> list[dict[str, Any]]:
    t = RecommendationSetting.__table__
    with read_tx() as s:
        return [dict(r) for r in s.connection().execute(select(t.c.patient_id, t.c.enabled)).mappings()]


def audits(action: str) -> list[dict[str, Any]]:
    t = AuditEntry.__table__
    with read_tx() as s:
        rows = s.connection().execute(select(t.c.actor_kind, t.c.patient_id, t.c.details)
                                      .where(t.c.action == action).order_by(t.c.at, t.c.id)).mappings()
        return [dict(r) for r in rows]
