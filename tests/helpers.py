"""Shared test helpers that talk to the real services."""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from carepoints.config import get_settings
from carepoints.enrolment import service as enrolment
from carepoints.events import service as events
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.ledger import integrity
from carepoints.patients.schemas import PatientCreate

_seq = itertools.count(1)


def enrol(now: datetime, **extra: Any) -> str:
    """Enrol a patient (welcome 100) and commit; returns the patient id."""
    n = next(_seq)
    body: dict[str, Any] = {"name": "测试患者", "phone": f"1390000{n:04d}",
                            "consent": {"version": "1.0", "accepted_at": (now - timedelta(days=1)).isoformat()}}
    body.update(extra)
    with write_tx() as session:
        pid, _ = enrolment.enrol(session, PatientCreate.model_validate(body), now)
    return pid


def event(pid: str, type_: str, at: datetime, attrs: dict[str, Any], key: str | None = None,
          source: str = "test") -> dict[str, Any]:
    return {"type": type_, "patient": {"id": pid}, "occurred_at": at.isoformat(), "source": source,
            "source_event_id": key or uuid.uuid4().hex, "attributes": attrs}


def ingest(now: datetime, *evs: dict[str, Any]) -> list[dict[str, Any] | AppError]:
    with write_tx() as session:
        return events.ingest(session, list(evs), now)


def ingest_one(now: datetime, ev: dict[str, Any]) -> dict[str, Any]:
    result = ingest(now, ev)[0]
    if isinstance(result, AppError):
        raise result
    return result


def points(pid: str, now: datetime) -> dict[str, Any]:
    with read_tx() as session:
        return enrolment.points(session, pid, now)


def balance(pid: str, now: datetime) -> int:
    return int(points(pid, now)["balance"])


def bp(provenance: str = "device", sys_: int = 132, dia: int = 84) -> dict[str, Any]:
    return {"kind": "blood_pressure", "systolic": sys_, "diastolic": dia, "provenance": provenance}


def error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an error of `status` and `code`, shaped {"error", "detail", "fields"?}."""
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == code, body
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert set(body) <= {"error", "detail", "fields"}
    return body


def assert_ledger_intact() -> None:
    """Every hash chain, balance, lot and Σ balances = 0 (the auditor's check)."""
    with read_tx() as session:
        report = integrity.verify(session, get_settings().checkpoint_key)
    assert report.ok, report.problem


def staff_token(api: Any, username: str, role: str = "frontdesk", password: str = "pw-123456789") -> str:  # noqa: S107
    """A new staff user of `role` signed in over HTTP (tests.api_client.Api); their bearer token."""
    api.make_staff(username, password, role)
    r = api.post("/auth/token", {"username": username, "password": password}, auth=False)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def dump_database(db: Any) -> str:
    """Everything stored, as text: the SQLite dump or `pg_dump` of the test database."""
    url = make_url(db.url)
    if not db.is_postgres:
        conn = sqlite3.connect(str(url.database))
        try:
            return "\n".join(conn.iterdump())
        finally:
            conn.close()
    proc = subprocess.run(["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U",
                           url.username or "postgres", str(url.database)], capture_output=True, text=True,
                          check=True, env={**os.environ, "PGPASSWORD": url.password or ""})
    return proc.stdout
