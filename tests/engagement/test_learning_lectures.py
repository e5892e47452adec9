"""Health lectures on SQLite and PostgreSQL: seats are never oversold under
concurrency, one registration per patient, cancelling frees the seat, sign-in within
the window emits `lecture.attended` (+30) once, walk-ins take free seats."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Table, func, select

from carepoints.audit.service import Actor
from carepoints.engagement.learning import lectures
from carepoints.engagement.learning.errors import (
    AlreadyAttendedError,
    LectureFullError,
    RegistrationClosedError,
    SignInWindowError,
)
from carepoints.engagement.learning.models import Lecture, LectureRegistration
from carepoints.engagement.learning.schemas import LectureCreate, RegistrationCreate, SignInCreate
from carepoints.events.models import Event
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.kit.outbox import OutboxMessage
from tests.conftest import Db
from tests.helpers import balance, enrol, error
from tests.locks import errors, oks, race

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

NOW = datetime(2026, 6, 15, 2, 30, tzinfo=UTC)  # Monday 10:30 in Shanghai
START = NOW + timedelta(days=2)  # Wednesday 10:30 local
END = START + timedelta(hours=1, minutes=30)
STAFF = Actor("staff", "0190a5f0-0000-7000-8000-0000000000aa", "nurse")
UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"
_lectures: Table = Lecture.__table__  # type: ignore[assignment]


def new_lecture(seats: int = 3, start: datetime = START, end: datetime = END) -> dict[str, Any]:
    with write_tx() as s:
        return lectures.create(s, LectureCreate(title={"zh": "糖尿病饮食讲座"}, starts_at=start,
                                                ends_at=end, place="门诊楼三楼报告厅", seats=seats), STAFF, NOW)


def register(lid: str, pid: str, at: datetime = NOW) -> tuple[dict[str, Any], bool]:
    with write_tx() as s:
        return lectures.register(s, lid, RegistrationCreate(patient_id=pid), STAFF, at)


def cancel(lid: str, rid: str, at: datetime = NOW) -> dict[str, Any]:
    with write_tx() as s:
        return lectures.cancel(s, lid, rid, STAFF, at)


def sign_in(lid: str, pid: str, now: datetime, at: datetime | None = None) -> tuple[dict[str, Any], bool]:
    with write_tx() as s:
        return lectures.sign_in(s, lid, SignInCreate(patient_id=pid, at=at), STAFF, now)


def lecture(lid: str) -> dict[str, Any]:
    with read_tx() as s:
        return lectures.read(s, lid)


def live_rows(lid: str) -> int:
    t = LectureRegistration.__table__
    with read_tx() as s:
        return int(s.connection().execute(select(func.count()).select_from(t).where(
            t.c.lecture_id == lid, t.c.status.in_(["registered", "attended"]))).scalar_one())


def refused(fn: Any, *args: Any) -> AppError:
    with pytest.raises(AppError) as info:
        fn(*args)
    return info.value


def topics(pid: str) -> list[str]:
    t = OutboxMessage.__table__
    with read_tx() as s:
        return [r[0] for r in s.connection().execute(select(t.c.topic).where(t.c.key == pid).order_by(t.c.id))]


# --- seats -----------------------------------------------------------------------------------

def test_seats_fill_up_and_a_cancel_frees_one(db: Db) -> None:
    lid = new_lecture(seats=2)["id"]
    a, b, c = (enrol(NOW) for _ in range(3))
    doc, created = register(lid, a)
    assert (created, doc["status"]) == (True, "registered")
    assert register(lid, a)[1] is False  # again: the same registration
    register(lid, b)
    assert type(refused(register, lid, c)) is LectureFullError
    assert (lecture(lid)["taken"], lecture(lid)["seats_left"]) == (2, 0)
    assert cancel(lid, doc["id"])["status"] == "cancelled"
    assert cancel(lid, doc["id"])["status"] == "cancelled"  # again: frees nothing more
    assert lecture(lid)["seats_left"] == 1
    register(lid, c)
    assert type(refused(register, lid, a)) is LectureFullError  # a's seat went to c
    assert live_rows(lid) == lecture(lid)["taken"] == 2
    assert "lecture.registered" in topics(a)
    assert "lecture.registration_cancelled" in topics(a)


def test_a_cancelled_registration_can_register_again(db: Db) -> None:
    lid = new_lecture(seats=1)["id"]
    pid = enrol(NOW)
    doc, _ = register(lid, pid)
    cancel(lid, doc["id"])
    again, created = register(lid, pid)
    assert (again["id"], again["status"], created) == (doc["id"], "registered", True)
    assert lecture(lid)["taken"] == 1


def test_registration_closes_when_the_lecture_starts(db: Db) -> None:
    lid = new_lecture()["id"]
    pid = enrol(NOW)
    assert register(lid, pid, START - timedelta(microseconds=1))[1] is True
    other = enrol(NOW)
    assert type(refused(register, lid, other, START)) is RegistrationClosedError


def test_eight_racers_for_three_seats(racing: Db) -> None:
    lid = new_lecture(seats=3)["id"]
    pids = [enrol(NOW) for _ in range(8)]
    results = race(racing, [lambda p=p: register(lid, p) for p in pids],  # type: ignore[misc]
                   lock=(_lectures, [lid]))
    assert len(oks(results)) == 3
    assert [type(e) for e in errors(results)] == [LectureFullError] * 5
    assert lecture(lid)["taken"] == live_rows(lid) == 3


def test_racing_walk_ins_and_registrations_never_oversell(racing: Db) -> None:
    lid = new_lecture(seats=4, start=NOW + timedelta(minutes=30), end=NOW + timedelta(hours=2))["id"]
    pids = [enrol(NOW) for _ in range(10)]
    fns: list[Callable[[], Any]] = [
        partial(register, lid, p) if i % 2 else partial(sign_in, lid, p, NOW) for i, p in enumerate(pids)]
    results = race(racing, fns, lock=(_lectures, [lid]))
    assert len(oks(results)) == 4
    assert all(type(e) is LectureFullError for e in errors(results))
    assert lecture(lid)["taken"] == live_rows(lid) == 4


# --- sign-in ---------------------------------------------------------------------------------

def test_sign_in_emits_lecture_attended_once(db: Db) -> None:
    lid = new_lecture()["id"]
    pid = enrol(NOW)
    reg, _ = register(lid, pid)
    doc, created = sign_in(lid, pid, START + timedelta(minutes=5))
    assert (created, doc["walk_in"]) == (True, False)
    assert [(a["rule"], a["points"]) for a in doc["outcome"]["awards"]] == [("lecture", 30)]
    assert balance(pid, START) == 130
    again, created = sign_in(lid, pid, START + timedelta(minutes=20))
    assert (created, again["id"], again["outcome"]["duplicate"]) == (False, doc["id"], True)
    assert balance(pid, START) == 130
    with read_tx() as s:
        n = s.connection().execute(select(func.count()).select_from(Event.__table__).where(
            Event.__table__.c.type == "lecture.attended")).scalar_one()
    assert n == 1
    assert lecture(lid)["taken"] == 1  # the registered seat, not a second one
    assert type(refused(cancel, lid, reg["id"], START)) is AlreadyAttendedError


def test_a_walk_in_takes_a_free_seat_and_is_refused_when_full(db: Db) -> None:
    lid = new_lecture(seats=2)["id"]
    registered, walk_in, late = (enrol(NOW) for _ in range(3))
    register(lid, registered)
    doc, _ = sign_in(lid, walk_in, START)
    assert doc["walk_in"] is True
    assert doc["outcome"]["awards"][0]["points"] == 30
    assert type(refused(sign_in, lid, late, START)) is LectureFullError
    assert balance(late, START) == 100
    sign_in(lid, registered, START)  # a registered patient always has a seat
    assert lecture(lid)["taken"] == live_rows(lid) == 2


def test_a_cancelled_registration_signs_in_as_a_walk_in(db: Db) -> None:
    lid = new_lecture(seats=1)["id"]
    pid = enrol(NOW)
    reg, _ = register(lid, pid)
    cancel(lid, reg["id"])
    doc, _ = sign_in(lid, pid, START)
    assert doc["walk_in"] is True
    assert lecture(lid)["taken"] == 1


@pytest.mark.parametrize(("offset", "ok"), [
    (-timedelta(minutes=60, microseconds=1), False),
    (-timedelta(minutes=60), True),
    (END - START + timedelta(minutes=30), True),
    (END - START + timedelta(minutes=30, microseconds=1), False),
])
def test_the_sign_in_window(db: Db, offset: timedelta, ok: bool) -> None:
    lid = new_lecture()["id"]
    pid = enrol(NOW)
    at = START + offset
    if ok:
        assert sign_in(lid, pid, at)[1] is True
    else:
        assert type(refused(sign_in, lid, pid, at)) is SignInWindowError
        assert balance(pid, at) == 100


def test_sign_in_at_an_earlier_time_given_by_staff(db: Db) -> None:
    lid = new_lecture()["id"]
    pid = enrol(NOW)
    late_entry = END + timedelta(hours=3)  # staff enter the paper list afterwards
    doc, _ = sign_in(lid, pid, late_entry, at=START + timedelta(minutes=10))
    assert doc["signed_in_at"] == (START + timedelta(minutes=10)).astimezone(
        datetime.fromisoformat(doc["signed_in_at"]).tzinfo).isoformat()
    assert type(refused(sign_in, lid, enrol(NOW), late_entry, END + timedelta(hours=1))) is SignInWindowError


def test_a_future_at_counts_as_now(db: Db) -> None:
    lid = new_lecture()["id"]
    pid = enrol(NOW)
    early = START - timedelta(hours=2)
    assert type(refused(sign_in, lid, pid, early, START)) is SignInWindowError


# --- over HTTP -------------------------------------------------------------------------------

def lecture_body(api: Api, **extra: Any) -> dict[str, Any]:
    start = api.now() + timedelta(days=1)
    body: dict[str, Any] = {"title": {"zh": "高血压健康讲座", "en": "Hypertension talk"},
                            "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat(),
                            "place": "报告厅", "seats": 2}
    body.update(extra)
    return body


def test_lectures_over_http(api: Api) -> None:
    r = api.post("/lectures", lecture_body(api))
    assert r.status_code == 201, r.text
    lid = r.json()["id"]
    was = api.now() - timedelta(days=2)
    past = api.post("/lectures", lecture_body(api, starts_at=was.isoformat(),
                                              ends_at=(was + timedelta(hours=2)).isoformat()))
    assert past.status_code == 201, past.text
    assert [i["id"] for i in api.get("/lectures").json()["items"]] == [lid]  # upcoming only
    pid = api.enrol()
    reg = api.post(f"/lectures/{lid}/registrations", {"patient_id": pid})
    assert reg.status_code == 201, reg.text
    assert api.post(f"/lectures/{lid}/registrations", {"patient_id": pid}).status_code == 200
    assert api.get(f"/lectures/{lid}").json()["seats_left"] == 1
    error(api.post(f"/lectures/{lid}/sign-ins", {"patient_id": pid}), 409, "engagement.lecture_sign_in_closed")
    cancelled = api.post(f"/lectures/{lid}/registrations/{reg.json()['id']}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert api.get(f"/lectures/{lid}").json()["seats_left"] == 2


def test_sign_in_over_http_now(api: Api) -> None:
    start = api.now() + timedelta(minutes=30)
    lid = api.post("/lectures", lecture_body(api, starts_at=start.isoformat(),
                                             ends_at=(start + timedelta(hours=1)).isoformat())).json()["id"]
    pid = api.enrol()
    r = api.post(f"/lectures/{lid}/sign-ins", {"patient_id": pid})
    assert r.status_code == 201, r.text
    assert r.json()["outcome"]["awards"][0] == {"rule": "lecture", "points": 30,
                                                "message": r.json()["outcome"]["awards"][0]["message"]}
    again = api.post(f"/lectures/{lid}/sign-ins", {"patient_id": pid})
    assert (again.status_code, again.json()["outcome"]["duplicate"]) == (200, True)
    assert api.balance(pid) == 130
    nurse = api.make_key("integration", "app")  # the hospital app may not sign people in
    error(api.post(f"/lectures/{lid}/sign-ins", {"patient_id": api.enrol()}, key=nurse), 403, "auth.forbidden")


@pytest.mark.parametrize("change", [
    {"seats": 0}, {"seats": 5001}, {"place": ""}, {"title": {"en": "no zh"}}, {"title": "plain"},
    {"starts_at": "2026-12-01T10:00:00"},  # no offset
    {"ends_at": "2020-01-01T10:00:00+08:00"},  # before the start
    {"ends_at": "2099-01-01T10:00:00+08:00"},  # longer than a day
    {"institution_id": "x" * 37}, {"unknown": 1},
])
def test_bad_lectures_are_422(api: Api, change: dict[str, Any]) -> None:
    error(api.post("/lectures", lecture_body(api, **change)), 422, "request.invalid")


def test_unknown_ids_are_404(api: Api) -> None:
    error(api.post("/lectures", lecture_body(api, institution_id=UNKNOWN)), 404, "engagement.institution_not_found")
    error(api.post("/lectures", lecture_body(api, institution_id="nope")), 404, "engagement.institution_not_found")
    lid = api.post("/lectures", lecture_body(api)).json()["id"]
    pid = api.enrol()
    error(api.get(f"/lectures/{UNKNOWN}"), 404, "engagement.lecture_not_found")
    error(api.post(f"/lectures/{UNKNOWN}/registrations", {"patient_id": pid}), 404, "engagement.lecture_not_found")
    error(api.post(f"/lectures/{lid}/registrations", {"patient_id": UNKNOWN}), 404, "patients.not_found")
    error(api.post(f"/lectures/{lid}/registrations/{UNKNOWN}/cancel"), 404, "engagement.registration_not_found")
    error(api.post(f"/lectures/{UNKNOWN}/registrations/{UNKNOWN}/cancel"), 404, "engagement.lecture_not_found")
    error(api.post(f"/lectures/{UNKNOWN}/sign-ins", {"patient_id": pid}), 404, "engagement.lecture_not_found")


@pytest.mark.parametrize("body", [{}, {"patient_id": "a", "patient": {"id": "a"}}, {"patient": {"system": "x"}},
                                  {"patient_id": "a", "seat": 1}])
def test_bad_registrations_and_sign_ins_are_422(api: Api, body: dict[str, Any]) -> None:
    lid = api.post("/lectures", lecture_body(api)).json()["id"]
    error(api.post(f"/lectures/{lid}/registrations", body), 422, "request.invalid")
    error(api.post(f"/lectures/{lid}/sign-ins", body), 422, "request.invalid")


def test_a_sign_in_time_without_offset_is_422(api: Api) -> None:
    lid = api.post("/lectures", lecture_body(api)).json()["id"]
    error(api.post(f"/lectures/{lid}/sign-ins", {"patient_id": api.enrol(), "at": "2026-12-01T10:00:00"}), 422,
          "request.invalid")
