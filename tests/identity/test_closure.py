"""Deceased and closed accounts (enrolment.closure) on both databases: the transitions, what
stops (holds, points by policy, earning, care alerts), the patient's message, the audit trail
and the ledger invariants."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.engagement.care import service as care
from carepoints.engagement.care.schemas import AlertKind
from carepoints.enrolment import closure
from carepoints.enrolment.errors import DeceasedFinalError, PatientErasedError, StatusTransitionError
from carepoints.enrolment.models import PatientStatusChange
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.errors import AppError
from carepoints.kit.outbox import OutboxMessage
from carepoints.ledger import service as ledger
from carepoints.ledger.models import Hold, Transfer
from carepoints.patients.errors import PatientNotFoundError
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance, enrol, event, ingest

DESK = Actor("staff", "0190a5f0-0000-7000-8000-0000000000d1", "frontdesk")
ADMIN = Actor("staff", "0190a5f0-0000-7000-8000-0000000000a1", "admin")


def change(pid: str, status: str, now: datetime, reason: str = "patient_request", *, actor: Actor = DESK,
           may_correct: bool = False) -> dict[str, Any]:
    with write_tx() as session:
        return closure.change_status(session, pid, status, reason, actor, now, note="家属来电",
                                     may_correct=may_correct)


def transfers(pid: str, kind: str) -> list[Any]:
    with read_tx() as session:
        wid = ledger.wallet_of(session, pid)
        t = table(Transfer)
        return list(session.connection().execute(select(t.c.amount).where(t.c.wallet_id == wid, t.c.kind == kind)))


def topics(pid: str) -> list[str]:
    o = table(OutboxMessage)
    with read_tx() as session:
        return sorted(r[0] for r in session.connection().execute(select(o.c.topic).where(o.c.key == pid)))


def test_closing_expires_the_points_voids_holds_and_tells_the_patient(db: Db, now: datetime) -> None:
    pid = enrol(now)
    with write_tx() as session:
        hold = ledger.hold(session, ledger.wallet_of(session, pid), 30, now, ttl=timedelta(minutes=30))
    doc = change(pid, "closed", now)
    assert (doc["status"], doc["status_from"], doc["changed"]) == ("closed", "active", True)
    assert doc["outcome"]["holds_voided"] == 1
    assert doc["outcome"]["points_expired"] == 100
    assert doc["outcome"]["points_moved"] == 0
    assert doc["outcome"]["scheduling.appointments_cancelled"] == 0
    assert doc["outcome"]["engagement.medication_plans_stopped"] == 0
    assert balance(pid, now) == 0
    assert [r.amount for r in transfers(pid, "expiry")] == [100]
    with read_tx() as session:
        assert ledger.holds(session, [hold["id"]])[hold["id"]]["status"] == "voided"
        trail = audit.entries(session, patient_id=pid, action="patients:patient:status")
    assert len(trail) == 1
    assert "家属" not in str(trail[0])  # the note stays in its row
    assert "account.closed" in topics(pid)
    # a closed patient earns nothing
    [result] = ingest(now, event(pid, "referral.visit", now - timedelta(hours=1),
                                 {"referral_id": "r-1", "from_institution": "社区中心"}))
    assert not isinstance(result, AppError)
    assert "patients.inactive" in str(result)
    assert balance(pid, now) == 0
    assert_ledger_intact()


def test_a_deceased_patient_is_not_told_and_the_status_is_final(db: Db, now: datetime) -> None:
    pid = enrol(now)
    doc = change(pid, "deceased", now, "death_reported")
    assert doc["outcome"]["points_expired"] == 100
    assert "account.closed" not in topics(pid)
    with pytest.raises(DeceasedFinalError):
        change(pid, "active", now, "recorded_in_error")  # the desk cannot correct it
    with pytest.raises(DeceasedFinalError):
        change(pid, "active", now, "patient_request", actor=ADMIN, may_correct=True)
    with pytest.raises(StatusTransitionError):
        change(pid, "closed", now)
    again = change(pid, "deceased", now + timedelta(minutes=5))
    assert (again["changed"], again["reason_code"]) == (False, "death_reported")
    fixed = change(pid, "active", now, "recorded_in_error", actor=ADMIN, may_correct=True)
    assert (fixed["status"], fixed["changed"]) == ("active", True)
    assert fixed["outcome"] == {}  # nothing comes back
    assert balance(pid, now) == 0
    with read_tx() as session:
        rows = session.connection().execute(select(table(PatientStatusChange).c.status_to).where(
            table(PatientStatusChange).c.patient_id == pid)).all()
    assert sorted(r[0] for r in rows) == ["active", "deceased"]
    assert_ledger_intact()


def test_reopen_a_closed_account_and_close_it_again(db: Db, now: datetime) -> None:
    pid = enrol(now)
    change(pid, "closed", now)
    reopened = change(pid, "active", now + timedelta(days=1))
    assert (reopened["status_from"], reopened["status"]) == ("closed", "active")
    assert "account.reopened" in topics(pid)
    ingest(now + timedelta(days=1), event(pid, "referral.visit", now + timedelta(hours=20),
                                          {"referral_id": "r-2", "from_institution": "社区中心"}))
    earned = balance(pid, now + timedelta(days=1))
    assert earned > 0
    again = change(pid, "closed", now + timedelta(days=2))
    assert again["outcome"]["points_expired"] == earned
    closed_then_deceased = change(pid, "deceased", now + timedelta(days=3))
    assert (closed_then_deceased["status_from"], closed_then_deceased["outcome"]) == ("closed", {})
    assert_ledger_intact()


def test_unknown_and_erased_patients(db: Db, now: datetime) -> None:
    with pytest.raises(PatientNotFoundError):
        change("0190a5f0-0000-7000-8000-000000000000", "closed", now)
    with pytest.raises(PatientNotFoundError):
        change("not-an-id", "closed", now)
    pid = enrol(now)
    from carepoints.enrolment import privacy

    with write_tx() as session:
        privacy.erase(session, pid, DESK, now)
    with pytest.raises(PatientErasedError):
        change(pid, "closed", now)


def test_household_policy_moves_the_points_to_the_household(db: Db, now: datetime,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from carepoints.config import reset_settings
    from carepoints.enrolment import households

    monkeypatch.setenv("CAREPOINTS_CLOSURE_POINTS_POLICY", "household")
    reset_settings()
    head, member, alone = enrol(now), enrol(now), enrol(now)
    with write_tx() as session:
        hid = households.create(session, DESK, "王家", head, now)["id"]
        households.add_member(session, DESK, hid, member, can_redeem=False, now=now)
    before = _household_balance(hid)
    doc = change(member, "deceased", now)
    assert (doc["outcome"]["points_moved"], doc["outcome"]["lots_moved"], doc["outcome"]["points_expired"]) == \
        (100, 1, 0)
    assert balance(member, now) == 0
    assert _household_balance(hid) == before + 100
    assert [r.amount for r in transfers(member, "closure_out")] == [100]
    # not in a household: the points expire
    solo = change(alone, "closed", now)
    assert (solo["outcome"]["points_moved"], solo["outcome"]["points_expired"]) == (0, 100)
    assert_ledger_intact()
    reset_settings()


def _household_balance(hid: str) -> int:
    with read_tx() as session:
        return int(ledger.household_summary(session, hid)["balance"])


def test_care_alerts_stop_for_a_closed_patient(db: Db, now: datetime) -> None:
    pid = enrol(now)
    with write_tx() as session:
        alert = care.raise_alert(session, patient_id=pid, kind=AlertKind.inactivity, source_ref="inact-1", now=now)
    assert alert is not None
    doc = change(pid, "closed", now)
    assert doc["outcome"]["engagement.care_alerts_resolved"] == 1
    with write_tx() as session:
        assert care.raise_alert(session, patient_id=pid, kind=AlertKind.inactivity, source_ref="inact-2",
                                now=now) is None
        assert care.get(session, alert)["status"] == "resolved"


def test_open_holds_are_voided_only_when_leaving_active(db: Db, now: datetime) -> None:
    pid = enrol(now)
    change(pid, "closed", now)
    with read_tx() as session:
        h = table(Hold)
        assert session.connection().execute(select(h.c.id).where(h.c.status == "open")).all() == []


def test_future_appointments_are_cancelled_by_the_hospital(db: Db, now: datetime) -> None:
    from carepoints.scheduling import service as sch
    from tests.scheduling.test_service import NOW, Hospital, book

    hospital = Hospital()
    pid = enrol(NOW)
    appt = book(pid, hospital.session()["id"])
    before = balance(pid, NOW)
    doc = change(pid, "deceased", NOW, "death_reported")
    assert doc["outcome"]["scheduling.appointments_cancelled"] == 1
    assert doc["outcome"]["points_expired"] == before
    with read_tx() as session:
        row = sch.read_appointment(session, appt["id"])
    assert (row["status"], row["cancelled_by"]) == ("cancelled", "hospital")
    assert balance(pid, NOW) == 0  # a hospital cancellation neither earns nor costs
    assert_ledger_intact()
