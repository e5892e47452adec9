"""Master-key rotation of stored PII (`carepoints keys rotate`).

A row is rotated when its key tag (`patients.pii_kid`, "alg:kid") is not the current
one: its values are decrypted under their key (which must still be configured, in
`CAREPOINTS_PII_OLD_KEYS`), encrypted under the current key and cipher, and its blind
indexes recomputed. Each batch is one transaction the caller commits, so a stopped run
loses nothing and a second run continues where the first stopped; rows already current
are never touched. Erased rows have no values and are skipped."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from carepoints.patients import crypto
from carepoints.patients.models import Patient, PatientKey
from carepoints.patients.sealing import COLUMNS, opened, sealed


@dataclass(slots=True)
class Batch:
    rotated: int
    unreadable: int  # rows whose key is not configured (or whose values do not authenticate)
    last_id: str | None  # where the next batch starts; None when there are no more rows


def rotate_batch(session: Session, *, after: str = "", size: int = 500) -> Batch:
    """Re-encrypt up to `size` rows with an old key tag and an id after `after`; flushes only."""
    ring = crypto.keyring()
    conn = session.connection()
    stmt = (select(Patient.id, *(getattr(Patient, f"{c}_enc") for c in COLUMNS), PatientKey.salt)
            .join(PatientKey, PatientKey.patient_id == Patient.id)
            .where(Patient.pii_kid.is_not(None), Patient.pii_kid != ring.tag, Patient.id > after)
            .order_by(Patient.id).limit(size))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=Patient)
    rows = conn.execute(stmt).mappings().all()
    rotated = unreadable = 0
    for row in rows:
        pii = opened(ring, row)
        if pii.unreadable or pii.erased or pii.phone is None:
            unreadable += 1
            continue
        values = sealed(ring, row["id"], bytes(row["salt"]), name=pii.name, phone=pii.phone,
                        id_number=pii.id_number, address=pii.address)
        conn.execute(update(Patient).where(Patient.id == row["id"]).values(**values))
        rotated += 1
    return Batch(rotated, unreadable, rows[-1]["id"] if rows else None)


def pending(session: Session) -> dict[str, int]:
    """Rows per key tag that is not the current one (what a rotation has left to do)."""
    ring = crypto.keyring()
    rows = session.connection().execute(
        select(Patient.pii_kid, func.count()).where(Patient.pii_kid.is_not(None), Patient.pii_kid != ring.tag)
        .group_by(Patient.pii_kid).order_by(Patient.pii_kid)).all()
    return {str(tag): int(n) for tag, n in rows}
