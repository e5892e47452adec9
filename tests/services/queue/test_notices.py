"""The queue's messages (叫号 "请到…就诊", "还有N位就到您了") are reminders about the patient's own
visit: dispatched like the appointment reminder, so a patient who withdrew the `notifications`
consent gets none of them, and one who consents gets them in the inbox (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update

from carepoints.kit.db import write_tx
from carepoints.notifications.dispatch import essential
from carepoints.patients.models import Consent
from tests.conftest import Db
from tests.helpers import enrol
from tests.notifications.kit import enqueue, inbox_rows, run

MESSAGES = {"appointment.reminder": {"slot_time": "09:30"}, "queue.called": {"seq": 7, "room": "李医生诊室"},
            "queue.near": {"ahead": 3, "room": "李医生诊室"}}


def test_queue_messages_follow_the_appointment_reminder_without_consent(db: Db, now: datetime) -> None:
    assert {t: essential(t) for t in MESSAGES} == dict.fromkeys(MESSAGES, essential("appointment.reminder"))
    consent = {"version": "1.0", "accepted_at": (now - timedelta(days=1)).isoformat(),
               "purposes": ["points_programme", "notifications"]}
    withdrew, consents = enrol(now, consent=consent), enrol(now, consent=consent)
    with write_tx() as s:
        s.execute(update(Consent).where(Consent.patient_id == withdrew, Consent.purpose == "notifications")
                  .values(withdrawn_at=now))
    for pid in (withdrew, consents):
        for topic, fields in MESSAGES.items():
            enqueue(now, topic, {"patient_id": pid, "appointment_id": f"a-{pid}", **fields})
    run(now)
    got = {pid: {m["topic"] for m in inbox_rows(recipient_id=pid)} & set(MESSAGES) for pid in (withdrew, consents)}
    assert got == {withdrew: set(), consents: set(MESSAGES)}
    [near] = inbox_rows(recipient_id=consents, topic="queue.near")
    assert near["body_zh"] == "还有3位就到您了,请到李医生诊室门口候诊。"
