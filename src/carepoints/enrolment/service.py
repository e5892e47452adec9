"""Enrolment: create the person, open the wallet and ingest
`account.registered` in one transaction, so the welcome points are in the
balance when the call returns. Idempotent on external id and idempotency key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor
from carepoints.enrolment import households, identity, privacy
from carepoints.events import service as events
from carepoints.kit.errors import AppError
from carepoints.ledger import service as ledger
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.patients.schemas import PatientCreate
from carepoints.rules import service as rules
from carepoints.rules import state as rule_state
from carepoints.tiers import service as tiers

SOURCE = "carepoints.enrolment"


def enrol(session: Session, data: PatientCreate, now: datetime, *, channel: str = "api") -> tuple[str, bool]:
    """Returns (patient id, created). A replay returns the existing patient."""
    existing = patients.find_existing(session, data)
    if existing is not None:
        return existing, False
    if data.consent.purposes != []:  # (trust.privacy) a child under 14 consents through a guardian
        privacy.age_rule(data.birth_date, data.consent.source, data.consent.accepted_at)
    nested = session.begin_nested()
    try:
        pid = patients.create(session, data, now)
        if data.consent.guardian is not None:
            privacy.attach_guardian(session, pid, data.consent.guardian, data.consent.source)
        ledger.open_wallet(session, pid, now)
        nested.commit()
    except IntegrityError:
        # A concurrent request enrolled the same person first: answer theirs.
        nested.rollback()
        existing = patients.find_existing(session, data)
        if existing is None:
            raise
        return existing, False
    welcome = events.ingest(session, [{
        "type": "account.registered", "patient": {"id": pid}, "occurred_at": now.isoformat(),
        "source": SOURCE, "source_event_id": f"registered:{pid}", "attributes": {"channel": channel}}], now)
    if isinstance(welcome[0], AppError):
        raise welcome[0]
    identity.detect_for(session, pid, now, Actor.system("enrolment"))  # (ops.identity) possible duplicates
    return pid, True


def points(session: Session, patient_id: str, now: datetime) -> dict[str, object]:
    """The points view of a patient (API.md `GET /patients/{id}/points`)."""
    if not patients.exists(session, patient_id):
        raise PatientNotFoundError()
    prog = rules.current_settings(session, now)
    summary = ledger.summary(session, patient_id, now, prog.settings.expiring_notice_days)
    year = now.astimezone(prog.tz).year
    earned, suspended_until = rule_state.facts(session.connection(), patient_id, year, now)
    tier = patients.tier_of(session, patient_id)
    summary.pop("wallet_id")
    return {**summary, "tier": tier, "earned_this_year": earned, "suspended_until": suspended_until,
            "advisor": tiers.advisor_of(session, patient_id), "household": households.of_patient(session, patient_id)}


def patient(session: Session, patient_id: str, *, reveal_pii: bool) -> dict[str, object]:
    """A patient (API.md `GET /patients/{id}`), with their health advisor when they have one."""
    return {**patients.read(session, patient_id, reveal_pii=reveal_pii),
            "advisor": tiers.advisor_of(session, patient_id)}


def entries(session: Session, patient_id: str, *, limit: int, cursor: str | None) -> dict[str, object]:
    if not patients.exists(session, patient_id):
        raise PatientNotFoundError()
    return ledger.entries(session, patient_id, limit=limit, before=cursor)
