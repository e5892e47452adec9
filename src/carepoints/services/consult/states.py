"""The consultation's state rules, pure (no I/O; `now` is a parameter).

    open ──staff answers──▶ answered ──patient writes──▶ waiting ──staff answers──▶ answered
      └──────────────┴──────────── closed (by the patient, the staff, or inactivity) ◀──┘

- `open`: nobody from the hospital has answered yet (the queue, from `created_at`);
- `answered`: the hospital's message is the latest, the patient's turn;
- `waiting`: the patient wrote after an answer, the hospital's turn again (the queue, from then);
- `closed`: final. Only an `answered` thread closes by inactivity: a thread waiting for the
  hospital stays on the queue (overdue) until someone answers or closes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class State(StrEnum):
    open = "open"
    answered = "answered"
    waiting = "waiting"
    closed = "closed"


class Author(StrEnum):
    patient = "patient"
    staff = "staff"
    system = "system"


# the hospital's turn: these threads are on the staff queue
HOSPITALS_TURN = (State.open, State.waiting)
LIVE = (State.open, State.answered, State.waiting)


@dataclass(frozen=True, slots=True)
class Step:
    """What one message changes: the new state, since when the patient waits for the hospital
    (None: not waiting), and whether this is the hospital's first answer."""

    state: State
    waiting_since: datetime | None
    first_response: bool


def after_message(state: State, author: Author, waiting_since: datetime | None, answered_before: bool,
                  now: datetime) -> Step:
    """The thread after a message by `author` (never called on a closed thread)."""
    if state is State.closed:
        raise ValueError("a closed thread takes no message")
    if author is Author.staff:
        return Step(State.answered, None, not answered_before)
    if author is Author.system:
        return Step(state, waiting_since, False)
    if state is State.answered:  # the patient writes back: the hospital's turn from now
        return Step(State.waiting, now, False)
    return Step(state, waiting_since or now, False)  # open / waiting: still waiting since then


def waited_minutes(waiting_since: datetime | None, now: datetime) -> int | None:
    """Whole minutes the patient has waited for the hospital (None when it is not their wait)."""
    if waiting_since is None:
        return None
    return max(0, int((now - waiting_since).total_seconds() // 60))


def overdue(waiting_since: datetime | None, now: datetime, target_minutes: int) -> bool:
    """Past the response-time target (a wait of exactly the target is still on time)."""
    return waiting_since is not None and now - waiting_since > timedelta(minutes=target_minutes)


def due_by(waiting_since: datetime | None, target_minutes: int) -> datetime | None:
    return None if waiting_since is None else waiting_since + timedelta(minutes=target_minutes)


def response_seconds(created_at: datetime, now: datetime) -> int:
    """The time to the hospital's first answer, whole seconds, never negative."""
    return max(0, int((now - created_at).total_seconds()))


def idle_cutoff(now: datetime, idle_hours: int) -> datetime:
    """Answered threads with no message since this instant close by inactivity."""
    return now - timedelta(hours=idle_hours)


def may_rate(state: State, rated: bool) -> bool:
    return state is State.closed and not rated
