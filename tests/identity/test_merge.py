"""Merging a duplicate record into its survivor (enrolment.merge), on SQLite and PostgreSQL:
what moves (external ids, events, rule state, appointments, lots and debt), what is refused,
idempotency, and that the ledger verifies afterwards."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carepoints.audit.models import AuditEntry
from carepoints.audit.service import Actor
from carepoints.enrolment import households, merge, privacy
from carepoints.enrolment.errors import (
    MergeAlreadyMergedError,
    MergeHouseholdsDifferError,
    MergeIdempotencyConflictError,
    MergeInactiveError,
    MergeOpenHoldsError,
    MergeSamePatientError,
)
from carepoints.events.models import Event
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.outbox import OutboxMessage
from carepoints.ledger import service as ledger
from carepoints.ledger.models import Account
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientMergedError, PatientNotFoundError
from carepoints.patients.models import Consent, Patient
from carepoints.rules.models import Counter, NoShow, StreakRun, Suspension
from carepoints.scheduling.models import Appointment
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance, bp, enrol, event, ingest, ingest_one
from tests.scheduling.test_service import Hospital, book

STAFF = Actor("staff", "0190a5f0-0000-7000-8000-0000000000bb", "frontdesk")
EXT = {"system": "urn:his:mrn", "value": "D-0001"}


def do_merge(survivor: str, duplicate: str, at: datetime, **kw: Any) -> tuple[dict[str, Any], bool]:
    kw.setdefault("reason_code", "duplicate_registration")
    with write_tx() as s:
        return merge.merge(s, survivor, duplicate, STAFF, at, **kw)


def rows(model: type, pid: str) -> list[dict[str, Any]]:
    t = model.__table__  # type: ignore[attr-defined]
    with read_tx() as s:
        return [dict(r) for r in s.connection().execute(select(t).where(t.c.patient_id == pid)).mappings()]


def account(pid: str) -> dict[str, Any]:
    t = Account.__table__
    with read_tx() as s:
        return dict(s.connection().execute(select(t).where(t.c.patient_id == pid)).mappings().one())


def patient(pid: str) -> dict[str, Any]:
    t = Patient.__table__
    with read_tx() as s:
        return dict(s.connection().execute(select(t.c.status, t.c.merged_into).where(t.c.id == pid)).mappings().one())


def checkin(pid: str, at: datetime, now: datetime) -> dict[str, Any]:
    return ingest_one(now, event(pid, "health.measurement", at, bp()))


def no_show(pid: str, at: datetime, key: str) -> dict[str, Any]:
    return event(pid, "appointment.no_show", at, {"appointment_id": key, "slot_start": at.isoformat()})


def test_merge_moves_lots_counters_streaks_external_ids_and_appointments(db: Db, now: datetime) -> None:
    hospital = Hospital()
    sess_a, sess_b = hospital.session(clinician=0), hospital.session(clinician=1)
    s = enrol(now)
    d = enrol(now, external_ids=[EXT])
    day = timedelta(days=1)
    for k in (8, 7):  # the survivor's run: days -8..-7, and two check-ins today (the daily cap)
        checkin(s, now - k * day, now)
    checkin(s, now - timedelta(hours=1), now)
    checkin(s, now - timedelta(hours=2), now)
    for k in range(6, -1, -1):  # the duplicate's run: days -6..0 (a 7-day streak), and a second today
        checkin(d, now - k * day - timedelta(minutes=5), now)
    checkin(d, now - timedelta(hours=2), now)
    mine_appt = book(s, sess_a["id"])
    clash_appt = book(d, sess_a["id"])  # the same clinician on the same day as the survivor's booking
    other_appt = book(d, sess_b["id"])
    before_s, before_d = balance(s, now), balance(d, now)
    counters_s = {r["key"]: r for r in rows(Counter, s)}
    counters_d = {r["key"]: r for r in rows(Counter, d)}
    events_d = len(rows(Event, d))
    assert any(k in counters_s and counters_s[k]["used"] + r["used"] > (r["cap"] or 10**9)
               for k, r in counters_d.items()), "the test needs a counter the sum would take past its cap"

    at = now + timedelta(minutes=1)
    result, created = do_merge(s, d, at, note="same person, two cards")
    assert created
    moved = result["moved"]
    assert moved["external_ids"] == 1
    assert moved["events"] == events_d + 1  # + the hospital's cancellation of the clashing booking
    assert moved["points"] == before_d
    assert moved["debt"] == 0
    assert moved["lots"] >= 2
    assert moved["appointments_cancelled"] == 1
    assert moved["appointments"] == 2
    assert moved["appointments_kept"] == 0
    assert moved["consents_ended"] >= 1

    assert balance(s, at) == before_s + before_d
    assert balance(d, at) == 0
    dup_wallet = account(d)
    assert (dup_wallet["balance"], dup_wallet["debt"], dup_wallet["held"]) == (0, 0, 0)
    assert patient(d) == {"status": "merged", "merged_into": s}
    assert patient(s) == {"status": "active", "merged_into": None}
    assert not rows(Event, d)
    assert not rows(Counter, d)
    assert not rows(StreakRun, d)

    after = {r["key"]: r for r in rows(Counter, s)}
    for key in counters_s.keys() | counters_d.keys():
        a, b = counters_s.get(key), counters_d.get(key)
        cap = (a or b or {}).get("cap") if a is None or a["cap"] is None else a["cap"]
        total = (a["used"] if a else 0) + (b["used"] if b else 0)
        assert after[key]["used"] == (min(total, cap) if cap is not None else total), key
    runs = [(r["grp"], r["start_day"], r["end_day"]) for r in rows(StreakRun, s)]
    local = [(now - k * day).astimezone(hospital_tz()).date() for k in (8, 0)]
    assert runs == [("health_checkin", local[0], local[1])]  # -8..-7 and -6..0 coalesced

    with read_tx() as sx:
        appts = {r.id: r for r in sx.connection().execute(select(Appointment.__table__))}
    assert appts[clash_appt["id"]].patient_id == s
    assert appts[clash_appt["id"]].status == "cancelled"
    assert appts[clash_appt["id"]].cancelled_by == "hospital"
    assert appts[other_appt["id"]].patient_id == s
    assert appts[other_appt["id"]].status == "booked"
    assert appts[mine_appt["id"]].status == "booked"
    assert all(c["ended_by"] == "merged" and c["withdrawn_at"] is not None for c in rows(Consent, d))
    assert all(c["withdrawn_at"] is None for c in rows(Consent, s))

    with read_tx() as sx:
        conn = sx.connection()
        trail = conn.execute(select(AuditEntry.__table__).where(
            AuditEntry.__table__.c.action == "patients:patient:merged")).mappings().all()
        outbox = conn.execute(select(OutboxMessage.__table__).where(
            OutboxMessage.__table__.c.created_at == at)).mappings().all()
    assert len(trail) == 1
    assert trail[0]["subject_id"] == d
    assert trail[0]["patient_id"] == s
    assert "same person" not in str(trail[0]["details"])  # the note is never audited
    told = [m for m in outbox if m["topic"] == "points.changed"]
    assert [(m["key"], m["payload"]["variant"], m["payload"]["balance"]) for m in told] == \
        [(s, "merged", before_s + before_d)]
    assert_ledger_intact()

    # the same request again answers the first result
    again, created = do_merge(s, d, at + timedelta(minutes=5))
    assert not created
    assert again == result
    # after the merge: the duplicate's external id earns for the survivor, its id is refused
    later = now + day
    out = ingest_one(later, {**event(s, "health.measurement", later, bp()), "patient": EXT})
    assert sum(a["points"] for a in out["awards"]) > 0
    assert balance(s, later) == before_s + before_d + sum(a["points"] for a in out["awards"])
    assert [e["patient_id"] for e in rows(Event, s) if e["id"] == out["event_id"]] == [s]
    refused = ingest(later, event(d, "health.measurement", later, bp()))[0]
    assert isinstance(refused, PatientMergedError)
    assert balance(d, later) == 0
    assert_ledger_intact()


def hospital_tz() -> Any:
    from carepoints.config import get_settings

    return get_settings().tz


def test_merge_moves_debt_no_shows_and_suspension(db: Db, now: datetime) -> None:
    s = enrol(now)
    d = enrol(now)
    for i in range(3):  # -150 on a welcome of 100: 50 in debt, and suspended (3 no-shows in 90 days)
        ingest_one(now, no_show(d, now - timedelta(days=10 - i), f"A{i}"))
    assert balance(d, now) == -50
    assert account(d)["debt"] == 50
    assert len(rows(Suspension, d)) == 1
    assert len(rows(NoShow, d)) == 3

    result, _created = do_merge(s, d, now)
    assert result["moved"]["debt"] == 50
    assert result["moved"]["points"] == 0
    assert result["moved"]["lots"] == 0
    assert result["moved"]["suspensions"] == 1
    assert result["moved"]["no_shows"] == 3
    assert balance(s, now) == 50
    assert account(s)["debt"] == 0
    dup = account(d)
    assert (dup["balance"], dup["debt"]) == (0, 0)
    assert len(rows(Suspension, s)) == 1
    assert len(rows(NoShow, s)) == 3
    assert_ledger_intact()


def test_debt_larger_than_the_survivors_points_stays_debt(db: Db, now: datetime) -> None:
    s = enrol(now)
    d = enrol(now)
    for i in range(5):  # -250 on 100: 150 in debt
        ingest_one(now, no_show(d, now - timedelta(days=10 - i), f"B{i}"))
    do_merge(s, d, now)
    assert balance(s, now) == -50
    assert account(s)["debt"] == 50
    assert_ledger_intact()


def test_refusals(db: Db, now: datetime) -> None:
    a, b, c = enrol(now), enrol(now), enrol(now)
    with pytest.raises(MergeSamePatientError):
        do_merge(a, a, now)
    with pytest.raises(PatientNotFoundError):
        do_merge(a, "0190a5f0-0000-7000-8000-00000000dead", now)
    with write_tx() as s:  # an open fee-offset-like hold on the duplicate's wallet
        ledger.hold(s, ledger.wallet_of(s, b), 30, now, ttl=timedelta(minutes=30))
    with pytest.raises(MergeOpenHoldsError):
        do_merge(a, b, now)
    with write_tx() as s:
        privacy.erase(s, c, STAFF, now)
    with pytest.raises(MergeInactiveError) as inactive:
        do_merge(a, c, now)
    assert inactive.value.params == {"patient_id": c, "status": "erased"}
    with pytest.raises(MergeInactiveError):
        do_merge(c, a, now)
    assert patient(a)["status"] == patient(b)["status"] == "active"
    assert_ledger_intact()


def test_already_merged_and_idempotency_key(db: Db, now: datetime) -> None:
    a, b, x = enrol(now), enrol(now), enrol(now)
    first, _ = do_merge(a, b, now, idempotency_key="merge-1")
    with pytest.raises(MergeAlreadyMergedError) as taken:
        do_merge(x, b, now)
    assert taken.value.params == {"merged_into": a}
    with pytest.raises(MergeAlreadyMergedError):  # nor can anything merge into a merged record
        do_merge(b, x, now)
    with pytest.raises(MergeIdempotencyConflictError):
        do_merge(a, x, now, idempotency_key="merge-1")
    again, created = do_merge(a, b, now, idempotency_key="merge-1")
    assert not created
    assert again == first
    assert balance(a, now) == 200
    assert balance(x, now) == 100
    assert_ledger_intact()


def test_households(db: Db, now: datetime) -> None:
    head1, head2, member = enrol(now), enrol(now), enrol(now)
    with write_tx() as s:
        h1 = households.create(s, STAFF, "一家", head1, now)["id"]
        households.create(s, STAFF, "二家", head2, now)
        households.add_member(s, STAFF, h1, member, can_redeem=True, now=now)
    with pytest.raises(MergeHouseholdsDifferError):
        do_merge(head2, member, now)
    checkin(member, now - timedelta(hours=1), now)  # pooled: 60 to the household, attributed to the member
    result, _ = do_merge(head1, member, now)
    assert result["moved"]["household_left"] == 1
    assert result["moved"]["points"] == 160  # the welcome and the attributed share, back and then on
    with read_tx() as s:
        assert patients.exists(s, member)
        from carepoints.patients import households as membership

        assert membership.membership(s, member) is None
        assert ledger.household_summary(s, h1)["attributed"].get(member, 0) == 0
    assert balance(head1, now) == 260
    assert_ledger_intact()


def test_coalesce_runs_is_pure() -> None:
    from datetime import date

    d = date(2026, 1, 1)
    one = timedelta(days=1)
    assert merge.coalesce_runs([(d + 5 * one, d + 6 * one), (d, d + one), (d + 2 * one, d + 3 * one),
                                (d + 3 * one, d + 4 * one), (d + 9 * one, d + 9 * one)]) == [
        (d, d + 6 * one), (d + 9 * one, d + 9 * one)]
