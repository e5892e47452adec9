"""Observers of accepted events (events.service.observe): called in the ingest
transaction with the newly accepted rows of their type, whichever path the events
took; never for replays, conflicts or rejected items; a failing observer fails the
ingest (nothing is half-written)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.orm import Session

from carepoints.events import service as events
from tests.helpers import event

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

SELF = {"action": "pay"}


@pytest.fixture
def seen() -> Iterator[list[tuple[str, str, str]]]:
    calls: list[tuple[str, str, str]] = []

    def watch(session: Session, rows: list[dict[str, Any]], now: datetime) -> None:
        assert session.in_transaction()
        calls.extend((r["id"], r["patient_id"], r["type"]) for r in rows)

    events.observe("selfservice.used", watch)
    events.observe("selfservice.used", watch)  # registering twice calls it once
    yield calls
    events.unobserve("selfservice.used", watch)


def test_an_observer_sees_each_accepted_event_once(api: Api, seen: list[tuple[str, str, str]]) -> None:
    pid = api.enrol()
    at = api.now() - timedelta(hours=1)
    first = api.send(event(pid, "selfservice.used", at, SELF, key="k1"))
    replay = api.send(event(pid, "selfservice.used", at, SELF, key="k1"))
    assert replay["duplicate"] is True
    outcomes = api.batch([event(pid, "selfservice.used", at, SELF, key="k2"),
                          event(pid, "selfservice.used", at, {"action": "nonsense"}, key="k3"),
                          event(pid, "appointment.no_show", at, {"appointment_id": "a1",
                                                                  "slot_start": at.isoformat()})])
    assert outcomes[1]["status"] == 422
    assert [c[0] for c in seen] == [first["event_id"], outcomes[0]["event_id"]]
    assert {c[1] for c in seen} == {pid}
    assert {c[2] for c in seen} == {"selfservice.used"}


def test_a_failing_observer_fails_the_ingest(api: Api) -> None:
    def boom(session: Session, rows: list[dict[str, Any]], now: datetime) -> None:
        raise RuntimeError("observer failed")

    pid = api.enrol()
    before = api.balance(pid)
    events.observe("selfservice.used", boom)
    try:
        r = api.post("/events", event(pid, "selfservice.used", api.now() - timedelta(hours=1), SELF, key="k9"))
        assert r.status_code == 500
        assert r.json()["error"] == "internal.error"
    finally:
        events.unobserve("selfservice.used", boom)
    assert api.balance(pid) == before
    again = api.send(event(pid, "selfservice.used", api.now() - timedelta(hours=1), SELF, key="k9"))
    assert again["duplicate"] is False  # the failed attempt stored nothing
