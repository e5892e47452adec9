"""Today's live figures shared for `analytics_live_seconds` (analytics/live.py), on SQLite and
PostgreSQL: a second read within the window answers the same figure without computing it again
and says when it was computed; after the window (or with 0) a new event shows; several requests
asking at once compute it once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from carepoints.analytics import live
from carepoints.config import reset_settings
from carepoints.kit.db import read_tx
from tests.analytics.points_world import NOW, TODAY, World, at, build, run, total, values
from tests.conftest import Db
from tests.helpers import bp, event, ingest_one


@pytest.fixture
def shared_for(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CAREPOINTS_ANALYTICS_LIVE_SECONDS", "2")
    reset_settings()
    live.forget()
    yield
    live.forget()
    reset_settings()


def _issued_today() -> tuple[int, str | None]:
    report = run("points", TODAY, TODAY)
    return values(total(report))["issued"], report.extra.get("live_at")


def _checkin(world: World, hhmm: str) -> int:
    """B's blood pressure at `hhmm` today; answers the points it earned (more than 0)."""
    outcome = ingest_one(at(TODAY, hhmm), event(world.b, "health.measurement", at(TODAY, hhmm), bp()))
    earned = sum(int(a["points"]) for a in outcome["awards"])
    assert earned > 0, outcome
    return earned


def test_today_is_shared_within_the_window_then_computed_anew(db: Db, shared_for: None) -> None:
    world = build()
    first, first_at = _issued_today()
    assert first_at is not None
    assert datetime.fromisoformat(first_at) <= datetime.now(datetime.fromisoformat(first_at).tzinfo)
    earned = _checkin(world, "10:40")
    again, again_at = _issued_today()
    assert (again, again_at) == (first, first_at)  # within 2 s: the shared figure
    time.sleep(2.1)
    later, later_at = _issued_today()
    assert later == first + earned
    assert later_at != first_at
    # closed days never come from the shared figures
    assert "live_at" not in run("points", TODAY.replace(day=8), TODAY.replace(day=14)).extra


def test_zero_seconds_computes_every_read(db: Db) -> None:
    world = build()
    first, _ = _issued_today()
    earned = _checkin(world, "10:41")
    assert _issued_today()[0] == first + earned


def test_requests_asking_at_once_compute_once(db: Db, shared_for: None) -> None:
    calls: list[int] = []
    gate = threading.Barrier(6)
    answers: list[object] = []

    def compute() -> list[int]:
        calls.append(1)
        time.sleep(0.2)  # long enough for the others to arrive and wait
        return [len(calls)]

    def ask() -> None:
        gate.wait()
        with read_tx() as session:
            answers.append(live.shared(session, ("analytics.live", "test", TODAY), compute))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(calls) == 1
    assert answers == [[1]] * 6
    with read_tx() as session:  # another read transaction inside the window: still shared
        assert live.shared(session, ("analytics.live", "test", TODAY), compute) == [1]
        assert live.computed_at(session) is not None
    assert len(calls) == 1
    assert NOW.date() == TODAY  # the key names today's date of the test clock
