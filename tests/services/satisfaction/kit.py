"""A hospital for the satisfaction tests: departments with a clinician each, patients with attended
visits on chosen local days (booked the day before), their reviews and monthly surveys through the
engagement services on that clock, the loop's jobs, and reading the tables back."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carepoints.audit.service import Actor
from carepoints.config import reset_settings
from carepoints.engagement.followups import responses
from carepoints.engagement.followups.schemas import SurveyResponseCreate
from carepoints.engagement.learning import reviews
from carepoints.engagement.learning.schemas import ReviewCreate
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.outbox import OutboxMessage
from carepoints.kit.time import utc_now
from carepoints.services.satisfaction import tasks
from carepoints.services.satisfaction.models import ImprovementItem, SatisfactionAlert, SatisfactionScore
from tests.analytics import visits_kit as vk
from tests.analytics.visits_kit import at
from tests.conftest import Db
from tests.helpers import enrol

SYSTEM = Actor("api_key", "k-satisfaction-test", "admin")
_n = itertools.count(1)


@pytest.fixture
def sdb(db: Db, monkeypatch: pytest.MonkeyPatch) -> Iterator[Db]:
    """The `db` database with the scan margin off (committed rows are read at once)."""
    monkeypatch.setenv("CAREPOINTS_SATISFACTION_SCAN_MARGIN_SECONDS", "0")
    reset_settings()
    yield db
    reset_settings()


class World:
    """Institution h1; departments by code, each with clinician `<code>1`; `visit(...)` books and
    attends one visit of a (new) patient on a local day."""

    def __init__(self, *codes: str, start: date | None = None) -> None:
        self.start = start or vk.today() - timedelta(days=40)
        self.h = vk.Hospital(at(self.start - timedelta(days=1), "09:00"))
        self.h.institution("h1")
        self.sessions: dict[tuple[str, date], str] = {}
        for code in codes:
            self.h.department(code, "h1")
            self.h.clinician(f"{code}1", code)

    @property
    def departments(self) -> dict[str, str]:
        return self.h.departments

    def patient(self) -> str:
        return enrol(at(self.start - timedelta(days=1), "08:00"))

    def visit(self, dept: str, day: date, pid: str | None = None) -> dict[str, Any]:
        pid = pid or self.patient()
        key = (dept, day)
        if key not in self.sessions:
            self.sessions[key] = self.h.session(f"{dept}1", day, "08:00", "12:00")
        appt = vk.book(pid, self.sessions[key], at(day - timedelta(days=1), "20:00"))
        vk.attend(appt)
        return appt

    def review(self, dept: str, day: date, rating: int, text: str = "") -> dict[str, Any]:
        """A visit at `dept` on `day` and its review at 13:00 that day."""
        appt = self.visit(dept, day)
        with write_tx() as s:
            return reviews.submit(s, appt["id"], ReviewCreate(rating=rating, text=text or f"评价{next(_n)}"),
                                  at(day, "13:00"))


def survey(pid: str, answers: dict[str, Any], when: datetime | None = None) -> dict[str, Any]:
    with write_tx() as s:
        doc, _ = responses.answer_survey(s, SurveyResponseCreate.model_validate(
            {"patient_id": pid, "answers": answers}), SYSTEM, when or utc_now())
    return doc


def levels(overall: str = "satisfied", waiting: str = "satisfied", staff: str = "satisfied", **more: Any
           ) -> dict[str, Any]:
    return {"overall": overall, "waiting": waiting, "staff": staff, **more}


def detect() -> dict[str, Any]:
    return tasks.detect_improvements(utc_now())


def rows(model: Any) -> list[dict[str, Any]]:
    with read_tx() as s:
        return [dict(r) for r in s.connection().execute(select(table(model))).mappings()]


def items() -> list[dict[str, Any]]:
    return sorted(rows(ImprovementItem), key=lambda r: r["id"])


def scores() -> list[dict[str, Any]]:
    return rows(SatisfactionScore)


def alerts() -> list[dict[str, Any]]:
    return rows(SatisfactionAlert)


def outbox(topic: str) -> list[dict[str, Any]]:
    with read_tx() as s:
        found = s.execute(select(OutboxMessage.payload).where(OutboxMessage.topic == topic)
                          .order_by(OutboxMessage.created_at, OutboxMessage.id)).all()
    return [dict(r[0]) for r in found]
