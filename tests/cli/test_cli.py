"""The installed `carepoints` command, run as a subprocess against a temporary
SQLite database (API.md, "Command line"). Where a command's effect is seen
through the API, the app runs in-process on the same database file, or
`carepoints serve` runs on a free port."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from carepoints.app import create_asgi
from carepoints.config import reset_settings
from carepoints.kit.db import dispose_engines, write_tx
from carepoints.kit.time import utc_now
from carepoints.security import service as security

EXE = str(Path(sys.executable).parent / "carepoints")
DEFAULT_YAML = Path(__file__).resolve().parents[2] / "src" / "carepoints" / "programmes" / "default.yaml"


@dataclass
class Cli:
    dir: Path

    @property
    def db_path(self) -> Path:
        return self.dir / "cp.db"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAREPOINTS_")}
        # the same secrets as the in-process app, so tokens and checkpoints agree
        env.update({k: v for k, v in os.environ.items() if k in ("CAREPOINTS_SECRET_KEY",
                                                                 "CAREPOINTS_CHECKPOINT_KEY",
                                                                 "CAREPOINTS_PII_KEY")})
        env.update(CAREPOINTS_DATABASE_URL=self.url, CAREPOINTS_SCHEDULER="off", CAREPOINTS_LOG_LEVEL="warning")
        return env

    def run(self, *args: str, ok: bool | None = True) -> subprocess.CompletedProcess[str]:
        """Run the command; `ok=True` wants exit 0, `ok=False` a failure, None either."""
        proc = subprocess.run([EXE, *args], env=self.env, cwd=self.dir, capture_output=True, text=True,
                              timeout=120, check=False)
        if ok is True:
            assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        elif ok is False:
            assert proc.returncode != 0, f"{args} should fail:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db_path)
        try:
            with conn:
                return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    @contextmanager
    def app(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcess]:
        """The app in-process on this database; the process-wide engine is restored after."""
        dispose_engines()
        monkeypatch.setenv("CAREPOINTS_DATABASE_URL", self.url)
        reset_settings()
        try:
            with write_tx() as session:
                _kid, key = security.create_api_key(session, "in-process", "admin", utc_now())
            yield InProcess(TestClient(create_asgi()), key)
        finally:
            dispose_engines()
            monkeypatch.delenv("CAREPOINTS_DATABASE_URL")
            reset_settings()


@dataclass
class InProcess:
    client: TestClient
    key: str

    def enrol(self, phone: str = "13800000001") -> str:
        r = self.client.post("/api/v1/patients", json=_patient(phone), headers=self.auth)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def balance(self, pid: str) -> int:
        r = self.client.get(f"/api/v1/patients/{pid}/points", headers=self.auth)
        assert r.status_code == 200, r.text
        return int(r.json()["balance"])


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`carepoints db upgrade` once into a template directory."""
    cli = Cli(tmp_path_factory.mktemp("cli-template"))
    cli.run("db", "upgrade")
    return cli.dir


@pytest.fixture
def cli(migrated_template: Path, tmp_path: Path) -> Cli:
    for name in ("cp.db", "carepoints.keys.json"):
        if (migrated_template / name).exists():
            shutil.copyfile(migrated_template / name, tmp_path / name)
    return Cli(tmp_path)


def _patient(phone: str = "13800000001") -> dict[str, Any]:
    return {"name": "测试患者", "phone": phone,
            "consent": {"version": "1.0", "accepted_at": (utc_now() - timedelta(days=1)).isoformat()}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_db_upgrade_on_a_fresh_file(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    out = cli.run("db", "upgrade")
    assert "up to date" in out.stdout
    assert cli.db_path.exists()
    assert cli.query("SELECT count(*) FROM program_versions") == [(1,)]
    assert cli.query("SELECT count(*) FROM accounts WHERE kind = 'system'")[0][0] >= 5


def test_db_upgrade_again_changes_nothing(cli: Cli) -> None:
    before = cli.query("SELECT count(*) FROM accounts")
    cli.run("db", "upgrade")
    assert cli.query("SELECT count(*) FROM program_versions") == [(1,)]
    assert cli.query("SELECT count(*) FROM accounts") == before


def test_api_key_create_prints_a_working_key_for_serve(cli: Cli) -> None:
    out = cli.run("api-key", "create", "--name", "his", "--role", "admin")
    lines = out.stdout.strip().splitlines()
    key = lines[-1]
    assert key.startswith("cpk_")
    assert len(key) > 30
    assert all(key not in line for line in lines[:-1])
    port = _free_port()
    server = subprocess.Popen([EXE, "serve", "--port", str(port)], env=cli.env, cwd=cli.dir,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # connection retries back off until the server listens
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                          transport=httpx.HTTPTransport(retries=7)) as http:
            assert http.get("/healthz").status_code == 200
            assert http.get("/readyz").json() == {"status": "ok", "database": True}
            auth = {"Authorization": f"Bearer {key}"}
            assert http.get("/api/v1/patients/0190a5f0-0000-7000-8000-000000000000").status_code == 401
            r = http.get("/api/v1/patients/0190a5f0-0000-7000-8000-000000000000", headers=auth)
            assert (r.status_code, r.json()["error"]) == (404, "patients.not_found")
            r = http.post("/api/v1/patients", json=_patient(), headers=auth)
            assert r.status_code == 201, r.text
            r = http.get(f"/api/v1/patients/{r.json()['id']}/points", headers=auth)
            assert r.json()["balance"] == 100
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        assert server.stderr is not None
        assert server.stdout is not None
        err = server.stderr.read().decode(errors="replace")
        server.stderr.close()
        server.stdout.close()
    assert "Traceback" not in err, err


def test_api_key_create_with_an_unknown_role_fails(cli: Cli) -> None:
    out = cli.run("api-key", "create", "--name", "x", "--role", "bogus", ok=False)
    assert "auth.unknown_role" in out.stderr
    assert "cpk_" not in out.stdout
    assert cli.query("SELECT count(*) FROM api_keys") == [(0,)]


def test_staff_create_makes_a_user_who_can_log_in(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    out = cli.run("staff", "create", "--username", "u", "--role", "nurse", "--password", "longenough1")
    assert "u" in out.stdout
    assert "nurse" in out.stdout
    again = cli.run("staff", "create", "--username", "u", "--role", "nurse", "--password", "longenough1", ok=False)
    assert "auth.username_taken" in again.stderr
    cli.run("staff", "create", "--username", "v", "--role", "nurse", "--password", "short", ok=False)
    assert cli.query("SELECT username, role FROM staff_users") == [("u", "nurse")]
    with cli.app(monkeypatch) as app:
        r = app.client.post("/api/v1/auth/token", json={"username": "u", "password": "longenough1"})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        pid = app.enrol()
        r = app.client.get(f"/api/v1/patients/{pid}/points", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        r = app.client.post("/api/v1/auth/token", json={"username": "u", "password": "longenough2"})
        assert r.status_code == 401


def test_program_load_makes_a_new_version(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    with cli.app(monkeypatch) as app:
        before = app.enrol("13800000001")
    doc = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    welcome = next(r for r in doc["rules"] if r["code"] == "welcome")
    welcome["points"] = 200
    path = cli.dir / "programme.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    out = cli.run("program", "load", str(path))
    assert "version 2" in out.stdout
    with cli.app(monkeypatch) as app:
        after = app.enrol("13800000002")
        assert app.balance(after) == 200
        assert app.balance(before) == 100
        r = app.client.get(f"/api/v1/patients/{after}/points/entries", headers=app.auth)
        assert r.json()["items"][0]["message"] == "新用户注册即送200积分"
    assert cli.query("SELECT max(version) FROM program_versions") == [(2,)]


def test_program_load_refuses_an_invalid_file(cli: Cli) -> None:
    doc = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    doc["rules"][0]["event"] = "no.such_event"
    bad = cli.dir / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    out = cli.run("program", "load", str(bad), ok=False)
    assert "rules.programme_invalid" in out.stderr
    assert "no.such_event" in out.stderr
    assert "Traceback" not in out.stderr

    broken = cli.dir / "broken.yaml"
    broken.write_text("name: {zh: x\nrules: [", encoding="utf-8")
    out = cli.run("program", "load", str(broken), ok=False)
    assert "rules.programme_invalid" in out.stderr
    assert "Traceback" not in out.stderr

    assert cli.query("SELECT max(version) FROM program_versions") == [(1,)]


def test_ledger_verify_names_a_tampered_entry(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    with cli.app(monkeypatch) as app:
        pids = [app.enrol(f"1380000000{i}") for i in range(3)]
        ev = {"type": "lecture.attended", "patient": {"id": pids[1]}, "source": "his", "source_event_id": "L1",
              "occurred_at": (utc_now() - timedelta(hours=1)).isoformat(), "attributes": {"lecture_id": "L1"}}
        r = app.client.post("/api/v1/events", json=ev, headers=app.auth)
        assert r.status_code == 201
        event_id = r.json()["event_id"]
    out = cli.run("ledger", "verify")
    assert "intact" in out.stdout
    [(entry_id,)] = cli.query("SELECT id FROM transfers WHERE event_id = ?", event_id)
    cli.query("UPDATE transfers SET amount = amount + 1 WHERE id = ?", entry_id)
    out = cli.run("ledger", "verify", ok=False)
    assert out.returncode == 1
    assert entry_id in out.stdout
    assert "Traceback" not in out.stderr


def test_jobs_run(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    with cli.app(monkeypatch) as app:
        pid = app.enrol()
    out = cli.run("jobs", "run", "expire-points", "--now", "2030-01-01T00:00:00+08:00")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"wallets": 1, "points": 100}
    with cli.app(monkeypatch) as app:
        assert app.balance(pid) == 0
        r = app.client.get(f"/api/v1/patients/{pid}/points/entries", headers=app.auth)
        assert r.json()["items"][0]["kind"] == "expiry"
    out = cli.run("jobs", "run", "seal-checkpoint")
    sealed = json.loads(out.stdout.strip().splitlines()[-1])
    assert sealed["chains"] == 1
    assert Path(sealed["file"]).is_file()
    out = cli.run("ledger", "verify")
    assert "1 checkpoints" in out.stdout

    out = cli.run("jobs", "run", "nope", ok=False)
    assert "expire-points" in out.stderr  # lists the known jobs


def test_demo_is_idempotent(cli: Cli) -> None:
    first = cli.run("demo", ok=None)
    if first.returncode != 0 and "ModuleNotFoundError" in first.stderr:
        pytest.xfail("demo pending")
    assert first.returncode == 0, first.stderr
    count = cli.query("SELECT count(*) FROM patients")[0][0]
    assert count >= 40
    transfers = cli.query("SELECT count(*) FROM transfers")[0][0]
    cli.run("demo")
    assert cli.query("SELECT count(*) FROM patients")[0][0] == count
    assert cli.query("SELECT count(*) FROM transfers")[0][0] == transfers


def test_demo_schedule_and_the_scheduling_jobs(cli: Cli) -> None:
    cli.run("demo")
    states = dict(cli.query("SELECT status, count(*) FROM appointments GROUP BY status"))
    assert {"booked", "checked_in", "attended", "cancelled", "no_show"} <= states.keys()
    assert cli.query("SELECT count(*) FROM waitlist_entries WHERE status = 'waiting'")[0][0] == 3
    assert cli.query("SELECT count(*) FROM clinic_sessions WHERE status = 'cancelled'")[0][0] == 1
    booked = states["booked"]

    def job(name: str, *args: str) -> dict[str, int]:
        out = cli.run("jobs", "run", name, *args)
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    assert job("generate-sessions") == {"sessions": 0}  # the demo has no weekly templates
    assert job("release-reserved-slots")["slots"] >= 0
    assert job("expire-waitlist-offers") == {"offers": 0}
    # a month on, every booking never checked in is a no-show; a second sweep finds none
    assert job("sweep-no-shows", "--now", "2099-01-01T00:00:00+08:00") == {"no_shows": booked}
    assert job("sweep-no-shows", "--now", "2099-01-01T00:00:00+08:00") == {"no_shows": 0}
    assert cli.query("SELECT count(*) FROM appointments WHERE status = 'booked'")[0][0] == 0


def test_ledger_verify_on_an_unmigrated_database_fails_clearly(tmp_path: Path) -> None:
    out = Cli(tmp_path).run("ledger", "verify", ok=False)
    assert "Traceback" not in out.stderr


def test_jobs_run_recompute_tiers(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    at = (utc_now() - timedelta(hours=1)).isoformat()
    with cli.app(monkeypatch) as app:
        pid = app.enrol()
        evs = [{"type": "referral.visit", "patient": {"id": pid}, "occurred_at": at, "source": "cli-test",
                "source_event_id": f"ref-{i}", "attributes": {"referral_id": f"r{i}", "from_institution": "社区"}}
               for i in range(25)]
        assert app.client.post("/api/v1/events", json={"events": evs}, headers=app.auth).status_code == 200
        assert app.client.get(f"/api/v1/patients/{pid}/tier", headers=app.auth).json()["tier"] == "gold"
    out = cli.run("jobs", "run", "recompute-tiers")
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"patients": 1, "changed": 0}
    out = cli.run("jobs", "run", "recompute-tiers", "--now", "2099-01-01T00:00:00+08:00")
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"patients": 1, "changed": 1}
    with cli.app(monkeypatch) as app:
        doc = app.client.get(f"/api/v1/patients/{pid}/tier", headers=app.auth).json()
    assert (doc["tier"], doc["history"][0]["reason"]) == ("standard", "recompute")
