"""The queue's order, a pure function of the session's checked-in appointments (no I/O).

1. Priority check-ins (the elderly by age, patients staff flag) come first, by sequence number.
2. Everyone else by their turn: an on-time arrival's turn is their slot's start, a late
   arrival's turn is the time they checked in, so a late patient goes after every patient
   checked in on time whose slot starts before the arrival, and before those whose slot starts
   later; on equal turns on-time before late, then the sequence number.
3. A patient the desk skipped once (absent when called) goes to the end, in the order they were
   skipped; skipped a second time they leave the queue (staff may still attend them directly).
Patients not checked in are not in the queue but keep their number: they join at their turn
when they check in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_SKIPS = 2  # the second skip takes a patient out of the queue
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Waiting:
    appointment_id: str
    patient_id: str
    seq: int
    slot_start: datetime
    checked_in_at: datetime
    late: bool
    priority: bool
    skips: int = 0
    last_skipped_at: datetime | None = None


def _key(w: Waiting) -> tuple[int, datetime, int, int]:
    if w.skips:
        assert w.last_skipped_at is not None  # noqa: S101 - a skip has its time
        return (2, w.last_skipped_at, 0, w.seq)
    if w.priority:
        return (0, _EPOCH, 0, w.seq)
    turn = w.checked_in_at if w.late else w.slot_start
    return (1, turn, 1 if w.late else 0, w.seq)


def order(waiting: Iterable[Waiting]) -> list[Waiting]:
    """The waiting patients in the order they are called (see the module docstring)."""
    return sorted((w for w in waiting if w.skips < MAX_SKIPS), key=_key)


def ahead_of(queue: Sequence[Waiting], appointment_id: str) -> int | None:
    """How many are called before this appointment, None when it is not waiting."""
    for i, w in enumerate(queue):
        if w.appointment_id == appointment_id:
            return i
    return None


def average_interval(called_at: Sequence[datetime], min_calls: int) -> float | None:
    """The mean minutes between consecutive first calls of the session today (the service time
    per patient), None with fewer than `min_calls` calls."""
    times = sorted(called_at)
    if len(times) < max(min_calls, 2):
        return None
    return (times[-1] - times[0]).total_seconds() / 60 / (len(times) - 1)


def estimate_minutes(ahead: int, interval: float | None) -> int | None:
    """The wait until called: (ahead + 1) service times, rounded up to a whole minute."""
    if interval is None:
        return None
    return max(1, -int(-((ahead + 1) * interval) // 1))
