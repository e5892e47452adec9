"""Shared helpers of the health tests (no tests here): outbox, alerts and readings as
stored, read in their own transactions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from carepoints.audit.service import Actor
from carepoints.engagement.care.models import CareAlert
from carepoints.engagement.health.models import HealthMeasurement
from carepoints.kit.db import read_tx, table
from carepoints.kit.outbox import OutboxMessage

NURSE = Actor("staff", "00000000-0000-7000-8000-00000000a115", "nurse")
UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


def staff_token(api: Any, username: str, role: str) -> str:
    """A staff user of `role` and a bearer token for them."""
    api.make_staff(username, "correct horse battery", role)
    r = api.client.post("/api/v1/auth/token", json={"username": username, "password": "correct horse battery"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def outbox(topic: str, key: str | None = None) -> list[dict[str, Any]]:
    t = table(OutboxMessage)
    stmt = select(t.c.payload).where(t.c.topic == topic).order_by(t.c.created_at, t.c.id)
    if key is not None:
        stmt = stmt.where(t.c.key == key)
    with read_tx() as session:
        return [dict(r[0]) for r in session.connection().execute(stmt)]


def alerts(pid: str, kind: str | None = None) -> list[dict[str, Any]]:
    t = table(CareAlert)
    stmt = select(t).where(t.c.patient_id == pid).order_by(t.c.id)
    if kind is not None:
        stmt = stmt.where(t.c.kind == kind)
    with read_tx() as session:
        return [dict(r) for r in session.connection().execute(stmt).mappings()]


def readings(pid: str) -> list[dict[str, Any]]:
    t = table(HealthMeasurement)
    with read_tx() as session:
        return [dict(r) for r in session.connection().execute(
            select(t).where(t.c.patient_id == pid).order_by(t.c.taken_at, t.c.id)).mappings()]


def bp_body(taken_at: datetime, sys_: int = 132, dia: int = 84, provenance: str = "self_reported",
            **extra: Any) -> dict[str, Any]:
    return {"kind": "blood_pressure", "systolic": sys_, "diastolic": dia, "taken_at": taken_at.isoformat(),
            "provenance": provenance, **extra}


def glucose_body(taken_at: datetime, value: float, unit: str = "mmol/L", provenance: str = "device",
                 **extra: Any) -> dict[str, Any]:
    return {"kind": "blood_glucose", "glucose": value, "unit": unit, "taken_at": taken_at.isoformat(),
            "provenance": provenance, **extra}


def an_hour_ago(now: datetime) -> datetime:
    return now - timedelta(hours=1)
