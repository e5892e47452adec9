"""Issue 5's acceptance check, over HTTP: 30 days of one self-measured blood pressure a
day pay 100 (welcome) + 50 (first) + 30 × 10 + 4 × 50 (7-day streaks) + 200 (30-day
streak) = 850 points; a reading of 190/115 raises one care alert and one advice message."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING

from tests.engagement.test_health_kit import alerts, bp_body, outbox

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def test_thirty_days_of_self_measured_blood_pressure(api: Api) -> None:
    pid = api.enrol()
    start = api.now() - timedelta(days=29, minutes=2)
    rules: Counter[str] = Counter()
    for d in range(30):
        r = api.post(f"/patients/{pid}/measurements", bp_body(start + timedelta(days=d), 128, 82,
                                                              idempotency_key=f"day-{d}"))
        assert r.status_code == 201, r.text
        assert r.json()["alert"] is None
        rules.update(a["rule"] for a in r.json()["awards"])
    assert rules == {"health_checkin": 30, "first_checkin": 1, "checkin_streak_7": 4, "checkin_streak_30": 1}
    assert api.balance(pid) == 100 + 50 + 30 * 10 + 4 * 50 + 200 == 850
    assert alerts(pid) == []

    r = api.post(f"/patients/{pid}/measurements", bp_body(api.now() - timedelta(minutes=1), 190, 115))
    assert r.status_code == 201, r.text
    [alert] = alerts(pid)
    assert r.json()["alert"] == {"id": alert["id"]}
    assert (alert["kind"], alert["severity"], alert["source_ref"]) == ("abnormal_reading", "high", r.json()["event_id"])
    assert outbox("health.advice", pid) == [{"patient_id": pid, "event_id": r.json()["event_id"], "variant": "bp_high"}]
    queue = api.get("/care-alerts", params={"patient_id": pid}).json()["items"]
    assert [q["id"] for q in queue] == [alert["id"]]
