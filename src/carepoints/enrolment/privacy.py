"""Consent per purpose and the patient's PIPL rights (个人信息保护法): grant and
withdraw consent, download everything about the patient, and erasure.

- Consent: at most one active grant per (patient, purpose) (a partial unique index);
  a grant of another version supersedes the active one, the same version again is a
  no-op. A patient under 14 consents through a guardian (or the institution that
  enrolled them); `age_rule` holds the rule. Ingest judges the points-programme consent
  (patients.service.resolve), health processing and notifications read it too.
- Download (`export`) and erasure (`erase`) span every domain. Domains above this one
  (scheduling, engagement, rewards) join through `export_section` and `on_erasure` at
  import, as they join ingest through `events.service.observe`, so this module never
  imports them.
- Every write is audited with ids and codes only; services flush, never commit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.enrolment.errors import (
    ConsentNotFoundError,
    GuardianRequiredError,
    InvalidGuardianError,
    PatientErasedError,
)
from carepoints.enrolment.models import Erasure
from carepoints.events.models import Event
from carepoints.kit.bulk import fetch, marks
from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.time import local_date
from carepoints.ledger import service as ledger
from carepoints.ledger.models import Hold
from carepoints.notifications import service as notifications
from carepoints.notifications.models import Delivery, Preference
from carepoints.patients import crypto, proxies
from carepoints.patients import households as patient_households
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.patients.models import Consent, ExternalId, Patient, PatientKey, ProxyAuthorisation
from carepoints.patients.schemas import PURPOSES, GuardianIn
from carepoints.security import wechat

log = logging.getLogger("carepoints.privacy")

GUARDIAN_AGE = 14  # PIPL art. 31: a child under 14 consents through a parent or guardian
ERASED = "erased"

_consents = table(Consent)
_events = table(Event)
_holds = table(Hold)
_patients = table(Patient)
_erasures = table(Erasure)


# --- the age rule --------------------------------------------------------------------------

def under_guardian_age(birth_date: date | None, at: datetime) -> bool:
    """Whether a person born on `birth_date` is under 14 on the hospital's local day of `at`
    (no birth date: treated as an adult, the hospital did not record one)."""
    if birth_date is None:
        return False
    return local_date(at, get_settings().tz) < proxies.turns(birth_date, GUARDIAN_AGE)


def age_rule(birth_date: date | None, source: str, at: datetime) -> None:
    """A child under 14 cannot consent for themself: the source must be `guardian` (or
    `institution`, a hospital enrolment that took the guardian's consent on paper)."""
    if source == "patient" and under_guardian_age(birth_date, at):
        raise GuardianRequiredError()


# --- consent -------------------------------------------------------------------------------

def _doc(row: Any) -> dict[str, Any]:
    guardian = None
    if row["guardian_relation"] is not None:
        guardian = {"relation": row["guardian_relation"], "patient_id": row["guardian_patient_id"],
                    "name_recorded": row["guardian_name_enc"] is not None}
    return {"id": row["id"], "purpose": row["purpose"], "version": row["version"],
            "accepted_at": row["accepted_at"], "source": row["source"], "guardian": guardian,
            "withdrawn_at": row["withdrawn_at"], "ended_by": row["ended_by"]}


def _require(session: Session, patient_id: str, *, lock: bool = False) -> patients.Resolved:
    found = patients.lock(session, patient_id) if lock else (
        patients.resolve(session, [patient_id], [])[0].get(patient_id) if is_id(patient_id) else None)
    if found is None:
        raise PatientNotFoundError()
    return found


def consents(session: Session, patient_id: str) -> dict[str, Any]:
    """Current state per purpose (granted or not, with the active grant) and the whole
    history, newest first."""
    _require(session, patient_id)
    rows = session.connection().execute(select(_consents).where(_consents.c.patient_id == patient_id)
                                        .order_by(_consents.c.accepted_at.desc(), _consents.c.id.desc())
                                        ).mappings().all()
    active = {r["purpose"]: _doc(r) for r in rows if r["withdrawn_at"] is None}
    current = [{"purpose": p, "granted": p in active, "consent": active.get(p)} for p in PURPOSES]
    return {"patient_id": patient_id, "current": current, "history": [_doc(r) for r in rows]}


def _guardian_fields(session: Session, patient_id: str, guardian: GuardianIn | None, source: str) -> dict[str, Any]:
    if guardian is None:
        return {"guardian_relation": None, "guardian_patient_id": None, "guardian_name_enc": None}
    if source != "guardian" or guardian.patient_id == patient_id or (
            guardian.patient_id is not None and not patients.exists(session, guardian.patient_id)):
        raise InvalidGuardianError()
    name_enc = None
    if guardian.name is not None:
        salt = session.connection().execute(select(PatientKey.salt).where(PatientKey.patient_id == patient_id)
                                            ).scalar()
        if salt is not None:  # under the child's own key: an erasure shreds it with theirs
            name_enc = crypto.keyring().encrypt(patient_id, "guardian_name", bytes(salt), guardian.name)
    return {"guardian_relation": guardian.relation, "guardian_patient_id": guardian.patient_id,
            "guardian_name_enc": name_enc}


def grant(session: Session, patient_id: str, purpose: str, version: str, actor: Actor, now: datetime, *,
          source: str | None = None, guardian: GuardianIn | None = None) -> tuple[dict[str, Any], bool]:
    """Grant consent for one purpose now. The same purpose and version while active answers
    the active grant (created False); another version supersedes it. Takes the patient's
    row lock, so two grants of one patient never race; audited."""
    source = source or ("guardian" if guardian is not None else "patient")
    found = _require(session, patient_id, lock=True)
    if found.status == ERASED:
        raise PatientErasedError()
    age_rule(found.birth_date, source, now)
    conn = session.connection()
    active = conn.execute(select(_consents).where(_consents.c.patient_id == patient_id, _consents.c.purpose == purpose,
                                                  _consents.c.withdrawn_at.is_(None))).mappings().first()
    if active is not None and active["version"] == version:
        return _doc(active), False
    fields = _guardian_fields(session, patient_id, guardian, source)
    if active is not None:
        conn.execute(update(_consents).where(_consents.c.id == active["id"])
                     .values(withdrawn_at=now, ended_by="superseded"))
    cid = new_id()
    conn.execute(insert(_consents), [{"id": cid, "patient_id": patient_id, "purpose": purpose, "version": version,
                                      "accepted_at": now, "source": source, "withdrawn_at": None, "ended_by": None,
                                      **fields}])
    audit.record(session, actor, "patients:consent:grant", now, subject_id=cid, patient_id=patient_id,
                 purpose=purpose, version=version, source=source,
                 superseded=active["id"] if active is not None else None)
    row = conn.execute(select(_consents).where(_consents.c.id == cid)).mappings().one()
    return _doc(row), True


def attach_guardian(session: Session, patient_id: str, guardian: GuardianIn, source: str) -> None:
    """At enrolment: record the guardian on the consents `patients.create` just stored."""
    fields = _guardian_fields(session, patient_id, guardian, source)
    session.connection().execute(update(_consents).where(_consents.c.patient_id == patient_id,
                                                         _consents.c.withdrawn_at.is_(None)).values(**fields))


def withdraw(session: Session, patient_id: str, purpose: str, actor: Actor, now: datetime, *,
             ended_by: str = "withdrawn") -> dict[str, Any]:
    """Withdraw the active consent for `purpose` (404 `consent.not_found` when none is
    active); processing for that purpose stops from now. Audited."""
    _require(session, patient_id, lock=True)
    conn = session.connection()
    active = conn.execute(select(_consents).where(_consents.c.patient_id == patient_id, _consents.c.purpose == purpose,
                                                  _consents.c.withdrawn_at.is_(None))).mappings().first() \
        if purpose in PURPOSES else None
    if active is None:
        raise ConsentNotFoundError()
    conn.execute(update(_consents).where(_consents.c.id == active["id"]).values(withdrawn_at=now, ended_by=ended_by))
    audit.record(session, actor, "patients:consent:withdraw", now, subject_id=active["id"], patient_id=patient_id,
                 purpose=purpose, version=active["version"])
    return {**_doc(active), "withdrawn_at": now, "ended_by": ended_by}


def consenting(session: Session, patient_ids: Iterable[str], purpose: str) -> set[str]:
    """The patients among these who hold an active consent for `purpose` now (one query)."""
    unique = sorted({p for p in patient_ids if is_id(p)})
    if not unique:
        return set()
    conn = session.connection()
    sql = ("SELECT patient_id FROM consents WHERE withdrawn_at IS NULL "  # noqa: S608 - placeholders only
           f"AND purpose = {marks(conn, 1)} AND patient_id IN ({marks(conn, len(unique))})")
    return {r[0] for r in fetch(conn, sql, (purpose, *unique))}


def has_consent(session: Session, patient_id: str, purpose: str) -> bool:
    """Whether the patient consents to `purpose` now (e.g. `research` for experiments)."""
    return patient_id in consenting(session, [patient_id], purpose)


# --- the registries higher domains join ----------------------------------------------------

Exporter = Callable[[Session, str], Any]
Eraser = Callable[[Session, str, Actor, datetime], dict[str, int]]
_sections: dict[str, Exporter] = {}
_erasers: dict[str, Eraser] = {}


def export_section(name: str, exporter: Exporter) -> None:
    """Add a section to every data download: `exporter(session, patient_id)` answers the
    patient's own records (JSON-able) and nobody else's. Registering a name again replaces it."""
    _sections[name] = exporter


def on_erasure(name: str, eraser: Eraser) -> None:
    """Run `eraser(session, patient_id, actor, now)` inside every erasure, after consents are
    withdrawn and before the PII is shredded; it answers counts for the outcome."""
    _erasers[name] = eraser


# --- download ------------------------------------------------------------------------------

def _events_of(session: Session, patient_id: str) -> list[dict[str, Any]]:
    rows = session.connection().execute(
        select(_events.c.id, _events.c.type, _events.c.occurred_at, _events.c.received_at, _events.c.source,
               _events.c.source_event_id, _events.c.attributes, _events.c.revoked_at)
        .where(_events.c.patient_id == patient_id).order_by(_events.c.occurred_at, _events.c.id)).mappings()
    return [dict(r) for r in rows]


def _ledger_of(session: Session, patient_id: str, now: datetime) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = ledger.entries(session, patient_id, limit=500, before=cursor)
        items.extend(page["items"])
        cursor = page["next"]
        if cursor is None:
            break
    summary = ledger.summary(session, patient_id, now, 30)
    summary.pop("wallet_id", None)
    return {"summary": summary, "entries": items}


def _messages_of(session: Session, patient_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = notifications.messages(session, notifications.patient_inbox(patient_id), unread_only=False,
                                      limit=500, before=cursor)
        items.extend(page["items"])
        cursor = page["next"]
        if cursor is None:
            return items


def export(session: Session, patient_id: str, actor: Actor, now: datetime, *, reveal_pii: bool) -> dict[str, Any]:
    """Everything carepoints holds about the patient, as one JSON document (数据下载); the
    profile unmasked only for the patient themself or staff who may read PII. Audited."""
    profile = patients.read(session, patient_id, reveal_pii=reveal_pii)
    doc: dict[str, Any] = {
        "format": "carepoints.export/1", "generated_at": now, "patient_id": patient_id,
        "profile": {k: v for k, v in profile.items() if k not in ("consents", "external_ids")},
        "external_ids": profile["external_ids"],
        "consents": consents(session, patient_id)["history"],
        "events": _events_of(session, patient_id),
        "points": _ledger_of(session, patient_id, now),
        "messages": _messages_of(session, patient_id),
        "household": patient_households.membership(session, patient_id),
        "proxies": {"for_me": proxies.authorisations(session, patient_id),
                    "i_act_for": _acting_for(session, patient_id)},
        "erasure": _erasure_doc(session, patient_id),
    }
    for name, exporter in sorted(_sections.items()):
        doc[name] = exporter(session, patient_id)
    audit.record(session, actor, "patients:privacy:export", now, subject_id=patient_id, patient_id=patient_id,
                 unmasked=reveal_pii, sections=len(doc))
    return doc


def _acting_for(session: Session, patient_id: str) -> list[dict[str, Any]]:
    pa = table(ProxyAuthorisation)
    rows = session.connection().execute(select(pa.c.id, pa.c.patient_id, pa.c.scopes, pa.c.created_at,
                                               pa.c.revoked_at).where(pa.c.proxy_patient_id == patient_id)
                                        .order_by(pa.c.created_at)).mappings()
    return [{**dict(r), "scopes": list(r["scopes"] or [])} for r in rows]


def _erasure_doc(session: Session, patient_id: str) -> dict[str, Any] | None:
    row = session.connection().execute(select(_erasures).where(_erasures.c.patient_id == patient_id)).mappings().first()
    return None if row is None else {"erased_at": row["erased_at"], "reason": row["reason"], "outcome": row["outcome"]}


# --- erasure -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ErasureResult:
    doc: dict[str, Any]
    created: bool


def _release_holds(session: Session, patient_id: str, now: datetime) -> int:
    wallet = ledger.wallet_ids(session, [patient_id]).get(patient_id)
    if wallet is None:
        return 0
    ids = [r[0] for r in session.connection().execute(
        select(_holds.c.id).where(_holds.c.wallet_id == wallet, _holds.c.status == "open").order_by(_holds.c.id))]
    for hid in ids:  # as a timeout would: the cashier never settled them (fee offsets read "expired")
        ledger.void_hold(session, hid, now, status="expired")
    return len(ids)


def _stop_messages(session: Session, patient_id: str, now: datetime) -> int:
    """Drop the patient's channel settings (a bound WeChat id is personal data) and every
    external message not yet sent to them."""
    conn = session.connection()
    conn.execute(delete(table(Preference)).where(table(Preference).c.patient_id == patient_id))
    d = table(Delivery)
    result = conn.execute(update(d).where(d.c.recipient_kind == "patient", d.c.recipient_id == patient_id,
                                          d.c.status.in_(("pending", "sending")))
                          .values(status="dead", last_error="erased", updated_at=now))
    return int(result.rowcount or 0)


def erase(session: Session, patient_id: str, actor: Actor, now: datetime, *, reason: str | None = None
          ) -> ErasureResult:
    """Erase the patient (删除权): withdraw every consent, let the domains stop what runs for
    them (future appointments cancelled by the hospital, never penalised; reminders and
    plans stopped), release open holds, revoke proxy authorisations, drop external ids, the idempotency key, channel
    settings and unsent messages, then crypto-shred the PII (patients.service.shred). The
    ledger's transfers and amounts stay for accounting. Idempotent: again answers the first
    outcome (created False). Audited."""
    found = _require(session, patient_id, lock=True)
    conn = session.connection()
    done = conn.execute(select(_erasures).where(_erasures.c.patient_id == patient_id)).mappings().first()
    if done is not None:
        return ErasureResult(_erasure_result(done), False)
    outcome: dict[str, int] = {}
    active = [r[0] for r in conn.execute(select(_consents.c.purpose).where(
        _consents.c.patient_id == patient_id, _consents.c.withdrawn_at.is_(None)).order_by(_consents.c.purpose))]
    conn.execute(update(_consents).where(_consents.c.patient_id == patient_id, _consents.c.withdrawn_at.is_(None))
                 .values(withdrawn_at=now, ended_by=ERASED))
    conn.execute(update(_consents).where(_consents.c.patient_id == patient_id).values(guardian_name_enc=None))
    outcome["consents_withdrawn"] = len(active)
    for name, eraser in sorted(_erasers.items()):
        for key, count in eraser(session, patient_id, actor, now).items():
            outcome[f"{name}.{key}"] = count
    outcome["holds_released"] = _release_holds(session, patient_id, now)
    pa = table(ProxyAuthorisation)  # nobody acts for them any more, nor they for anyone
    revoked = conn.execute(update(pa).where(or_(pa.c.patient_id == patient_id, pa.c.proxy_patient_id == patient_id),
                                            pa.c.revoked_at.is_(None)).values(revoked_at=now))
    outcome["proxies_revoked"] = int(revoked.rowcount or 0)
    outcome["deliveries_stopped"] = _stop_messages(session, patient_id, now)
    ext = conn.execute(delete(table(ExternalId)).where(table(ExternalId).c.patient_id == patient_id))
    outcome["external_ids_removed"] = int(ext.rowcount or 0)
    conn.execute(update(_patients).where(_patients.c.id == patient_id).values(idempotency_key=None))
    patients.shred(session, patient_id, now)
    conn.execute(insert(_erasures), [{"patient_id": patient_id, "reason": reason, "actor_kind": actor.kind,
                                      "actor_id": actor.id, "outcome": outcome, "erased_at": now}])
    audit.record(session, actor, "patients:privacy:erase", now, subject_id=patient_id, patient_id=patient_id,
                 reason=reason, status_before=found.status, counts=outcome)
    row = conn.execute(select(_erasures).where(_erasures.c.patient_id == patient_id)).mappings().one()
    return ErasureResult(_erasure_result(row), True)


def _erasure_result(row: Any) -> dict[str, Any]:
    return {"patient_id": row["patient_id"], "status": ERASED, "erased_at": row["erased_at"],
            "reason": row["reason"], "outcome": row["outcome"]}


def is_erased(session: Session, patient_id: str) -> bool:
    return session.connection().execute(select(_erasures.c.patient_id).where(
        _erasures.c.patient_id == patient_id)).first() is not None


# (ops.wechat) a patient's WeChat bindings: in their data download, forgotten at erasure
export_section("wechat", wechat.export)
on_erasure("wechat", wechat.forget_patient)
