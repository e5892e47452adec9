"""Real races (tests/locks.py): racers in threads with their own committing transactions,
queued on PostgreSQL behind the row they all need before they are let go together."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from carepoints.engagement.health import measurements, medication
from carepoints.engagement.health.models import MedicationPlan
from carepoints.engagement.health.schemas import DoseCheckIn, MeasurementCreate, PlanCreate
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.ledger import service as ledger
from carepoints.ledger.models import Account
from tests.conftest import Db
from tests.engagement.test_health_kit import NURSE, alerts, bp_body, outbox, readings
from tests.helpers import assert_ledger_intact, balance, enrol
from tests.locks import errors, oks, race

CST = ZoneInfo("Asia/Shanghai")


def test_one_key_posted_twice_at_once_makes_one_reading_and_one_alert(racing: Db, now: datetime) -> None:
    pid = enrol(now)
    body = MeasurementCreate.model_validate(bp_body(now - timedelta(minutes=5), 195, 118, idempotency_key="same"))
    with read_tx() as session:
        wallet = ledger.wallet_of(session, pid)

    def post() -> tuple[dict[str, Any], bool]:
        with write_tx() as session:
            return measurements.record(session, pid, body, NURSE, now)

    results = race(racing, [post, post], lock=(table(Account), [wallet]))
    assert errors(results) == []
    answers = oks(results)
    assert sorted(created for _doc, created in answers) == [False, True]
    assert len({doc["event_id"] for doc, _ in answers}) == 1
    assert len({doc["alert"]["id"] for doc, _ in answers}) == 1
    assert len(readings(pid)) == 1
    assert len(alerts(pid)) == 1
    assert len(outbox("health.advice", pid)) == 1
    assert balance(pid, now) == 160
    assert_ledger_intact()


def test_two_check_ins_of_one_dose_at_once_pay_once(racing: Db, now: datetime) -> None:
    pid = enrol(now)
    with write_tx() as session:
        plan = medication.create_plan(session, pid, PlanCreate(medicine_name="阿司匹林", times=["10:00"],
                                                               start_date=date(2026, 6, 15)), NURSE, now)["id"]
    planned = datetime(2026, 6, 15, 10, 0, tzinfo=CST)

    def check_in(minutes: int) -> dict[str, Any]:
        with write_tx() as session:
            return medication.check_in(session, plan, DoseCheckIn(scheduled_for=planned,
                                                                   taken_at=planned + timedelta(minutes=minutes)),
                                       NURSE, now)[0]

    # the dose row's foreign key check queues behind the plan row held on PostgreSQL
    results = race(racing, [lambda: check_in(1), lambda: check_in(2)], lock=(table(MedicationPlan), [plan]))
    assert errors(results) == []
    answers = oks(results)
    assert sorted(a["duplicate"] for a in answers) == [False, True]
    assert len({a["event_id"] for a in answers}) == 1
    assert len({a["taken_at"] for a in answers}) == 1  # the winner's time, answered to both
    assert balance(pid, now) == 110
    assert_ledger_intact()
