"""Every query of the tiers domain. The tier itself is a column of `patients`
(read there with the patient for the rules engine); writers of a tier hold the
patient's row lock (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from carepoints.kit.bulk import fetch, insert_rows, marks, ts_param, update_rows
from carepoints.kit.db import is_postgres, table
from carepoints.patients.models import Patient
from carepoints.security.models import StaffUser
from carepoints.tiers.models import PatientAdvisor, TierChange

_patients = table(Patient)
_changes = table(TierChange)
_advisors = table(PatientAdvisor)
_staff = table(StaffUser)


def tiers_of(session: Session, patient_ids: Iterable[str], *, lock: bool = False,
             skip_locked: bool = False) -> dict[str, str]:
    """Patient id → tier. With `lock` (PostgreSQL) the rows are locked in key order
    (FOR NO KEY UPDATE: foreign-key checks of other writers do not queue behind it);
    with `skip_locked` too, rows another transaction holds are left out, not waited for."""
    ids = sorted(set(patient_ids))
    if not ids:
        return {}
    conn = session.connection()
    sql = f"SELECT id, tier FROM patients WHERE id IN ({marks(conn, len(ids))}) ORDER BY id"  # noqa: S608
    if lock and is_postgres(session):
        sql += " FOR NO KEY UPDATE SKIP LOCKED" if skip_locked else " FOR NO KEY UPDATE"
    return {str(pid): str(tier) for pid, tier in fetch(conn, sql, ids)}


def patients_after(session: Session, after: str, limit: int) -> list[tuple[str, str]]:
    """(id, tier) of the next `limit` patients in id order after `after`."""
    rows = session.connection().execute(select(_patients.c.id, _patients.c.tier).where(_patients.c.id > after)
                                        .order_by(_patients.c.id).limit(limit))
    return [(r[0], r[1]) for r in rows]


def set_tiers(session: Session, tiers: Sequence[tuple[str, str]]) -> None:
    """(patient id, tier) pairs; the caller holds the rows' locks."""
    update_rows(session.connection(), _patients, [(tier, pid) for pid, tier in tiers], ("tier",), ("id",))


def add_changes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    insert_rows(session.connection(), _changes, rows)


def history(session: Session, patient_id: str, limit: int) -> list[dict[str, Any]]:
    rows = session.connection().execute(
        select(_changes.c.from_tier, _changes.c.to_tier, _changes.c.reason, _changes.c.earned, _changes.c.at)
        .where(_changes.c.patient_id == patient_id).order_by(_changes.c.at.desc(), _changes.c.id.desc())
        .limit(limit))
    return [{"from": r[0], "to": r[1], "reason": r[2], "earned": r[3], "at": r[4]} for r in rows]


# --- advisors -------------------------------------------------------------------------

def advisor_of(session: Session, patient_id: str) -> tuple[str, str] | None:
    """(staff user id, username) of the patient's advisor while that user is active."""
    row = session.connection().execute(
        select(_staff.c.id, _staff.c.username).select_from(
            _advisors.join(_staff, _staff.c.id == _advisors.c.staff_user_id))
        .where(_advisors.c.patient_id == patient_id, _staff.c.active.is_(True))).first()
    return (row[0], row[1]) if row is not None else None


def put_advisor(session: Session, patient_id: str, staff_user_id: str, by: str, now: datetime) -> None:
    insert_rows(session.connection(), _advisors,
                [{"patient_id": patient_id, "staff_user_id": staff_user_id, "assigned_by": by, "assigned_at": now}],
                on_conflict="ON CONFLICT (patient_id) DO UPDATE SET staff_user_id = excluded.staff_user_id, "
                            "assigned_by = excluded.assigned_by, assigned_at = excluded.assigned_at")


def drop_advisors(session: Session, patient_ids: Iterable[str]) -> list[str]:
    """End these patients' advisor assignments; answers the patients that had one."""
    ids = sorted(set(patient_ids))
    if not ids:
        return []
    conn = session.connection()
    had = [r[0] for r in conn.execute(select(_advisors.c.patient_id).where(_advisors.c.patient_id.in_(ids)))]
    if had:
        conn.execute(delete(_advisors).where(_advisors.c.patient_id.in_(had)))
    return had


# --- the programme's tier settings --------------------------------------------------------

def programme_settings(session: Session, at: datetime) -> dict[str, Any]:
    """The `settings` of the programme version in force at `at` (the latest effective
    one, else the first), read from the stored document: the rules domain sits above."""
    conn = session.connection()
    rows = fetch(conn, "SELECT document FROM program_versions WHERE effective_from <= "  # noqa: S608
                       f"{marks(conn, 1)} ORDER BY effective_from DESC, version DESC LIMIT 1", (ts_param(conn, at),))
    if not rows:
        rows = fetch(conn, "SELECT document FROM program_versions ORDER BY effective_from, version LIMIT 1")
    if not rows:
        return {}
    doc = rows[0][0]
    doc = doc if isinstance(doc, dict) else orjson.loads(doc)
    settings = doc.get("settings") or {}
    return settings if isinstance(settings, dict) else {}
