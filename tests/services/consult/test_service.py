"""Consultation use cases with a fixed clock on SQLite and PostgreSQL: the queue's order and the
overdue flag, the inactivity job (`close-consultations`), retention (`apply-retention`), and the
races the database decides — two advisers claiming one thread, the patient and the adviser closing
at once, two ratings at once — each from separate connections that really commit."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from carepoints.audit.service import Actor
from carepoints.jobs import registry
from carepoints.kit import retention
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.time import utc_now
from carepoints.services.consult import service
from carepoints.services.consult.errors import AlreadyClaimedError, AlreadyRatedError, ThreadClosedError
from carepoints.services.consult.models import ConsultMessage, ConsultRating, ConsultThread
from carepoints.services.consult.schemas import RatingIn, ThreadOpen
from tests.locks import errors, oks, race
from tests.services.consult.kit import Adviser, Clinic, open_body, outbox

if TYPE_CHECKING:
    from tests.api_client import Api
    from tests.conftest import Db

pytest_plugins = ["tests.api_client"]


def _open(pid: str, at: Any, **extra: Any) -> str:
    body = ThreadOpen.model_validate(open_body(pid, disclaimer_accepted_at=(at - timedelta(minutes=1)).isoformat(),
                                              **extra))
    with write_tx() as s:
        doc, _ = service.open_thread(s, body, Actor("patient", pid, "patient"), at)
    return str(doc["id"])


def _staff(a: Adviser) -> Actor:
    return Actor("staff", a.id, "clinician" if a.profession == "clinician" else "nurse")


def _answer(a: Adviser, tid: str, at: Any, text: str = "建议少食多餐") -> None:
    with write_tx() as s:
        service.post_as_staff(s, tid, _staff(a), at, text=text)


def _state(tid: str) -> str:
    with read_tx() as s:
        return str(s.execute(select(ConsultThread.state).where(ConsultThread.id == tid)).scalar_one())


def test_the_queue_is_longest_wait_first_with_overdue_flags(api: Api) -> None:
    clinic = Clinic(api)
    adviser = clinic.adviser("wang")
    now = utc_now()
    old = _open(api.enrol(), now - timedelta(hours=3), department_id=clinic.department)
    new = _open(api.enrol(), now - timedelta(minutes=10), department_id=clinic.department)
    mid = _open(api.enrol(), now - timedelta(hours=1), department_id=clinic.department)
    with read_tx() as s:
        q = service.queue(s, _staff(adviser), now)
    assert [(i["id"], i["overdue"]) for i in q["items"]] == [(old, True), (mid, False), (new, False)]
    assert [i["waiting_minutes"] for i in q["items"]] == [180, 60, 10]
    _answer(adviser, old, now - timedelta(minutes=5))
    with read_tx() as s:
        q = service.queue(s, _staff(adviser), now)
    assert [i["id"] for i in q["items"]] == [mid, new]  # answered: the patient's turn, off the queue
    assert [i["id"] for i in q["mine"]] == [old]
    with read_tx() as s:
        row = s.execute(select(ConsultThread.first_response_seconds).where(ConsultThread.id == old)).scalar_one()
    assert row == int(timedelta(hours=3, minutes=-5).total_seconds())


def test_close_consultations_closes_idle_answered_threads_only(api: Api) -> None:
    clinic = Clinic(api)
    adviser = clinic.adviser("li")
    now = utc_now()
    idle, fresh, unanswered = api.enrol(), api.enrol(), api.enrol()
    t_idle = _open(idle, now - timedelta(hours=100), department_id=clinic.department)
    _answer(adviser, t_idle, now - timedelta(hours=73))
    t_fresh = _open(fresh, now - timedelta(hours=100), department_id=clinic.department)
    _answer(adviser, t_fresh, now - timedelta(hours=71))
    t_wait = _open(unanswered, now - timedelta(hours=100), department_id=clinic.department)
    result = registry.run("close-consultations", now)
    assert result == {"closed": 1}
    assert (_state(t_idle), _state(t_fresh), _state(t_wait)) == ("closed", "answered", "open")
    with read_tx() as s:
        row = s.execute(select(ConsultThread.closed_by, ConsultThread.close_reason)
                        .where(ConsultThread.id == t_idle)).one()
    assert tuple(row) == ("system", "inactivity")
    assert outbox("consult.closed") == [{"patient_id": idle, "thread_id": t_idle}]
    assert registry.run("close-consultations", now + timedelta(seconds=1)) == {"closed": 0}  # again: nothing
    # the patient rates the thread the job closed
    with write_tx() as s:
        doc = service.rate(s, t_idle, idle, RatingIn(stars=3), Actor("patient", idle, "patient"), now)
    assert doc["rating"] == {"stars": 3, "comment": None}


def test_apply_retention_purges_closed_threads_past_the_period(api: Api) -> None:
    clinic = Clinic(api)
    clinic.adviser("zhang")
    now = utc_now()
    pid = api.enrol()
    gone = _open(pid, now - timedelta(days=800), department_id=clinic.department)
    kept_closed = _open(pid, now - timedelta(days=100), department_id=clinic.department)
    kept_open = _open(pid, now - timedelta(days=800), department_id=clinic.department)
    for tid, at in ((gone, now - timedelta(days=799)), (kept_closed, now - timedelta(days=99))):
        with write_tx() as s:
            service.close_as_patient(s, tid, pid, Actor("patient", pid, "patient"), at)
            service.rate(s, tid, pid, RatingIn(stars=5), Actor("patient", pid, "patient"), at)
    report = retention.apply(now, "consult=365")
    assert report["kinds"]["consult"]["purged"] == 1
    with read_tx() as s:
        left = set(s.execute(select(ConsultThread.id)).scalars())
        orphans = s.execute(select(func.count()).select_from(table(ConsultMessage))
                            .where(table(ConsultMessage).c.thread_id == gone)).scalar_one()
        ratings = s.execute(select(func.count()).select_from(table(ConsultRating))).scalar_one()
    assert left == {kept_closed, kept_open}
    assert (orphans, ratings) == (0, 1)
    assert retention.periods("")["consult"] == service.RETENTION_DAYS


def test_two_advisers_claim_one_thread_exactly_one_wins(api: Api, racing: Db) -> None:
    clinic = Clinic(api)
    advisers = [clinic.adviser(f"r{i}") for i in range(5)]
    now = utc_now()
    tid = _open(api.enrol(), now, department_id=clinic.department)

    def claim(a: Adviser) -> Any:
        def go() -> Any:
            with write_tx() as s:
                return service.claim(s, tid, _staff(a), utc_now())["adviser"]["staff_user_id"]
        return go

    results = race(racing, [claim(a) for a in advisers], lock=(table(ConsultThread), [tid]))
    winners = oks(results)
    assert len(winners) == 1, results
    assert all(isinstance(e, AlreadyClaimedError) for e in errors(results)), errors(results)
    with read_tx() as s:
        assert s.execute(select(ConsultThread.assignee_staff_id).where(ConsultThread.id == tid)).scalar_one() \
            == winners[0]


def test_the_patient_and_the_adviser_close_at_once_one_closes(api: Api, racing: Db) -> None:
    clinic = Clinic(api)
    adviser = clinic.adviser("c")
    now = utc_now()
    pid = api.enrol()
    tid = _open(pid, now, department_id=clinic.department)
    _answer(adviser, tid, now)

    def by_patient() -> Any:
        with write_tx() as s:
            return service.close_as_patient(s, tid, pid, Actor("patient", pid, "patient"), utc_now())["closed_by"]

    def by_staff() -> Any:
        with write_tx() as s:
            return service.close_as_staff(s, tid, _staff(adviser), utc_now())["closed_by"]

    results = race(racing, [by_patient, by_staff, by_patient, by_staff], lock=(table(ConsultThread), [tid]))
    assert len(oks(results)) == 1, results
    assert all(isinstance(e, ThreadClosedError) for e in errors(results)), errors(results)
    with read_tx() as s:
        closed_by = s.execute(select(ConsultThread.closed_by).where(ConsultThread.id == tid)).scalar_one()
    assert closed_by == oks(results)[0]
    assert len(outbox("consult.closed")) == (1 if closed_by == "staff" else 0)


def test_ratings_at_once_one_is_kept(api: Api, racing: Db) -> None:
    clinic = Clinic(api)
    clinic.adviser("d")
    now = utc_now()
    pid = api.enrol()
    tid = _open(pid, now, department_id=clinic.department)
    with write_tx() as s:
        service.close_as_patient(s, tid, pid, Actor("patient", pid, "patient"), now)

    def rate(stars: int) -> Any:
        def go() -> Any:
            with write_tx() as s:
                return service.rate(s, tid, pid, RatingIn(stars=stars), Actor("patient", pid, "patient"),
                                    utc_now())["rating"]["stars"]
        return go

    results = race(racing, [rate(n) for n in (1, 2, 3, 4, 5)])
    assert len(oks(results)) == 1, results
    assert all(isinstance(e, AlreadyRatedError) for e in errors(results)), errors(results)
    with read_tx() as s:
        assert s.execute(select(ConsultRating.stars)).scalars().all() == oks(results)


def test_messages_at_once_get_distinct_numbers(api: Api, racing: Db) -> None:
    clinic = Clinic(api)
    adviser = clinic.adviser("e")
    now = utc_now()
    pid = api.enrol()
    tid = _open(pid, now, department_id=clinic.department)

    def patient(n: int) -> Any:
        def go() -> Any:
            with write_tx() as s:
                return service.post_as_patient(s, tid, pid, Actor("patient", pid, "patient"), utc_now(),
                                               text=f"补充{n}")[0]["seq"]
        return go

    def staff() -> Any:
        with write_tx() as s:
            return service.post_as_staff(s, tid, _staff(adviser), utc_now(), text="收到")[0]["seq"]

    results = race(racing, [patient(1), staff, patient(2), patient(3)], lock=(table(ConsultThread), [tid]))
    assert sorted(oks(results)) == [2, 3, 4, 5], results
    with read_tx() as s:
        count = s.execute(select(ConsultThread.message_count).where(ConsultThread.id == tid)).scalar_one()
    assert count == 5
