"""The forecast use cases on SQLite and PostgreSQL over a real booking history: what counts as
demand, the held-back evaluation per department, the suggested capacities, applying one through
the scheduling service (audited, once), a refusal below the booked count that marks nothing,
a newer run superseding the older suggestions, and concurrent applies of one suggestion."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from carepoints.audit.models import AuditEntry
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.scheduling.capacity import CapacityBelowBookedError
from carepoints.services.forecast import service
from carepoints.services.forecast.errors import SuggestionSupersededError
from carepoints.services.forecast.models import ForecastSuggestion
from tests.conftest import Db
from tests.locks import oks, race
from tests.services.forecast.world import ADMIN, Demand, capacity_of, next_weekday, run, suggestion_for


def audits(action: str) -> int:
    with read_tx() as s:
        return int(s.execute(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action))
                   .scalar_one())


def test_demand_counts_bookings_and_the_waitlist(db: Db) -> None:
    w = Demand(weeks=2)
    monday = next_weekday(w.today - timedelta(days=15), 1)  # 8 to 14 days ago
    with read_tx() as s:
        cells = service.demand_history(s, w.today - timedelta(days=14), w.today - timedelta(days=1))[w.department]
    # 16 attended (4 per hour) and 4 waiting spread over the four hours of the session
    assert [cells[(monday, h)] for h in (8, 9, 10, 11)] == [5.0, 5.0, 5.0, 5.0]
    tuesday = monday + timedelta(days=1)
    assert [cells.get((tuesday, h), 0.0) for h in (8, 9, 10, 11)] == [4.0, 4.0, 2.0, 0.0]


def test_a_run_suggests_and_applying_changes_the_capacity_once(db: Db) -> None:
    w = Demand()
    doc = run()
    dep = next(d for d in doc["departments"] if d["department_id"] == w.department)
    assert dep["holdout_days"] == 28
    assert set(dep["models"]) == {"weekday_hour_mean", "seasonal_naive", "holt_winters", "flat_mean"}
    assert dep["models"]["weekday_hour_mean"]["wape"] == 0.0  # the history is the same every week
    assert dep["models"]["flat_mean"]["wape"] > 0.5  # no weekly pattern: far off
    assert dep["chosen"] == "weekday_hour_mean"
    assert doc["overall"]["wape"] == 0.0
    assert len(dep["series"]["days"]) == 56 + 14
    tue, thu = suggestion_for(doc, w.tuesday["id"]), suggestion_for(doc, w.thursday["id"])
    assert (tue["demand"], tue["current_capacity"], tue["suggested_capacity"]) == (10.0, 8, 11)
    assert tue["status"] == "pending"
    assert (thu["demand"], thu["current_capacity"], thu["suggested_capacity"]) == (4.0, 16, 5)
    assert tue["fit"] == 16
    assert not tue["capped"]
    # off-peak: Thursday's patients all come at 08:00; Tuesday's 8 slots (08:00-10:00) are all wanted
    windows = [(x["weekday"], x["start"], x["end"], x["demand"], x["slots"]) for x in dep["off_peak"]]
    assert windows == [(4, "09:00", "12:00", 0.0, 12.0)]

    with write_tx() as s:
        applied = service.apply(s, tue["id"], ADMIN, utc_now())
    assert applied["changed"] is True
    assert applied["status"] == "applied"
    assert applied["previous_capacity"] == 8
    assert capacity_of(w.tuesday["id"]) == (11, 11)
    with write_tx() as s:
        again = service.apply(s, tue["id"], ADMIN, utc_now())
    assert again["changed"] is False
    assert capacity_of(w.tuesday["id"]) == (11, 11)
    assert audits("forecast:suggestion:apply") == 1
    assert audits("scheduling:session:capacity") == 1
    assert audits("forecast:run:create") == 1


def test_applying_below_the_booked_count_is_refused_and_marks_nothing(db: Db) -> None:
    w = Demand()
    thu = suggestion_for(run(), w.thursday["id"])
    assert thu["suggested_capacity"] == 5
    w.book(w.thursday["id"], 6)  # booked after the forecast was made
    with pytest.raises(CapacityBelowBookedError) as err, write_tx() as s:
        service.apply(s, thu["id"], ADMIN, utc_now())
    assert err.value.status_code == 409
    assert "6" in err.value.detail
    assert capacity_of(w.thursday["id"]) == (16, 16)
    with read_tx() as s:
        status = s.execute(select(ForecastSuggestion.status).where(ForecastSuggestion.id == thu["id"])).scalar_one()
    assert status == "pending"
    assert audits("forecast:suggestion:apply") == 0
    # a new run takes the bookings into account: never below them
    assert suggestion_for(run(), w.thursday["id"])["suggested_capacity"] == 6


def test_a_newer_run_supersedes_pending_suggestions(db: Db) -> None:
    w = Demand(weeks=4)
    first = suggestion_for(run(), w.tuesday["id"])
    second = suggestion_for(run(), w.tuesday["id"])
    with pytest.raises(SuggestionSupersededError), write_tx() as s:
        service.apply(s, first["id"], ADMIN, utc_now())
    with write_tx() as s:
        assert service.apply(s, second["id"], ADMIN, utc_now())["changed"] is True
    with read_tx() as s:
        assert service.latest(s)["id"] == second["run_id"]  # type: ignore[index]


def test_concurrent_applies_of_one_suggestion_apply_it_once(racing: Db) -> None:
    w = Demand(weeks=4)
    tue = suggestion_for(run(), w.tuesday["id"])

    def apply() -> bool:
        with write_tx() as s:
            return bool(service.apply(s, tue["id"], ADMIN, utc_now())["changed"])

    outcomes = race(racing, [apply] * 5, lock=(ForecastSuggestion.__table__, [tue["id"]]))  # type: ignore[arg-type]
    assert sorted(oks(outcomes)) == [False, False, False, False, True], outcomes
    assert capacity_of(w.tuesday["id"]) == (11, 11)
    assert audits("forecast:suggestion:apply") == 1
    assert audits("scheduling:session:capacity") == 1
