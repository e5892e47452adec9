"""The consultation's state rules, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carepoints.services.consult import states
from carepoints.services.consult.states import Author, State

T0 = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)


def test_staff_answer_moves_to_answered_and_stops_the_wait() -> None:
    step = states.after_message(State.open, Author.staff, T0, answered_before=False, now=T0 + timedelta(minutes=9))
    assert step == states.Step(State.answered, None, True)
    again = states.after_message(State.waiting, Author.staff, T0, answered_before=True, now=T0)
    assert again == states.Step(State.answered, None, False)  # only the first answer counts as the first response


def test_patient_writes_back_and_the_wait_starts_then() -> None:
    later = T0 + timedelta(hours=5)
    assert states.after_message(State.answered, Author.patient, None, True, later) == \
        states.Step(State.waiting, later, False)
    # more from the patient while waiting keeps the first waiting time (the queue order is fair)
    assert states.after_message(State.waiting, Author.patient, T0, True, later).waiting_since == T0
    assert states.after_message(State.open, Author.patient, T0, False, later) == states.Step(State.open, T0, False)


def test_a_closed_thread_takes_no_message() -> None:
    with pytest.raises(ValueError, match="closed"):
        states.after_message(State.closed, Author.patient, None, True, T0)


@pytest.mark.parametrize(("waited", "overdue"), [(0, False), (119, False), (120, False), (121, True)])
def test_overdue_is_past_the_target(waited: int, overdue: bool) -> None:
    now = T0 + timedelta(minutes=waited)
    assert states.overdue(T0, now, 120) is overdue
    assert states.waited_minutes(T0, now) == waited
    assert states.due_by(T0, 120) == T0 + timedelta(minutes=120)


def test_no_wait_is_never_overdue() -> None:
    assert states.overdue(None, T0, 1) is False
    assert states.waited_minutes(None, T0) is None
    assert states.due_by(None, 5) is None


def test_response_seconds_and_idle_cutoff() -> None:
    assert states.response_seconds(T0, T0 + timedelta(minutes=3, seconds=7)) == 187
    assert states.response_seconds(T0, T0 - timedelta(seconds=5)) == 0  # clocks never make it negative
    assert states.idle_cutoff(T0, 72) == T0 - timedelta(hours=72)
    assert states.may_rate(State.closed, rated=False)
    assert not states.may_rate(State.closed, rated=True)
    assert not states.may_rate(State.answered, rated=False)
