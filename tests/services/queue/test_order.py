"""The queue's order and the wait estimate, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carepoints.services.queue.order import Waiting, ahead_of, average_interval, estimate_minutes, order

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def w(seq: int, *, late_by: float | None = None, early: float = 5, priority: bool = False, skips: int = 0,
      skipped_at: datetime | None = None) -> Waiting:
    slot = T0 + timedelta(minutes=10 * (seq - 1))
    arrived = slot + timedelta(minutes=late_by) if late_by is not None else slot - timedelta(minutes=early)
    return Waiting(appointment_id=f"a{seq}", patient_id=f"p{seq}", seq=seq, slot_start=slot, checked_in_at=arrived,
                   late=late_by is not None, priority=priority, skips=skips, last_skipped_at=skipped_at)


def seqs(items: list[Waiting]) -> list[int]:
    return [x.seq for x in items]


def test_on_time_by_sequence_number() -> None:
    assert seqs(order([w(3), w(1), w(2)])) == [1, 2, 3]


def test_priority_first_by_number() -> None:
    assert seqs(order([w(1), w(5, priority=True), w(2), w(4, priority=True)])) == [4, 5, 1, 2]


def test_late_goes_after_on_time_patients_whose_slot_began_before_the_arrival() -> None:
    # slot 1 starts at 09:00 and arrives 09:25: after slots 2 (09:10) and 3 (09:20), before 4 (09:30)
    assert seqs(order([w(1, late_by=25), w(2), w(3), w(4)])) == [2, 3, 1, 4]


def test_late_ties_go_after_the_on_time_patient() -> None:
    # arriving exactly when slot 3 begins: slot 3 first
    assert seqs(order([w(1, late_by=20), w(3)])) == [3, 1]


def test_skipped_once_to_the_end_in_skip_order_twice_out() -> None:
    queue = order([w(1, skips=1, skipped_at=T0 + timedelta(minutes=9)), w(2, skips=1, skipped_at=T0),
                   w(3), w(4, priority=True), w(5, skips=2, skipped_at=T0)])
    assert seqs(queue) == [4, 3, 2, 1]
    assert ahead_of(queue, "a1") == 3
    assert ahead_of(queue, "a5") is None


def test_average_interval_needs_enough_calls() -> None:
    assert average_interval([T0, T0 + timedelta(minutes=6)], 3) is None
    times = [T0 + timedelta(minutes=m) for m in (0, 6, 9)]
    assert average_interval(list(reversed(times)), 3) == 4.5
    assert estimate_minutes(2, 4.5) == 14  # 3 × 4.5 = 13.5 → 14
    assert estimate_minutes(0, 0.1) == 1
    assert estimate_minutes(2, None) is None
