"""Duplicate detection (enrolment.identity): at enrolment, by the daily job (idempotent, in
batches), the review list, dismissal and `mark_merged`, and racing detectors (both databases)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.enrolment import identity
from carepoints.enrolment.errors import CandidateClosedError, CandidateNotFoundError
from carepoints.enrolment.models import DuplicateCandidate
from carepoints.jobs import registry
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.time import utc_now
from tests.conftest import Db
from tests.helpers import enrol

DESK = Actor("staff", "0190a5f0-0000-7000-8000-0000000000d1", "frontdesk")
_c = table(DuplicateCandidate)


def candidates() -> list[dict[str, Any]]:
    with read_tx() as session:
        return [dict(r) for r in session.connection().execute(select(_c).order_by(_c.c.patient_a, _c.c.patient_b))
                .mappings()]


def forget_candidates() -> None:
    """Records from before detection existed: no candidates yet."""
    with write_tx() as session:
        session.connection().execute(delete(_c))


def pair(a: str, b: str) -> list[str]:
    return sorted([a, b])


def test_same_national_id_is_found_at_enrolment(db: Db, now: datetime) -> None:
    a = enrol(now, id_number="110101199003071234")
    b = enrol(now, id_number="110101199003071234", name="另一个名字")
    enrol(now, id_number="110101199003075678")
    [c] = candidates()
    assert ([c["patient_a"], c["patient_b"]], c["reason"], c["status"]) == (pair(a, b), "national_id", "open")
    with read_tx() as session:
        trail = audit.entries(session, action="patients:duplicate:detect")
    assert [t["subject_id"] for t in trail] == [c["id"]]


def test_same_name_birth_and_phone(db: Db, now: datetime) -> None:
    a = enrol(now, name="李 四", phone="13911112222", birth_date="1950-03-01")
    b = enrol(now, name="李四", phone="13911112222", birth_date="1950-03-01")
    enrol(now, name="李四", phone="13911112222", birth_date="1950-03-02")  # another birth date
    enrol(now, name="王五", phone="13911112222", birth_date="1950-03-01")  # another name
    enrol(now, name="李四", phone="13911113333", birth_date="1950-03-01")  # another phone
    found = candidates()
    assert [([c["patient_a"], c["patient_b"]], c["reason"]) for c in found] == [(pair(a, b), "name_birth_phone")]


def test_the_job_finds_existing_records_once(db: Db, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    from carepoints.config import reset_settings

    monkeypatch.setenv("CAREPOINTS_DUPLICATE_BATCH_SIZE", "1")  # one shared key per transaction
    reset_settings()
    a = enrol(now, id_number="110101199003071234")
    b = enrol(now, id_number="110101199003071234")
    c = enrol(now, id_number="110101199003071234")
    d = enrol(now, name="赵六", phone="13922223333", birth_date="1948-01-01")
    e = enrol(now, name="赵六", phone="13922223333", birth_date="1948-01-01")
    x = enrol(now, id_number="110101199003079999")
    y = enrol(now, id_number="110101199003079999")
    forget_candidates()
    result = identity.detect_duplicates(now)
    assert result == {"groups": 3, "candidates": 5}
    found = {(r["patient_a"], r["patient_b"]): r["reason"] for r in candidates()}
    assert found == {tuple(pair(a, b)): "national_id", tuple(pair(a, c)): "national_id",
                     tuple(pair(b, c)): "national_id", tuple(pair(d, e)): "name_birth_phone",
                     tuple(pair(x, y)): "national_id"}
    lo, hi = pair(a, b)
    with write_tx() as session:
        cid = session.connection().execute(select(_c.c.id).where(_c.c.patient_a == lo, _c.c.patient_b == hi)).scalar()
        identity.dismiss(session, str(cid), DESK, now)
    assert registry.JOBS["detect-duplicates"](now + timedelta(days=1)) == {"groups": 3, "candidates": 0}
    assert {r["status"] for r in candidates() if r["id"] == cid} == {"dismissed"}
    reset_settings()


def test_review_list_dismiss_and_mark_merged(db: Db, now: datetime) -> None:
    pids = [enrol(now, id_number=f"11010119900307{n:04d}") for n in (1, 1, 2, 2, 3, 3)]
    with read_tx() as session:
        page = identity.duplicates(session, status="open", limit=2, before=None)
        rest = identity.duplicates(session, status="open", limit=2, before=page["next"])
    assert len(page["items"]) == 2
    assert page["next"] is not None
    assert len(rest["items"]) == 1
    assert rest["next"] is None
    item = page["items"][0]
    assert all(p["name"] != "测试患者" and "*" in p["name"] for p in item["patients"])  # masked
    assert all("1990" not in (p["id_number"] or "") for p in item["patients"])
    assert {p["verification"] for p in item["patients"]} == {"unverified"}
    with write_tx() as session:
        doc = identity.dismiss(session, item["id"], DESK, now, note="两人是双胞胎")
    assert (doc["status"], doc["reviewed_by"]) == ("dismissed", DESK.id)
    with write_tx() as session, pytest.raises(CandidateClosedError):
        identity.dismiss(session, item["id"], DESK, now)
    with write_tx() as session, pytest.raises(CandidateNotFoundError):
        identity.dismiss(session, "0190a5f0-0000-7000-8000-000000000000", DESK, now)
    with write_tx() as session:
        assert identity.mark_merged(session, pids[3], pids[2], DESK, now) is True
        assert identity.mark_merged(session, pids[2], pids[3], DESK, now) is False  # already merged
        assert identity.mark_merged(session, pids[0], pids[5], DESK, now) is False  # no such candidate
    statuses = sorted(r["status"] for r in candidates())
    assert statuses == ["dismissed", "merged", "open"]
    with read_tx() as session:
        assert len(identity.duplicates(session, status="merged", limit=10, before=None)["items"]) == 1
        trail = audit.entries(session, action="patients:duplicate:dismiss")
    assert "双胞胎" not in str(trail)


def test_inactive_records_are_not_candidates(db: Db, now: datetime) -> None:
    from carepoints.enrolment import closure

    a = enrol(now, id_number="110101199003071234")
    with write_tx() as session:
        closure.change_status(session, a, "deceased", "death_reported", DESK, now)
    enrol(now, id_number="110101199003071234")
    assert candidates() == []
    assert identity.detect_duplicates(now) == {"groups": 0, "candidates": 0}


def test_racing_detectors_store_one_candidate(racing: Db, now: datetime) -> None:
    a = enrol(now, id_number="110101199003071234")
    b = enrol(now, id_number="110101199003071234")
    forget_candidates()
    racers = 6
    gate = threading.Barrier(racers)
    added: list[int] = []
    errors: list[BaseException] = []

    def run(pid: str) -> None:
        gate.wait()
        try:
            with write_tx() as session:
                n = identity.detect_for(session, pid, utc_now())
            added.append(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a if i % 2 else b,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(added) == [0] * (racers - 1) + [1]
    assert len(candidates()) == 1
