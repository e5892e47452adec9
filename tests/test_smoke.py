from __future__ import annotations

from datetime import datetime, timedelta

from tests.conftest import Db
from tests.helpers import balance, bp, enrol, event, ingest


def test_welcome_and_seven_day_streak(db: Db, now: datetime) -> None:
    pid = enrol(now)
    assert balance(pid, now) == 100
    day0 = now - timedelta(days=10)
    evs = [event(pid, "health.measurement", day0 + timedelta(days=d, hours=h), bp()) for d in range(7) for h in (0, 9)]
    ingest(now, *evs)
    assert balance(pid, now) == 340
