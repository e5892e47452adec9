"""Crash safety: a real `carepoints serve` is killed with SIGKILL while it
ingests a large event batch, restarted, and sent the same batch again; every
event must then have taken effect exactly once (one row per source key, each
patient's balance the sum of its awards, the ledger intact).

The kill is not timed by a sleep: it follows the database's own evidence that
the batch's transaction has begun (SQLite: the write lock is taken; PostgreSQL:
a backend of the server is inside a transaction). SQLite runs a single
1000-event request and the same events as ten requests of 100 with the kill in
the fourth (three committed, one in flight); PostgreSQL runs the second as a
smoke. A job (`expire-points`) is killed the same way and run again."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.safety.proc import EXE, Target, pg_target, sqlite_target

CST = ZoneInfo("Asia/Shanghai")
SOURCE = "crash-his"
PATIENTS = 40
EVENTS = 1000
# (type, attributes for item n, points): each earns a fixed amount once per distinct id,
# with no daily limit, so a patient's expected balance is exact in any arrival order.
KINDS: list[tuple[str, Callable[[int], dict[str, Any]], int]] = [
    ("referral.visit", lambda n: {"referral_id": f"ref-{n}", "from_institution": "社区中心"}, 200),
    ("lecture.attended", lambda n: {"lecture_id": f"lec-{n}"}, 30),
    ("public_health.completed", lambda n: {"programme": "vaccination", "item": f"dose-{n}"}, 100),
    ("exam.attended", lambda n: {"exam_id": f"exam-{n}", "modality": "CT",
                                 "slot_start": _slot(n).isoformat()}, 10),
]


def _slot(n: int) -> datetime:
    # 08:00 local, outside the off-peak windows (no ×2), a few days ago
    day = datetime.now(CST).date() - timedelta(days=1 + n % 5)
    return datetime(day.year, day.month, day.day, 8, 0, tzinfo=CST)


def _consent() -> dict[str, str]:
    return {"version": "1.0", "accepted_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}


class Spine:
    """The server under test, its admin key, patients and the batch."""

    def __init__(self, target: Target, events: int = EVENTS) -> None:
        self.target = target
        self.key = target.api_key()  # migrates the fresh database first
        self.server = target.serve()
        self.patients = [self._enrol(i) for i in range(PATIENTS)]
        self.expected = dict.fromkeys(self.patients, 100)  # the welcome bonus
        self.events: list[dict[str, Any]] = []
        occurred = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
        for n in range(events):
            type_, attrs, points = KINDS[n % len(KINDS)]
            pid = self.patients[n % PATIENTS]
            self.expected[pid] += points
            self.events.append({"type": type_, "patient": {"id": pid}, "occurred_at": occurred, "source": SOURCE,
                                "source_event_id": f"crash-{n:04d}-{uuid.uuid4().hex[:6]}", "attributes": attrs(n)})

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.base_url, headers=self.auth, timeout=120)

    def _enrol(self, i: int) -> str:
        with self.http() as http:
            r = http.post("/api/v1/patients", json={"name": "测试患者", "phone": f"1370000{i:04d}",
                                                    "consent": _consent()})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def chunks(self, size: int) -> list[list[dict[str, Any]]]:
        return [self.events[i:i + size] for i in range(0, len(self.events), size)]

    def committed(self) -> int:
        return int(self.target.query("SELECT count(*) FROM events WHERE source = :s", s=SOURCE)[0][0])

    def in_transaction(self) -> bool:
        """Does the database show a write transaction of the server's in progress? (SQLite: the
        write lock is taken; PostgreSQL: a backend's transaction has an id, i.e. has written.)"""
        if self.target.is_postgres:
            rows = self.target.query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL")  # a transaction that has written
            return int(rows[0][0]) > 0
        conn = sqlite3.connect(self.target.db_path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")  # refused at once while another writer holds the lock
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as err:
            if "locked" not in str(err):
                raise
            return True
        finally:
            conn.close()


@pytest.fixture
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "postgres":
        request.getfixturevalue("pg_database")  # skips (or fails under =require) without PostgreSQL
        with pg_target(tmp_path) as t:
            yield t
    else:
        with sqlite_target(tmp_path) as t:
            yield t


def _send_and_kill(spine: Spine, size: int, kill_in: int) -> tuple[int, int]:
    """Send the batch as requests of `size` from a thread; SIGKILL the server once the
    database shows the transaction of request number `kill_in` (0-based) has begun.
    Returns (answered requests, the index of the request that was in flight)."""
    answered: list[int] = []
    failures: list[BaseException] = []
    reached = threading.Event()

    def sender() -> None:
        with spine.http() as http:
            for i, chunk in enumerate(spine.chunks(size)):
                if i == kill_in:
                    reached.set()
                try:
                    r = http.post("/api/v1/events", json={"events": chunk})
                except httpx.TransportError as err:
                    failures.append(err)
                    return
                assert r.status_code == 200, r.text
                answered.append(i)

    thread = threading.Thread(target=sender, name="crash-sender")
    thread.start()
    assert reached.wait(120), "the sender never reached the request to kill"
    deadline = time.monotonic() + 60
    while not spine.in_transaction():
        assert time.monotonic() < deadline, "the batch's transaction never began"
        assert thread.is_alive(), "the request finished before its transaction was seen"
    spine.server.proc.send_signal(signal.SIGKILL)
    spine.server.proc.wait(timeout=30)
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert failures, "the killed request was answered: the kill came too late"
    return len(answered), kill_in


def _check_exactly_once(spine: Spine, outcomes: list[dict[str, Any]]) -> None:
    assert len(outcomes) == EVENTS
    errors = [o for o in outcomes if "error" in o]
    assert not errors, errors[:3]
    keys = Counter(k for (k,) in spine.target.query(
        "SELECT source_event_id FROM events WHERE source = :s", s=SOURCE))
    assert set(keys) == {e["source_event_id"] for e in spine.events}
    assert set(keys.values()) == {1}
    awarded: Counter[str] = Counter()
    for ev, outcome in zip(spine.events, outcomes, strict=True):
        awarded[ev["patient"]["id"]] += sum(a["points"] for a in outcome["awards"])
    with spine.http() as http:
        for pid, expected in spine.expected.items():
            r = http.get(f"/api/v1/patients/{pid}/points")
            assert r.status_code == 200, r.text
            assert r.json()["balance"] == expected == 100 + awarded[pid], pid


@pytest.mark.parametrize(("target", "size", "kill_in"), [
    pytest.param("sqlite", EVENTS, 0, id="sqlite-one-batch"),
    pytest.param("sqlite", 100, 3, id="sqlite-ten-batches"),
    pytest.param("postgres", 100, 3, id="postgres-ten-batches"),  # the PostgreSQL smoke
], indirect=["target"])
def test_sigkill_mid_batch_then_resend_takes_effect_exactly_once(target: Target, size: int, kill_in: int) -> None:
    spine = Spine(target)
    answered, in_flight = _send_and_kill(spine, size, kill_in)
    assert answered == in_flight  # every request before the killed one was answered

    # A batch commits all or nothing: what survived is the answered requests, plus the
    # killed one only if its commit landed before the kill.
    survived = spine.committed()
    assert survived in (answered * size, (answered + 1) * size), survived

    spine.server = target.serve()  # restart on the same database
    outcomes: list[dict[str, Any]] = []
    with spine.http() as http:
        for chunk in spine.chunks(size):
            r = http.post("/api/v1/events", json={"events": chunk})
            assert r.status_code == 200, r.text
            outcomes.extend(r.json()["outcomes"])
    assert sum(1 for o in outcomes if o.get("duplicate")) == survived
    _check_exactly_once(spine, outcomes)

    log = spine.server.stop()
    assert "Traceback" not in log, log[-3000:]
    out = target.run("ledger", "verify")
    assert "ledger intact" in out.stdout


def test_sigkill_during_a_job_then_rerun_expires_each_lot_once(tmp_path: Path) -> None:
    """`expire-points` killed once its transaction has begun, then run again: every lot past
    its expiry is expired exactly once and the ledger verifies."""
    with sqlite_target(tmp_path) as target:
        spine = Spine(target, events=400)
        with spine.http() as http:
            r = http.post("/api/v1/events", json={"events": spine.events})
            assert r.status_code == 200, r.text
        spine.server.stop()
        later = (datetime.now(UTC) + timedelta(days=3 * 366)).isoformat()
        lots_before = target.query("SELECT count(*) FROM lots WHERE remaining > 0")[0][0]
        assert lots_before >= 400

        job = subprocess.Popen([EXE, "jobs", "run", "expire-points", "--now", later], env=target.env,
                               cwd=target.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while job.poll() is None and not spine.in_transaction():
            assert time.monotonic() < deadline, "the job's transaction never began"
        killed = job.poll() is None
        if killed:
            job.send_signal(signal.SIGKILL)
        job.communicate(timeout=30)

        out = target.run("jobs", "run", "expire-points", "--now", later)
        assert out.returncode == 0
        assert target.query("SELECT count(*) FROM lots WHERE remaining > 0") == [(0,)]
        earned = target.query("SELECT sum(amount) FROM lots")[0][0]
        expired = target.query("SELECT sum(amount) FROM transfers WHERE kind = 'expiry'")[0][0]
        assert expired == earned == sum(spine.expected.values())  # each lot expired once
        target.run("ledger", "verify")
        wallets = target.query("SELECT balance, debt FROM accounts WHERE patient_id IS NOT NULL")
        assert len(wallets) == PATIENTS
        assert set(wallets) == {(0, 0)}, killed
