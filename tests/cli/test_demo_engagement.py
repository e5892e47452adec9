"""The demo hospital's engagement records (cli/demo.py `_engagement`): made once through
the real services, and a second load at the same clock adds nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text

from carepoints.cli import demo
from carepoints.kit.db import get_engine
from tests.conftest import Db

COUNTS = {
    "hypertension": "SELECT count(*) FROM patient_conditions WHERE code = 'hypertension' AND active",
    "diabetes": "SELECT count(*) FROM patient_conditions WHERE code = 'diabetes' AND active",
    "medication_plans": "SELECT count(*) FROM medication_plans WHERE status = 'active'",
    "abnormal_alerts": "SELECT count(*) FROM care_alerts WHERE kind = 'abnormal_reading'",
    "alerts": "SELECT count(*) FROM care_alerts",
    "abnormal_readings": "SELECT count(*) FROM measurements WHERE abnormal",
    "advice": "SELECT count(*) FROM outbox_messages WHERE topic = 'health.advice'",
    "education_items": "SELECT count(*) FROM education_items WHERE status = 'published'",
    "quiz_attempts": "SELECT count(*) FROM quiz_attempts WHERE passed",
    "completions": "SELECT count(*) FROM education_completions WHERE event_id IS NOT NULL",
    "lectures": "SELECT count(*) FROM lectures WHERE seats = 50 AND taken = 5",
    "registrations": "SELECT count(*) FROM lecture_registrations WHERE status = 'registered'",
    "questionnaires": "SELECT count(*) FROM questionnaires WHERE code = 'demo_rehab'",
    "followup_plans": "SELECT count(*) FROM followup_plans WHERE trigger = 'surgery' AND status = 'active'",
    "followup_steps": "SELECT count(*) FROM followup_steps",
    "answered_steps": "SELECT count(*) FROM followup_steps WHERE status = 'completed'",
    "posts_pending": "SELECT count(*) FROM community_posts WHERE status = 'pending'",
    "posts_approved": "SELECT count(*) FROM community_posts WHERE status = 'approved'",
    "advisers": "SELECT count(*) FROM consult_advisers WHERE active",  # (services.consult) the demo clinician
    "events": "SELECT count(*) FROM events",
    "audit": "SELECT count(*) FROM audit_log",
    "outbox": "SELECT count(*) FROM outbox_messages",
}


def _counts() -> dict[str, int]:
    with get_engine().connect() as conn:
        return {name: int(conn.execute(text(sql)).scalar_one()) for name, sql in COUNTS.items()}


def test_demo_engagement_is_made_once(db: Db, now: datetime) -> None:
    first = demo.load(now)
    assert "47 new engagement records" in first
    counts = _counts()
    assert {k: v for k, v in counts.items() if k not in ("events", "audit", "outbox")} == {
        "hypertension": 15, "diabetes": 8, "medication_plans": 5, "abnormal_alerts": 1, "alerts": 1,
        "abnormal_readings": 1, "advice": 1, "education_items": 1, "quiz_attempts": 3, "completions": 3,
        "lectures": 1, "registrations": 5, "questionnaires": 1, "followup_plans": 3, "followup_steps": 9,
        "answered_steps": 1, "posts_pending": 3, "posts_approved": 1, "advisers": 1}

    second = demo.load(now)
    assert "(0 new)" in second
    assert "0 new engagement records" in second
    assert _counts() == counts  # nothing added, not even an audit row or an outbox message
