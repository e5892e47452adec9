"""`carepoints backup` while the app writes, and `carepoints restore` into a
fresh database: the copy is one committed state (a prefix of the writer's
commits, balances to match), the ledger verifies, and secrets stay out of it."""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from carepoints.config import reset_settings
from carepoints.kit.db import dispose_engines
from carepoints.kit.time import utc_now
from tests.conftest import Db
from tests.helpers import balance, event, ingest
from tests.safety.proc import Target, fresh_pg_database

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

WRITER = "backup-writer"


def _use(url: str) -> None:
    """Point this process's settings and engine at `url`."""
    dispose_engines()
    os.environ["CAREPOINTS_DATABASE_URL"] = url
    reset_settings()


class Writer:
    """A thread that keeps ingesting events, one committed transaction each, and logs
    (source_event_id, patient, points awarded) in commit order."""

    def __init__(self, pids: list[str]) -> None:
        self.pids = pids
        self.log: list[tuple[str, str, int]] = []
        self.stop = threading.Event()
        self.progress = threading.Condition()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="backup-writer")

    def _run(self) -> None:
        n = 0
        try:
            while not self.stop.is_set():
                pid = self.pids[n % len(self.pids)]
                key = f"w-{n:05d}-{uuid.uuid4().hex[:6]}"
                now = utc_now()
                ev = event(pid, "lecture.attended", now, {"lecture_id": f"lec-{key}"}, key=key, source=WRITER)
                [outcome] = ingest(now, ev)
                assert isinstance(outcome, dict), outcome
                with self.progress:
                    self.log.append((key, pid, sum(a["points"] for a in outcome["awards"])))
                    self.progress.notify_all()
                n += 1
        except BaseException as err:  # reported by the test
            self.failure = err
            with self.progress:
                self.progress.notify_all()

    def wait_for(self, commits: int) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: len(self.log) >= commits or self.failure is not None, 60)
        assert self.failure is None, self.failure

    @contextmanager
    def running(self) -> Iterator[Writer]:
        self.thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            self.thread.join(timeout=60)
        assert self.failure is None, self.failure


def _seed(api: Api) -> list[str]:
    """Patients with earnings and a redemption."""
    pids = [api.enrol() for _ in range(4)]
    now = api.now()
    api.batch([{"type": "referral.visit", "patient": {"id": pid}, "occurred_at": now.isoformat(), "source": "his",
                "source_event_id": f"ref-{pid}-{i}", "attributes": {"referral_id": f"r-{pid}-{i}",
                                                                    "from_institution": "社区中心"}}
               for pid in pids for i in range(2)])
    r = api.post("/redemptions", {"patient_id": pids[0], "reward": "priority_exam", "quantity": 1,
                                  "idempotency_key": "backup-r-1"})
    assert r.status_code == 201, r.text
    assert api.balance(pids[0]) == 100 + 400 - 300
    return pids


@contextmanager
def _restored_database(db: Db, tmp_path: Path) -> Iterator[Target]:
    """A fresh, empty database of the same kind, with the source's secrets beside it."""
    if db.is_postgres:
        with fresh_pg_database("cp_restore") as url:
            yield Target(tmp_path, url)
        return
    restored = tmp_path / "restored"
    restored.mkdir()
    source_keys = Path(db.url.split("///", 1)[1]).parent / "carepoints.keys.json"
    if source_keys.exists():  # secrets travel separately from the backup
        shutil.copyfile(source_keys, restored / "carepoints.keys.json")
    yield Target(restored, f"sqlite:///{restored / 'cp.db'}")


def test_backup_while_writing_then_restore_into_a_fresh_database(api: Api, db: Db, tmp_path: Path) -> None:
    pids = _seed(api)
    before = {pid: api.balance(pid) for pid in pids}
    source = Target(tmp_path, db.url)
    out = tmp_path / ("cp.dump" if db.is_postgres else "cp.backup")

    with Writer(pids).running() as writer:
        writer.wait_for(5)
        committed_before = len(writer.log)
        result = source.run("backup", "--out", str(out))
        writer.wait_for(len(writer.log) + 3)  # still writing after the copy
    assert f"backup written: {out}" in result.stdout
    assert f"({out.stat().st_size} bytes)" in result.stdout
    assert "secrets are not in the backup" in result.stdout
    assert out.stat().st_mode & 0o077 == 0  # health data: readable by the owner only
    data = out.read_bytes()
    secrets = [v for k, v in os.environ.items() if k.endswith("_KEY") and k.startswith("CAREPOINTS_")]
    key_file = tmp_path / "carepoints.keys.json"
    if key_file.exists():
        secrets.extend(json.loads(key_file.read_text()).values())
    assert secrets
    assert all(secret.encode() not in data for secret in secrets)

    # Not into the live database: it is not empty.
    refused = source.run("restore", "--from", str(out), ok=False)
    assert "backup.target_not_empty" in refused.stderr

    try:
        with _restored_database(db, tmp_path) as target:
            done = target.run("restore", "--from", str(out))
            assert "restored" in done.stdout
            assert "ledger intact" in target.run("ledger", "verify").stdout
            _use(target.url)
            keys_in_copy = {k for (k,) in target.query("SELECT source_event_id FROM events WHERE source = :s",
                                                       s=WRITER)}
            # one committed state: exactly the writer's first k commits, k at least those before the backup
            k = len(keys_in_copy)
            assert committed_before <= k <= len(writer.log)
            assert keys_in_copy == {key for key, _, _ in writer.log[:k]}
            expected = dict(before)
            for _key, pid, points in writer.log[:k]:
                expected[pid] += points
            now = utc_now()
            assert {pid: balance(pid, now) for pid in pids} == expected
            assert target.query("SELECT count(*) FROM redemptions") == [(1,)]
    finally:
        _use(db.url)


def test_backup_and_restore_refuse_bad_targets(tmp_path: Path) -> None:
    target = Target(tmp_path, f"sqlite:///{tmp_path / 'cp.db'}")
    existing = tmp_path / "old.backup"
    existing.write_bytes(b"keep me")
    out = target.run("backup", "--out", str(existing), ok=False)
    assert "backup.file_exists" in out.stderr
    assert existing.read_bytes() == b"keep me"
    out = target.run("restore", "--from", str(existing), ok=False)
    assert "backup.not_a_backup" in out.stderr
    out = target.run("restore", "--from", str(tmp_path / "missing"), ok=False)
    assert "backup.failed" in out.stderr
    assert not (tmp_path / "cp.db").exists()
