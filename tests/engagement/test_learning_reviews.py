"""Visit reviews on SQLite and PostgreSQL: only after an attended visit, once per
appointment, +20 for 50 characters or more, and the content gate against the
patient's own earlier reviews only (both sides of the threshold)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from carepoints.engagement.learning import reviews
from carepoints.engagement.learning.errors import ReviewExistsError, ReviewNotAttendedError
from carepoints.engagement.learning.schemas import ReviewCreate
from carepoints.kit.db import write_tx
from carepoints.kit.errors import AppError
from carepoints.scheduling import service as sch
from carepoints.scheduling.schemas import (
    AppointmentCreate,
    CheckInIn,
    ClinicianCreate,
    DepartmentCreate,
    InstitutionCreate,
    SessionCreate,
)
from tests.conftest import Db
from tests.helpers import balance, enrol, error

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

CST = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 15, 2, 30, tzinfo=UTC)
FRIDAY = date(2026, 6, 19)
LATER = datetime(2026, 6, 20, 2, 0, tzinfo=UTC)
UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"
TEXT = "医生非常耐心,详细解释了检查结果和用药注意事项,护士也很热情,整个就诊过程安排得井井有条,等候时间也不长,非常满意。"
OTHER = "挂号流程顺畅,自助机缴费很快,诊室环境干净整洁,医生问诊仔细并给了饮食和运动方面的建议,复诊也约好了,体验很好。"
_keys = iter(range(10**6))


class Hospital:
    def __init__(self) -> None:
        with write_tx() as s:
            inst = sch.create_institution(s, InstitutionCreate(code="h1", name_zh="第一医院"), NOW)
            dept = sch.create_department(s, DepartmentCreate(institution_id=inst["id"], code="c", name_zh="心内科"),
                                         NOW)["id"]
            self.clinicians = [sch.create_clinician(s, ClinicianCreate(department_id=dept, code=f"d{i}",
                                                                       name=f"医生{i}"), NOW)["id"] for i in range(3)]
        self.n = 0

    def visit(self, pid: str, *, attend: bool = True) -> str:
        """An appointment of `pid` on a new session (a new clinician-day), attended unless not."""
        day = FRIDAY + timedelta(days=self.n // 3)
        clinician = self.clinicians[self.n % 3]
        self.n += 1
        with write_tx() as s:
            sess = sch.create_session(s, SessionCreate(
                clinician_id=clinician, date=day, start=time(8), end=time(9), slot_minutes=10,
                fee_cny=Decimal("15"), release_at=NOW - timedelta(days=1), referral_share=Decimal(0)), NOW)
            doc, _ = sch.book(s, AppointmentCreate(patient_id=pid, session_id=sess["id"],
                                                   idempotency_key=f"k{next(_keys)}"), NOW, booked_by="patient")
        start = datetime.fromisoformat(doc["start"])
        if attend:
            with write_tx() as s:
                sch.check_in(s, doc["id"], CheckInIn(), start - timedelta(minutes=5))
            with write_tx() as s:
                sch.attend(s, doc["id"], start + timedelta(minutes=5), start + timedelta(minutes=5))
        return str(doc["id"])


@pytest.fixture
def hospital(db: Db) -> Hospital:
    return Hospital()


def review(appt: str, text: str = TEXT, rating: int = 5) -> dict[str, Any]:
    with write_tx() as s:
        return reviews.submit(s, appt, ReviewCreate(rating=rating, text=text), LATER)


def refused(fn: Any, *args: Any) -> AppError:
    with pytest.raises(AppError) as info:
        fn(*args)
    return info.value


def test_a_review_of_an_attended_visit_earns_20_once(hospital: Hospital) -> None:
    pid = enrol(NOW)
    appt = hospital.visit(pid)
    before = balance(pid, LATER)
    doc = review(appt)
    assert doc["earned_points"] is True
    assert [(a["rule"], a["points"]) for a in doc["outcome"]["awards"]] == [("review", 20)]
    assert balance(pid, LATER) == before + 20
    assert type(refused(review, appt, OTHER)) is ReviewExistsError
    assert balance(pid, LATER) == before + 20


def test_only_an_attended_visit_can_be_reviewed(hospital: Hospital) -> None:
    pid = enrol(NOW)
    appt = hospital.visit(pid, attend=False)
    assert type(refused(review, appt)) is ReviewNotAttendedError


def test_a_short_review_is_stored_and_earns_nothing(hospital: Hospital) -> None:
    pid = enrol(NOW)
    doc = review(hospital.visit(pid), "很好")
    assert doc["outcome"]["awards"] == []
    assert [n["code"] for n in doc["outcome"]["notices"]] == ["rules.condition_not_met"]


def test_a_near_repeat_of_the_patients_own_review_earns_nothing(hospital: Hospital) -> None:
    pid = enrol(NOW)
    first = review(hospital.visit(pid))
    second = hospital.visit(pid)
    before = balance(pid, LATER)
    copy = review(second, TEXT.replace(",", " ") + "!!")
    assert (copy["earned_points"], copy["repeat_of"]) == (False, first["id"])
    assert copy["outcome"]["awards"] == []
    assert [n["code"] for n in copy["outcome"]["notices"]] == ["engagement.review_repeated"]
    assert balance(pid, LATER) == before
    fresh = review(hospital.visit(pid), OTHER)
    assert fresh["outcome"]["awards"][0]["points"] == 20


def test_another_patients_text_never_counts(hospital: Hospital) -> None:
    a, b = enrol(NOW), enrol(NOW)
    review(hospital.visit(a))
    doc = review(hospital.visit(b))  # word for word the same as a's
    assert doc["earned_points"] is True
    assert doc["outcome"]["awards"][0]["points"] == 20


@pytest.mark.parametrize(("above", "earns"), [(0.0, False), (0.0001, True)])
def test_both_sides_of_the_threshold(hospital: Hospital, monkeypatch: pytest.MonkeyPatch, above: float,
                                     earns: bool) -> None:
    from carepoints.config import reset_settings
    from carepoints.engagement.learning import textgate
    near = TEXT[:-3] + "很满意"  # a few characters changed
    ratio = textgate.similarity(textgate.normalise(near), textgate.normalise(TEXT))
    assert 0.9 < ratio < 0.999
    monkeypatch.setenv("CAREPOINTS_REVIEW_REPEAT_SIMILARITY", repr(ratio + above))  # exactly at it, or just above
    reset_settings()
    pid = enrol(NOW)
    review(hospital.visit(pid))
    doc = review(hospital.visit(pid), near)
    assert doc["earned_points"] is earns
    assert bool(doc["outcome"]["awards"]) is earns


def test_reviews_over_http(api: Api, hospital: Hospital) -> None:
    pid = api.enrol()
    appt = hospital.visit(pid)
    r = api.post(f"/appointments/{appt}/review", {"rating": 4, "text": TEXT})
    assert r.status_code == 201, r.text
    assert r.json()["outcome"]["awards"][0]["points"] == 20
    got = api.get(f"/appointments/{appt}/review")
    assert (got.status_code, got.json()["rating"], got.json()["text"]) == (200, 4, TEXT)
    listed = api.get(f"/patients/{pid}/reviews").json()
    assert [i["id"] for i in listed["items"]] == [r.json()["id"]]
    error(api.post(f"/appointments/{appt}/review", {"rating": 4, "text": OTHER}), 409, "engagement.review_exists")
    unattended = hospital.visit(pid, attend=False)
    error(api.post(f"/appointments/{unattended}/review", {"rating": 4, "text": TEXT}), 409,
          "engagement.review_not_attended")
    error(api.get(f"/appointments/{unattended}/review"), 404, "engagement.review_not_found")
    error(api.post(f"/appointments/{UNKNOWN}/review", {"rating": 4, "text": TEXT}), 404,
          "scheduling.appointment_not_found")
    error(api.get(f"/patients/{UNKNOWN}/reviews"), 404, "patients.not_found")


@pytest.mark.parametrize("body", [{"rating": 0, "text": "x"}, {"rating": 6, "text": "x"}, {"text": "x"},
                                  {"rating": 3, "text": "x" * 2001}, {"rating": 3, "text": "x", "stars": 5},
                                  {"rating": "good", "text": "x"}])
def test_bad_reviews_are_422(api: Api, body: dict[str, Any]) -> None:
    error(api.post(f"/appointments/{UNKNOWN}/review", body), 422, "request.invalid")
