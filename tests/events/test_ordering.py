"""Order-sensitive rules (once per item with another limit) are judged in time
order: a late earlier event re-evaluates the patient's later events of the same
behaviour, and the ledger changes only where an award changes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from carepoints.events import service as events
from carepoints.events.models import Event
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.errors import AppError
from carepoints.ledger import service as ledger
from carepoints.ledger.models import Transfer
from tests.conftest import Db
from tests.helpers import balance, bp, enrol, event, ingest, ingest_one

_tr = table(Transfer)
_ev = table(Event)


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
