"""Tiers by points earned in the last 12 months: the pure core, the upgrade on
earning in ingest's transaction, and the nightly recompute (the only downgrade)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import select

from carepoints.jobs import registry
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.outbox import OutboxMessage
from carepoints.kit.time import add_months
from carepoints.ledger import service as ledger
from carepoints.rules.programme import Settings
from carepoints.tiers import service as tiers
from carepoints.tiers.models import TierChange
from carepoints.tiers.schemas import TierBenefit
from tests.conftest import Db
from tests.helpers import enrol, event, ingest, ingest_one, points

THRESHOLDS = {"silver": 2000, "gold": 5000}
_changes = TierChange.__table__
_outbox = OutboxMessage.__table__


def referral(pid: str, at: datetime) -> dict[str, Any]:
    """+200, once per referral."""
    return event(pid, "referral.visit", at, {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心"})


def earn(pid: str, now: datetime, referrals: int, at: datetime | None = None) -> list[dict[str, Any]]:
    """`referrals` × 200 points, in one ingest at `now`."""
    out = ingest(now, *[referral(pid, (at or now) - timedelta(minutes=i)) for i in range(referrals)])
    assert all(isinstance(o, dict) for o in out), out
    return out  # type: ignore[return-value]


def tier(pid: str, now: datetime) -> str:
    return str(points(pid, now)["tier"])


def changes(pid: str) -> list[tuple[str, str, str]]:
    with read_tx() as session:
        rows = session.connection().execute(select(_changes.c.from_tier, _changes.c.to_tier, _changes.c.reason)
                                            .where(_changes.c.patient_id == pid).order_by(_changes.c.at))
        return [(r[0], r[1], r[2]) for r in rows]


def earned(pid: str, now: datetime) -> int:
    with read_tx() as session:
        return ledger.earned_by(session, [pid], tiers.window_start(now))[pid]


def recompute(now: datetime) -> dict[str, Any]:
    return registry.run("recompute-tiers", now)


# --- the pure core ------------------------------------------------------------------------

@pytest.mark.parametrize(("points_", "expected"), [
    (0, "standard"), (1999, "standard"), (2000, "silver"), (4999, "silver"), (5000, "gold"), (10**6, "gold"),
])
def test_tier_for_at_every_boundary(points_: int, expected: str) -> None:
    assert tiers.tier_for(points_, THRESHOLDS) == expected


def test_next_tier_names_what_is_still_to_earn() -> None:
    assert tiers.next_tier("standard", 1500, THRESHOLDS) == {"tier": "silver", "points_needed": 500}
    assert tiers.next_tier("silver", 2100, THRESHOLDS) == {"tier": "gold", "points_needed": 2900}
    assert tiers.next_tier("silver", 1500, THRESHOLDS) == {"tier": "gold", "points_needed": 3500}
    assert tiers.next_tier("gold", 100, THRESHOLDS) is None


def test_discount_math() -> None:
    settings = Settings()
    assert tiers.fee_share("gold", settings) == Decimal("0.80")
    assert tiers.fee_share("silver", settings) == Decimal(1)
    assert tiers.discount(settings, "gold", Decimal("25.00")) == Decimal("5.00")
    assert tiers.discount(settings, "gold", Decimal("0.03")) == Decimal("0.01")  # 0.006 → 0.01 (half up)
    assert tiers.discount(settings, "gold", Decimal("0.02")) == Decimal("0.00")  # 0.004 → 0.00
    assert tiers.discount(settings, "standard", Decimal("25.00")) == Decimal("0.00")
    custom = Settings(tier_benefits={"silver": TierBenefit(fee_share=Decimal("0.95")),
                                     "gold": TierBenefit(fee_share=Decimal("0.5"), advisor=True)})
    assert tiers.discount(custom, "silver", Decimal("25.00")) == Decimal("1.25")
    assert tiers.discount(custom, "gold", Decimal("25.00")) == Decimal("12.50")


def test_discount_reads_the_programme_in_force(db: Db) -> None:
    with read_tx() as session:
        assert tiers.discount(session, "gold", Decimal("25.00")) == Decimal("5.00")
        assert tiers.settings_at(session, datetime.now().astimezone()).tiers == THRESHOLDS


@pytest.mark.parametrize("bad", [{"silver": 5000, "gold": 2000}, {"silver": 2000}, {"silver": 0, "gold": 10},
                                 {"silver": 1, "gold": 2, "platinum": 3}])
def test_the_programme_refuses_thresholds_that_do_not_rise(bad: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        Settings(tiers=bad)
    with pytest.raises(ValidationError):
        Settings(tier_benefits={"platinum": TierBenefit()})


# --- upgrades on earning ----------------------------------------------------------------------

def test_a_tier_rises_at_once_in_the_ingest_that_earned(db: Db, now: datetime) -> None:
    pid = enrol(now)  # 100
    earn(pid, now, 9)  # 1900
    assert (tier(pid, now), changes(pid)) == ("standard", [])
    ingest_one(now, referral(pid, now))  # 2100
    assert tier(pid, now) == "silver"
    assert changes(pid) == [("standard", "silver", "upgrade")]
    with read_tx() as session:
        msgs = session.connection().execute(select(_outbox.c.payload).where(_outbox.c.topic == "tiers.changed")).all()
    assert [m[0]["to"] for m in msgs] == ["silver"]
    assert set(msgs[0][0]) == {"patient_id", "change_id", "from", "to", "reason", "advisor_released"}  # ids only
    earn(pid, now, 15)  # 5100: straight on to gold, one change
    assert tier(pid, now) == "gold"
    assert changes(pid) == [("standard", "silver", "upgrade"), ("silver", "gold", "upgrade")]


def test_one_batch_can_skip_a_tier(db: Db, now: datetime) -> None:
    pid = enrol(now)
    earn(pid, now, 25)
    assert tier(pid, now) == "gold"
    assert changes(pid) == [("standard", "gold", "upgrade")]


def test_a_tier_is_chosen_on_earned_points_never_balance(db: Db, now: datetime) -> None:
    pid = enrol(now)
    earn(pid, now, 10)  # 2100 earned
    with write_tx() as session:
        ledger.spend(session, ledger.wallet_of(session, pid), 2000, now)
    assert points(pid, now)["balance"] == 100
    assert tier(pid, now) == "silver"
    recompute(now + timedelta(days=1))
    assert tier(pid, now) == "silver"
    assert earned(pid, now) == 2100


def test_old_earnings_keep_the_balance_but_not_the_tier(db: Db, now: datetime) -> None:
    then = add_months(now, -13)
    pid = enrol(then)
    earn(pid, then, 30)  # 6100, all 13 months ago
    assert tier(pid, then) == "gold"
    assert earned(pid, now) == 0
    assert tier(pid, now) == "gold"  # nothing lowers it before the nightly job
    result = recompute(now)
    assert result["changed"] == 1
    assert result["patients"] >= 1
    view = points(pid, now)
    assert (view["tier"], view["balance"]) == ("standard", 6100)  # the lots expire after 24 months
    assert changes(pid) == [("standard", "gold", "upgrade"), ("gold", "standard", "recompute")]


def test_a_late_event_dated_13_months_ago_earns_but_does_not_count(db: Db, now: datetime) -> None:
    pid = enrol(now)
    earn(pid, now, 30, at=add_months(now, -13))
    assert points(pid, now)["balance"] == 6100
    assert tier(pid, now) == "standard"


# --- downgrades only in the job ------------------------------------------------------------------

def test_a_reversal_lowers_earned_and_the_tier_falls_only_in_the_job(db: Db, now: datetime) -> None:
    from carepoints.events import service as events

    pid = enrol(now)
    outs = earn(pid, now, 25)  # 5100
    assert (tier(pid, now), earned(pid, now)) == ("gold", 5100)
    with write_tx() as session:
        for out in outs[:3]:  # −600
            events.revoke(session, now=now, reason="HIS correction", event_id=out["event_id"])
    assert earned(pid, now) == 4500
    earn(pid, now, 1)  # 4700: earning never lowers a tier
    assert tier(pid, now) == "gold"
    recompute(now)
    assert tier(pid, now) == "silver"
    assert changes(pid)[-1] == ("gold", "silver", "recompute")
    assert recompute(now)["changed"] == 0  # a second run finds nothing to do


def test_penalties_and_spending_do_not_lower_earned(db: Db, now: datetime) -> None:
    pid = enrol(now)
    earn(pid, now, 10)
    ingest_one(now, event(pid, "conduct.violation", now, {"reason": "插队", "staff_id": "s1"}))
    with write_tx() as session:
        ledger.spend(session, ledger.wallet_of(session, pid), 1000, now)
    assert earned(pid, now) == 2100
    recompute(now)
    assert tier(pid, now) == "silver"


def test_the_job_raises_tiers_when_the_thresholds_come_down(db: Db, now: datetime) -> None:
    from carepoints.rules import service as rules

    pid = enrol(now)
    earn(pid, now, 5)  # 1100
    doc = yaml.safe_load(rules.default_programme_text())
    doc["settings"]["tiers"] = {"silver": 1000, "gold": 3000}
    with write_tx() as session:
        rules.install(session, yaml.safe_dump(doc, allow_unicode=True).encode(), effective_from=now - timedelta(1),
                      now=now)
    assert tier(pid, now) == "standard"
    recompute(now)
    assert tier(pid, now) == "silver"
    assert changes(pid) == [("standard", "silver", "recompute")]


def test_the_job_pages_through_every_patient(db: Db, now: datetime) -> None:
    then = add_months(now, -13)
    pids = [enrol(then) for _ in range(5)]
    for pid in pids:
        earn(pid, then, 10)
    with write_tx() as session:
        page = tiers.recompute(session, now, Settings(), limit=2)
    assert (page["examined"], page["changed"]) == (2, 2)
    result = recompute(now)
    assert (result["patients"], result["changed"]) == (5, 3)
    assert {tier(pid, now) for pid in pids} == {"standard"}


def test_earnings_of_last_calendar_year_count_toward_an_upgrade_at_once(db: Db) -> None:
    """Ingest asks the ledger only for patients whose annual counters (this local year and
    the last) could reach the next tier: those must cover the twelve months across a new year."""
    from datetime import UTC

    january = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)
    pid = enrol(january - timedelta(days=60))
    earn(pid, january, 9, at=datetime(2026, 12, 20, 2, 0, tzinfo=UTC))  # 1,800 last year (+100 welcome)
    assert tier(pid, january) == "standard"
    earn(pid, january, 1)  # 200 this year: 2,100 in twelve months
    assert tier(pid, january) == "silver"
