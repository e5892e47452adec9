"""The earning gate at ingest: non-active patients score nothing, a frozen patient earns
nothing positive (penalties go on), a merged record refuses events with where it went."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.patients import service as patients
from carepoints.patients.models import Patient
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance, bp, enrol, event, ingest, ingest_one


def _set(pid: str, **values: object) -> None:
    with write_tx() as session:
        session.connection().execute(update(Patient).where(Patient.id == pid).values(**values))


def _no_show(pid: str, at: datetime) -> dict[str, object]:
    return event(pid, "appointment.no_show", at, {"appointment_id": f"a-{at.timestamp()}",
                                                  "slot_start": at.isoformat()})


def test_frozen_patient_earns_nothing_but_penalties_go_on(db: Db, now: datetime) -> None:
    pid = enrol(now)
    with write_tx() as session:
        assert patients.set_earning_frozen(session, pid, True, now) is True
        assert patients.set_earning_frozen(session, pid, True, now) is False  # already frozen: no change
    out = ingest_one(now, event(pid, "health.measurement", now - timedelta(hours=1), bp()))
    assert out["awards"] == []
    assert [n["code"] for n in out["notices"]] == ["rules.earning_frozen"]
    penalty = ingest_one(now, _no_show(pid, now - timedelta(hours=2)))
    assert [a["points"] for a in penalty["awards"]] == [-50]
    assert balance(pid, now) == 50
    with read_tx() as session:
        assert patients.read(session, pid, reveal_pii=False)["earning_frozen"] is True
    with write_tx() as session:
        assert patients.set_earning_frozen(session, pid, False, now) is True
    thawed = ingest_one(now, event(pid, "health.measurement", now - timedelta(minutes=30), bp()))
    assert sorted(a["rule"] for a in thawed["awards"]) == ["first_checkin", "health_checkin"]
    assert balance(pid, now) == 110
    assert_ledger_intact()


@pytest.mark.parametrize("status", ["deceased", "closed"])
def test_inactive_patient_scores_nothing(db: Db, now: datetime, status: str) -> None:
    pid = enrol(now)
    _set(pid, status=status)
    reading = event(pid, "health.measurement", now - timedelta(hours=1), bp())
    for ev in (reading, _no_show(pid, now - timedelta(hours=2))):
        out = ingest_one(now, ev)
        assert out["awards"] == []
        assert [n["code"] for n in out["notices"]] == ["patients.inactive"]
    assert balance(pid, now) == 100


def test_merged_record_refuses_events_naming_where_it_went(db: Db, now: datetime) -> None:
    survivor, merged = enrol(now), enrol(now)
    _set(merged, status="merged", merged_into=survivor)
    (result,) = ingest(now, event(merged, "health.measurement", now - timedelta(hours=1), bp()))
    assert isinstance(result, AppError)
    assert (result.code, result.status_code) == ("patients.merged", 409)
    assert survivor in result.detail
    with read_tx() as session:
        shown = patients.read(session, merged, reveal_pii=False)
    assert (shown["status"], shown["merged_into"], shown["earning_frozen"]) == ("merged", survivor, False)
    assert balance(survivor, now) == 100


def test_freeze_unknown_patient_is_not_found(db: Db, now: datetime) -> None:
    with write_tx() as session, pytest.raises(AppError) as err:
        patients.set_earning_frozen(session, "not-an-id", True, now)
    assert err.value.code == "patients.not_found"
