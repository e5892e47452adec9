"""The draft simulation (rules.simulation) against a small set of real stored events whose
outcome is worked out by hand: per rule points, events paid and patients reached, for the
programme in force and for a draft, the difference; outside the window, revoked events and
other patients' limits do not leak in; nothing is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text

from carepoints.events import service as events
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.rules import governance, service, simulation
from carepoints.rules.programme import Programme
from tests.conftest import Db
from tests.helpers import enrol, event, ingest_one

SS = {"action": "pay"}


def _day(now: datetime, days_ago: int, minute: int) -> datetime:
    """`days_ago` days before now, 10:xx in Shanghai (02:xx UTC): one local day."""
    d = (now - timedelta(days=days_ago)).date()
    return datetime(d.year, d.month, d.day, 2, minute, tzinfo=UTC)


def _draft(changes: dict[str, Any]) -> Programme:
    with read_tx() as session:
        base = service.programmes(session).latest.programme
    return governance.validate(governance.apply_changes(base.model_dump(mode="json", by_alias=True), changes))


def _by_code(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["code"]: r for r in result["rules"]}


def _counts() -> tuple[int, int, int]:
    with read_tx() as session:
        conn = session.connection()
        return tuple(int(conn.execute(select(func.count()).select_from(text(t))).scalar() or 0)  # type: ignore[return-value]
                     for t in ("events", "rule_counters", "transfers"))


def test_simulation_matches_hand_computed_totals(db: Db) -> None:
    now = utc_now()
    a = enrol(now - timedelta(days=40))  # the welcome award lies outside the 30-day window
    b = enrol(now - timedelta(days=40))
    # A: four self-service uses in one local day (10 each, at most 30 a day): 10, 10, 10, capped
    for m in range(4):
        ingest_one(now, event(a, "selfservice.used", _day(now, 5, m), SS))
    # A: one more 35 days ago: outside the window
    ingest_one(now, event(a, "selfservice.used", _day(now, 35, 0), SS))
    # B: two uses in another day, one lecture, and one use that is revoked later
    ingest_one(now, event(b, "selfservice.used", _day(now, 3, 0), SS))
    ingest_one(now, event(b, "selfservice.used", _day(now, 3, 1), SS))
    ingest_one(now, event(b, "lecture.attended", _day(now, 2, 0), {"lecture_id": "L1"}))
    gone = ingest_one(now, event(b, "selfservice.used", _day(now, 1, 0), SS))
    with write_tx() as session:
        events.revoke(session, now=now, reason="test", event_id=gone["event_id"])

    # the draft: self-service 20 a time (still 30 a day), lectures retired
    draft = _draft({"rules": [{"code": "self_service", "points": 20}, {"code": "lecture", "status": "retired"}]})
    before = _counts()
    with read_tx() as session:
        result = simulation.simulate(session, draft, now, days=30)
    assert _counts() == before  # read only

    assert result["days"] == 30
    assert result["patients"] == 2
    assert result["events"] == 7  # 4 (A) + 3 (B): the old one and the revoked one are left out
    rules = _by_code(result)
    ss = rules["self_service"]
    # current: A 10+10+10 (4th over the day's 30), B 10+10
    assert ss["active"] == {"points": 50, "events": 5, "patients": 2}
    # draft: A 20 + 10 (the day's remaining room) and nothing more, B 20 + 10
    assert ss["draft"] == {"points": 60, "events": 4, "patients": 2}
    assert ss["difference"] == {"points": 10, "events": -1, "patients": 0}
    lec = rules["lecture"]
    assert lec["active"] == {"points": 30, "events": 1, "patients": 1}
    assert lec["draft"] == {"points": 0, "events": 0, "patients": 0}
    assert lec["difference"] == {"points": -30, "events": -1, "patients": -1}
    assert rules["welcome"]["active"]["events"] == 0
    assert result["total"]["active"] == {"points": 80, "events": 6, "patients": 2}
    assert result["total"]["draft"] == {"points": 60, "events": 4, "patients": 2}
    assert result["total"]["difference"] == {"points": -20, "events": -2, "patients": 0}
    assert rules["self_service"]["names"] == {"zh": "自助服务", "en": "Self-service"}


def test_simulation_of_an_unchanged_programme_is_what_was_paid(db: Db) -> None:
    now = utc_now()
    pid = enrol(now - timedelta(days=2))  # welcome 100 inside the window
    for m in range(2):  # 10 a day at most
        ingest_one(now, event(pid, "photo.checkin", _day(now, 1, m), {"task_id": "t1", "photo_id": f"p{m}"}))
    with read_tx() as session:
        same = service.programmes(session).at(now).programme
        result = simulation.simulate(session, same, now)
    rules = _by_code(result)
    assert rules["welcome"]["active"] == rules["welcome"]["draft"] == {"points": 100, "events": 1, "patients": 1}
    assert rules["photo_checkin"]["draft"] == {"points": 10, "events": 1, "patients": 1}
    assert result["total"]["difference"] == {"points": 0, "events": 0, "patients": 0}


def test_simulation_with_no_events(db: Db) -> None:
    now = utc_now()
    with read_tx() as session:
        result = simulation.simulate(session, _draft({"settings": {"annual_cap": 5000}}), now, days=7)
    assert result["events"] == result["patients"] == 0
    assert result["total"]["draft"] == {"points": 0, "events": 0, "patients": 0}
    assert all(r["difference"] == {"points": 0, "events": 0, "patients": 0} for r in result["rules"])
