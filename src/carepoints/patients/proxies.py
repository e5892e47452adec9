"""Proxy authorisations (代办): a patient lets a caregiver act for them — another
patient, a guardian, or the service window (积分服务专窗) — within scopes
(view, book, redeem), until revoked. A guardian acts for a child under 14 in
every scope by default, whatever scopes were recorded; from the 14th birthday
(in the hospital's time zone) only the recorded ones remain.

Every action a proxy takes is checked with `check` and recorded with `act`
(an audit row naming the patient acted for in `on_behalf_of`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.kit.bulk import as_date
from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.time import local_date
from carepoints.patients.errors import (
    InvalidProxyError,
    PatientNotFoundError,
    ProxyExistsError,
    ProxyNotAuthorisedError,
    ProxyNotFoundError,
)
from carepoints.patients.models import Patient, ProxyAuthorisation

SCOPES = ("view", "book", "redeem")
GUARDIAN_AGE = 14
_auth = table(ProxyAuthorisation)
_patients = table(Patient)


@dataclass(frozen=True, slots=True)
class Proxy:
    """Who acts: another patient (a caregiver or guardian), or the service window."""

    patient_id: str | None = None

    @classmethod
    def service_window(cls) -> Proxy:
        return cls(None)

    @property
    def label(self) -> str:
        return self.patient_id or "service_window"


def turns(birth: date, years: int) -> date:
    """The day a person born on `birth` reaches `years` (29 February: 1 March in common years)."""
    try:
        return birth.replace(year=birth.year + years)
    except ValueError:
        return date(birth.year + years, 3, 1)


def _birth_date(session: Session, patient_id: str) -> tuple[bool, date | None]:
    row = session.connection().execute(select(_patients.c.birth_date).where(_patients.c.id == patient_id)).first() \
        if is_id(patient_id) else None
    if row is None:
        return False, None
    return True, as_date(row[0]) if row[0] is not None else None


def _require_patient(session: Session, patient_id: str) -> date | None:
    found, birth = _birth_date(session, patient_id)
    if not found:
        raise PatientNotFoundError()
    return birth


def _public(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "patient_id": row["patient_id"], "kind": row["proxy_kind"],
            "proxy_patient_id": row["proxy_patient_id"], "scopes": list(row["scopes"] or []),
            "created_at": row["created_at"], "revoked_at": row["revoked_at"]}


def authorise(session: Session, patient_id: str, proxy: Proxy, scopes: list[str], now: datetime, *,
              guardian: bool = False) -> dict[str, Any]:
    """Record an authorisation; one active per (patient, proxy) — a second is a conflict."""
    _require_patient(session, patient_id)
    if proxy.patient_id is not None:
        if proxy.patient_id == patient_id:
            raise InvalidProxyError()
        _require_patient(session, proxy.patient_id)
    elif guardian:
        raise InvalidProxyError()
    kind = "guardian" if guardian else "patient" if proxy.patient_id else "service_window"
    row = {"id": new_id(), "patient_id": patient_id, "proxy_kind": kind, "proxy_patient_id": proxy.patient_id,
           "scopes": [s for s in SCOPES if s in set(scopes)], "created_at": now, "revoked_at": None}
    nested = session.begin_nested()
    try:
        session.connection().execute(insert(_auth), [row])
        nested.commit()
    except IntegrityError:
        nested.rollback()
        raise ProxyExistsError() from None
    return _public(row)


def revoke(session: Session, patient_id: str, authorisation_id: str, now: datetime) -> dict[str, Any]:
    """End an authorisation; revoking again answers the same result."""
    conn = session.connection()
    row = conn.execute(select(_auth).where(_auth.c.id == authorisation_id, _auth.c.patient_id == patient_id)
                       ).mappings().first() if is_id(authorisation_id) else None
    if row is None:
        raise ProxyNotFoundError()
    if row["revoked_at"] is None:
        conn.execute(update(_auth).where(_auth.c.id == authorisation_id, _auth.c.revoked_at.is_(None))
                     .values(revoked_at=now))
        row = conn.execute(select(_auth).where(_auth.c.id == authorisation_id)).mappings().one()
    return _public(row)


def authorisations(session: Session, patient_id: str) -> list[dict[str, Any]]:
    """Every authorisation the patient gave, newest first (revoked ones included)."""
    _require_patient(session, patient_id)
    rows = session.connection().execute(select(_auth).where(_auth.c.patient_id == patient_id)
                                        .order_by(_auth.c.created_at.desc(), _auth.c.id.desc())).mappings().all()
    return [_public(r) for r in rows]


def check(session: Session, patient_id: str, proxy: Proxy, scope: str, now: datetime) -> str:
    """The id of the active authorisation that lets `proxy` act for the patient in `scope`;
    `ProxyNotAuthorisedError` (403) when there is none."""
    conn = session.connection()
    who = (_auth.c.proxy_patient_id == proxy.patient_id) if proxy.patient_id is not None \
        else (_auth.c.proxy_kind == "service_window")
    row = conn.execute(select(_auth.c.id, _auth.c.proxy_kind, _auth.c.scopes).where(
        _auth.c.patient_id == patient_id, _auth.c.revoked_at.is_(None), who)).first() \
        if is_id(patient_id) and (proxy.patient_id is None or is_id(proxy.patient_id)) else None
    if row is None:
        raise ProxyNotAuthorisedError(scope=scope)
    if scope in (row[2] or []):
        return str(row[0])
    if row[1] == "guardian":
        _found, birth = _birth_date(session, patient_id)
        if birth is not None and local_date(now, get_settings().tz) < turns(birth, GUARDIAN_AGE):
            return str(row[0])
    raise ProxyNotAuthorisedError(scope=scope)


def act(session: Session, actor: Actor, patient_id: str, proxy: Proxy, scope: str, action: str, now: datetime, *,
        subject_id: str | None = None, **details: Any) -> str:
    """Check that `proxy` may act for the patient in `scope` and record the action as a
    proxy action (audit row with `on_behalf_of`); returns the authorisation id."""
    aid = check(session, patient_id, proxy, scope, now)
    audit.record(session, actor, action, now, subject_id=subject_id, patient_id=patient_id,
                 on_behalf_of=patient_id, authorisation_id=aid, proxy=proxy.label, scope=scope, **details)
    return aid

