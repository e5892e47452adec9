"""Order-sensitive rules (once per item with another limit) are judged in time
order: a late earlier event re-evaluates the patient's later events of the same
behaviour, and the ledger changes only where an award changes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import yaml
from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from carepoints.config import get_settings
from carepoints.events import service as events
from carepoints.events.models import Event
from carepoints.kit.db import get_engine, read_tx, table, write_tx
from carepoints.kit.errors import AppError
from carepoints.ledger import integrity
from carepoints.ledger import service as ledger
from carepoints.ledger.models import Transfer
from carepoints.patients.models import Consent, Patient
from carepoints.rules import service as rules
from carepoints.rules.engine import EPOCH
from tests.conftest import Db
from tests.helpers import balance, bp, enrol, event, ingest, ingest_one

_tr = table(Transfer)
_ev = table(Event)
_consents = table(Consent)
_patients = table(Patient)


def _lesson(pid: str, at: datetime, content: str, key: str) -> dict[str, Any]:
    return event(pid, "education.completed", at, {"content_id": content, "score": 90, "pass_mark": 60}, key=key)


def _entries(pid: str) -> list[tuple[str, str | None, int, str | None]]:
    with read_tx() as session:
        wid = ledger.wallet_of(session, pid)
        rows = session.connection().execute(
            select(_tr.c.kind, _tr.c.rule_code, _tr.c.amount, _tr.c.event_id, _tr.c.to_account_id)
            .where(_tr.c.wallet_id == wid).order_by(_tr.c.seq)).all()
    return [(k, r, a if to == wid else -a, e) for k, r, a, e, to in rows]


def _lessons(now: datetime) -> list[tuple[datetime, str, str]]:
    day1, day2 = now - timedelta(days=2), now - timedelta(days=1)
    return [(day1, "C0", "l1"), (day2, "C0", "l2"), (day2 + timedelta(minutes=1), "C1", "l3"),
            (day2 + timedelta(minutes=2), "C2", "l4")]


def test_a_late_earlier_lesson_moves_the_award_and_frees_the_later_day(db: Db, now: datetime) -> None:
    pid = enrol(now)
    (d1, c0, k1), *rest = _lessons(now)
    outs = [ingest_one(now, _lesson(pid, at, c, k)) for at, c, k in rest]  # day 2: C0, C1 paid; C2 over the cap
    assert [sum(a["points"] for a in o["awards"]) for o in outs] == [20, 20, 0]
    late = ingest_one(now, _lesson(pid, d1, c0, k1))
    assert [a["points"] for a in late["awards"]] == [20]  # C0's award belongs to its first day
    assert balance(pid, now) == 100 + 60
    ids = [o["event_id"] for o in outs]
    kinds = [(k, r, a, e) for k, r, a, e in _entries(pid) if r == "education"]
    # day 2's C0 gave its award back; C2, now within day 2's cap, was paid; C1 was left alone
    assert ("reversal", "education", -20, ids[0]) in kinds
    assert ("earn", "education", 20, ids[2]) in kinds
    assert [e for e in kinds if e[3] == ids[1]] == [("earn", "education", 20, ids[1])]


def test_a_replay_of_a_re_evaluated_event_answers_its_new_outcome(db: Db, now: datetime) -> None:
    pid = enrol(now)
    (d1, c0, k1), *rest = _lessons(now)
    for at, c, k in rest:
        ingest_one(now, _lesson(pid, at, c, k))
    ingest_one(now, _lesson(pid, d1, c0, k1))
    at, c, k = rest[0]
    again = ingest_one(now, _lesson(pid, at, c, k))
    assert again["duplicate"] is True
    assert again["awards"] == []
    assert {n["code"] for n in again["notices"]} == {"rules.once_per_content"}
    assert balance(pid, now) == 160


def test_one_batch_in_any_order_pays_as_in_time_order(db: Db, now: datetime) -> None:
    in_time = enrol(now)
    shuffled = enrol(now)
    lessons = _lessons(now)
    ingest(now, *[_lesson(in_time, at, c, f"a{k}") for at, c, k in lessons])
    mixed = [_lesson(shuffled, at, c, f"b{k}") for at, c, k in reversed(lessons)]
    mixed.insert(1, event(shuffled, "health.measurement", now - timedelta(hours=3), bp()))  # bulk path beside
    outs = ingest(now, *mixed)
    assert not any(isinstance(o, AppError) for o in outs)
    assert balance(shuffled, now) == balance(in_time, now) + 60  # first reading 50 + 10


def test_revoking_a_re_evaluated_event_reverses_what_it_now_holds(db: Db, now: datetime) -> None:
    pid = enrol(now)
    (d1, c0, k1), *rest = _lessons(now)
    outs = [ingest_one(now, _lesson(pid, at, c, k)) for at, c, k in rest]
    ingest_one(now, _lesson(pid, d1, c0, k1))
    assert balance(pid, now) == 160
    with write_tx() as session:  # C2 was paid by the re-evaluation: revoking it takes exactly that back
        result = events.revoke(session, now=now, reason="test", event_id=outs[2]["event_id"])
    assert result["reversed"] == [{"rule": "education", "points": -20}]
    assert balance(pid, now) == 140
    with write_tx() as session:  # day 2's C0 holds nothing any more
        result = events.revoke(session, now=now, reason="test", event_id=outs[0]["event_id"])
    assert result["reversed"] == []
    assert balance(pid, now) == 140


def test_events_of_other_behaviours_stay_off_the_replay_index(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest_one(now, event(pid, "health.measurement", now - timedelta(hours=1), bp()))
    ingest_one(now, _lesson(pid, now - timedelta(hours=1), "C9", "x"))
    with read_tx() as session:
        rows = dict(session.connection().execute(select(_ev.c.type, _ev.c.replay_group)).all())
    assert rows == {"account.registered": None, "health.measurement": None,
                    "education.completed": "education.completed"}


def test_concurrent_late_and_current_lessons_pay_as_in_time_order(db: Db, now: datetime) -> None:
    """Two clients, each with half of the lessons in reverse order: the wallet lock
    serialises them and the total is what time order pays."""
    pid = enrol(now)
    lessons = list(reversed(_lessons(now)))

    def send(part: list[tuple[datetime, str, str]]) -> None:
        for at, c, k in part:
            result = ingest(now, _lesson(pid, at, c, k))[0]
            assert not isinstance(result, AppError), result

    for _ in range(3):  # repeat to vary the interleaving
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(send, [lessons[0::2], lessons[1::2]]))
    assert balance(pid, now) == 160


# --- re-evaluation judges later events as they were first judged (review findings) ----------

def _no_show(pid: str, at: datetime, appointment: str) -> dict[str, Any]:
    return event(pid, "appointment.no_show", at, {"appointment_id": appointment, "slot_start": at.isoformat()})


def _install(mutate: Any, effective_from: datetime = EPOCH) -> None:
    doc = yaml.safe_load(rules.default_programme_text())
    mutate(doc)
    with write_tx() as session:
        rules.install(session, yaml.safe_dump(doc, allow_unicode=True).encode(), effective_from=effective_from)


def _rule(doc: dict[str, Any], code: str) -> dict[str, Any]:
    return next(r for r in doc["rules"] if r["code"] == code)


def _verify() -> None:
    with read_tx() as session:
        report = integrity.verify(session, get_settings().checkpoint_key)
    assert report.ok, report.problem


def test_a_suspension_that_came_later_does_not_claw_back_a_re_evaluated_award(db: Db, now: datetime) -> None:
    pid = enrol(now)
    c1 = ingest_one(now, _lesson(pid, now - timedelta(days=5), "C1", "c1"))
    assert [a["points"] for a in c1["awards"]] == [20]
    hour = timedelta(hours=1)
    for days, appointment in ((10, "A1"), (9, "A2"), (8, "A3")):  # an hour later: suspends from day -8
        ingest_one(now + hour, _no_show(pid, now - timedelta(days=days), appointment))
    assert balance(pid, now) == 100 + 20 - 150
    late = ingest_one(now + 2 * hour, _lesson(pid, now - timedelta(days=20), "C2", "c2"))
    assert [a["points"] for a in late["awards"]] == [20]
    assert balance(pid, now) == 100 + 20 - 150 + 20
    _verify()


def test_a_later_withdrawal_of_consent_does_not_claw_back_a_re_evaluated_award(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest_one(now, _lesson(pid, now - timedelta(days=1), "C1", "c1"))
    with write_tx() as session:
        session.connection().execute(update(_consents).where(_consents.c.patient_id == pid).values(withdrawn_at=now))
    late = ingest_one(now, _lesson(pid, now - timedelta(days=2), "C0", "c0"))
    assert [n["code"] for n in late["notices"]] == ["consent.missing"]
    assert balance(pid, now) == 120


def test_re_evaluation_judges_the_event_age_by_its_own_clock(db: Db, now: datetime) -> None:
    pid = enrol(now - timedelta(days=1100))
    first = ingest_one(now, _lesson(pid, now - timedelta(days=1094), "C1", "c1"))
    assert [a["points"] for a in first["awards"]] == [20]
    later_now = now + timedelta(days=2)
    late = ingest_one(later_now, _lesson(pid, now - timedelta(days=1094, hours=1), "C0", "c0"))
    assert [n["code"] for n in late["notices"]] == ["rules.event_too_old"]
    assert balance(pid, later_now) == 120


def test_the_late_event_answers_the_balance_after_the_re_evaluations(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest_one(now, _lesson(pid, now - timedelta(days=1), "C0", "c-late"))
    late = ingest_one(now, _lesson(pid, now - timedelta(days=2), "C0", "c-early"))  # takes C0's award
    assert [a["points"] for a in late["awards"]] == [20]
    assert late["balance"] == balance(pid, now) == 120
    again = ingest_one(now, _lesson(pid, now - timedelta(days=2), "C0", "c-early"))
    assert again["balance"] == 120


def test_no_show_penalties_are_never_re_evaluated(db: Db, now: datetime) -> None:
    """Suspension is the deliberate exception: a programme giving no-shows an order-
    sensitive limit still judges them once, at ingest."""
    _install(lambda doc: _rule(doc, "no_show").update(limits={"once_per": ["appointment_id"], "per_month": 3}))
    pid = enrol(now)
    ingest_one(now, _no_show(pid, now - timedelta(days=1), "A1"))
    out = ingest(now, _no_show(pid, now - timedelta(days=2), "A0"))[0]
    assert not isinstance(out, AppError), out
    assert balance(pid, now) == 0
    _verify()


def test_behaviours_sharing_an_order_sensitive_rule_are_re_evaluated_together(db: Db, now: datetime) -> None:
    _install(lambda doc: _rule(doc, "education").update(event=["education.completed", "lecture.attended"]))
    d1, d2 = now - timedelta(days=2), now - timedelta(days=1)
    in_time, arrived = enrol(now), enrol(now)

    def evs(pid: str) -> list[dict[str, Any]]:
        lecture = event(pid, "lecture.attended", d1, {"lecture_id": "L0", "content_id": "C0", "score": 90,
                                                      "pass_mark": 60})
        return [lecture, *[_lesson(pid, d2 + timedelta(minutes=i), f"C{i}", f"{pid}-{i}") for i in range(3)]]

    for ev in evs(in_time):
        ingest_one(now, ev)
    first, *rest = evs(arrived)
    for ev in rest:
        ingest_one(now, ev)
    ingest_one(now, first)
    assert balance(arrived, now) == balance(in_time, now)


def test_re_evaluation_keeps_each_event_on_its_own_programme_version(db: Db, now: datetime) -> None:
    a, b = enrol(now), enrol(now)
    for pid in (a, b):
        ingest_one(now, _lesson(pid, now - timedelta(days=1), "C1", f"{pid}-c1"))  # version 1: 20
    _install(lambda doc: _rule(doc, "education").update(points=30), effective_from=now - timedelta(days=30))
    ingest_one(now, _lesson(a, now - timedelta(days=2), "C0", "a-c0"))  # late, for a only: 30 under version 2
    ingest_one(now, _lesson(b, now - timedelta(hours=1), "C0", "b-c0"))  # current, for b: 30
    assert balance(a, now) == balance(b, now) == 100 + 20 + 30


def test_a_source_key_repeated_in_a_batch_is_won_by_its_first_item(db: Db, now: datetime) -> None:
    pid = enrol(now)
    lesson = _lesson(pid, now - timedelta(hours=1), "C0", "k1")
    reading = event(pid, "health.measurement", now - timedelta(hours=2), bp(), key="k1")
    first, second = ingest(now, lesson, reading)
    assert not isinstance(first, AppError), first
    assert isinstance(second, AppError)
    assert second.code == "events.conflict"
    first, second = ingest(now, event(pid, "health.measurement", now - timedelta(hours=3), bp(), key="k2"),
                           _lesson(pid, now - timedelta(hours=4), "C1", "k2"))
    assert not isinstance(first, AppError), first
    assert isinstance(second, AppError)


def test_re_evaluating_awards_with_held_and_spent_lots_keeps_the_ledger_intact(db: Db, now: datetime) -> None:
    held, spent = enrol(now), enrol(now)
    for pid in (held, spent):
        ingest_one(now, _lesson(pid, now - timedelta(days=1), "C0", f"{pid}-late"))
    with write_tx() as session:
        ledger.hold(session, ledger.wallet_of(session, held), 120, now, ttl=timedelta(hours=1))
        ledger.spend(session, ledger.wallet_of(session, spent), 120, now)
    for pid in (held, spent):
        ingest_one(now, _lesson(pid, now - timedelta(days=2), "C0", f"{pid}-early"))
    _verify()
    assert (balance(held, now), balance(spent, now)) == (120, 0)


def test_a_suspension_restarted_later_does_not_claw_back_a_re_evaluated_award(db: Db, now: datetime) -> None:
    pid = enrol(now)
    hour = timedelta(hours=1)
    for days, appointment in ((40, "A1"), (39, "A2"), (38, "A3")):  # suspended day -38 to day -8
        ingest_one(now, _no_show(pid, now - timedelta(days=days), appointment))
    c1 = ingest_one(now + hour, _lesson(pid, now - timedelta(days=5), "C1", "c1"))
    assert [a["points"] for a in c1["awards"]] == [20]  # after the suspension
    ingest_one(now + 2 * hour, _no_show(pid, now - timedelta(days=20), "A4"))  # inside it: restarts to day +10
    late = ingest_one(now + 3 * hour, _lesson(pid, now - timedelta(days=6), "C0", "c0"))
    assert late["awards"] == []  # suspended now
    assert balance(pid, now) == 100 - 200 + 20  # C1 keeps what it was paid
    _verify()


def test_an_award_withheld_by_a_suspension_since_revoked_stays_withheld(db: Db, now: datetime) -> None:
    pid = enrol(now)
    hour = timedelta(hours=1)
    ids = [ingest_one(now, _no_show(pid, now - timedelta(days=d), a))["event_id"]
           for d, a in ((12, "A1"), (11, "A2"), (10, "A3"))]  # suspended from day -10
    c1 = ingest_one(now + hour, _lesson(pid, now - timedelta(days=5), "C1", "c1"))
    assert [n["code"] for n in c1["notices"]] == ["rules.suspended"]
    with write_tx() as session:
        events.revoke(session, now=now + 2 * hour, reason="HIS correction", event_id=ids[2])
    before = balance(pid, now)
    late = ingest_one(now + 3 * hour, _lesson(pid, now - timedelta(days=30), "C0", "c0"))
    assert [a["points"] for a in late["awards"]] == [20]
    assert balance(pid, now) == before + 20  # C1 is not paid after the fact
    _verify()


def test_re_evaluation_keeps_the_tier_an_event_was_judged_with(db: Db, now: datetime) -> None:
    _install(lambda doc: doc["rules"].append({
        "code": "gold_learning", "names": {"zh": "金卡学习", "en": "Gold learning"},
        "event": "education.completed", "points": 10,
        "conditions": [{"type": "patient", "field": "tier", "op": "eq", "value": "gold"}]}))
    pid = enrol(now)
    c1 = ingest_one(now, _lesson(pid, now - timedelta(days=1), "C1", "c1"))
    assert [a["rule"] for a in c1["awards"]] == ["education"]
    with write_tx() as session:
        session.connection().execute(update(_patients).where(_patients.c.id == pid).values(tier="gold"))
    late = ingest_one(now, _lesson(pid, now - timedelta(days=2), "C0", "c0"))
    assert sum(a["points"] for a in late["awards"]) == 30  # judged now, as gold
    assert balance(pid, now) == 100 + 20 + 30  # C1 keeps what it was judged as


def test_a_repeat_after_a_rejected_first_item_is_still_judged_in_time_order(db: Db, now: datetime) -> None:
    pid = enrol(now)
    d1, d2 = now - timedelta(days=2), now - timedelta(days=1)
    for i, content in enumerate(("C0", "C1", "C2")):  # day 2: C0 and C1 paid (cap 40), C2 not
        ingest_one(now, _lesson(pid, d2 + timedelta(minutes=i), content, f"d2-{i}"))
    ghost = {**event(pid, "health.measurement", d1, bp(), key="kk"), "patient": {"id": "0" * 32}}
    rejected, late = ingest(now, ghost, _lesson(pid, d1, "C0", "kk"))
    assert isinstance(rejected, AppError)
    assert not isinstance(late, AppError), late
    assert [a["points"] for a in late["awards"]] == [20]  # C0 belongs to day 1
    assert balance(pid, now) == 160


def test_many_late_events_re_evaluate_the_later_ones_once(db: Db, now: datetime) -> None:
    pid = enrol(now)
    later = [_lesson(pid, now - timedelta(days=1) + timedelta(minutes=i), f"N{i}", f"n{i}") for i in range(6)]
    for ev in later:
        ingest_one(now, ev)
    early = [_lesson(pid, now - timedelta(days=10 + i), f"E{i}", f"e{i}") for i in range(5)]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        statements.append(sql)

    sa_event.listen(get_engine(), "before_cursor_execute", seen)
    try:
        outs = ingest(now, *early)
    finally:
        sa_event.remove(get_engine(), "before_cursor_execute", seen)
    rewrites = [q for q in statements if q.startswith("UPDATE events SET outcome") and "effects" in q]
    assert len(rewrites) == 6  # each later lesson re-evaluated once, not once per late item
    # running balances in time order (E4 first), as in the bulk path; the last one is the final balance
    assert [o if isinstance(o, AppError) else o["balance"] for o in outs] == [240, 220, 200, 180, 160]
    assert balance(pid, now) == 240
    with read_tx() as session:
        counts = [r[0] for r in session.connection().execute(select(_ev.c.effects).where(
            _ev.c.source_event_id.in_([f"n{i}" for i in range(6)])))]
    assert [(e or {}).get("reevaluated", 0) for e in counts] == [0] * 6  # unchanged awards: no new entries


def test_a_repeated_key_with_another_time_does_not_move_the_re_evaluation(db: Db, now: datetime) -> None:
    pid = enrol(now)
    noon = (now - timedelta(days=1)).replace(hour=4, minute=0, second=0, microsecond=0)  # 12:00 in Shanghai
    ingest_one(now, _lesson(pid, noon + timedelta(hours=1), "C1", "r1"))
    ingest_one(now, _lesson(pid, noon + timedelta(hours=2), "C2", "r2"))  # that day's 40 used
    first = _lesson(pid, now - timedelta(days=10), "C0", "a")
    clash = _lesson(pid, noon + timedelta(hours=3), "C9", "a")  # same key, another payload
    before = _lesson(pid, noon, "C3", "b")  # earlier that day than r1 and r2: paid, and r2 is not
    outs = ingest(now, first, clash, before)
    assert isinstance(outs[1], AppError)
    assert outs[1].code == "events.conflict"
    assert not isinstance(outs[2], AppError)
    assert [a["points"] for a in outs[2]["awards"]] == [20]
    assert balance(pid, now) == 100 + 20 + 40


def test_answers_carry_running_balances_as_in_the_bulk_path(db: Db, now: datetime) -> None:
    pid = enrol(now)
    lessons = ingest(now, _lesson(pid, now - timedelta(days=3), "C0", "x0"),
                     _lesson(pid, now - timedelta(days=2), "C1", "x1"))
    readings = ingest(now, event(pid, "health.measurement", now - timedelta(days=3), bp(), key="m0"),
                      event(pid, "health.measurement", now - timedelta(days=2), bp(), key="m1"))
    assert [o["balance"] for o in lessons] == [120, 140]  # type: ignore[index]
    assert [o["balance"] for o in readings] == [200, 210]  # type: ignore[index]
