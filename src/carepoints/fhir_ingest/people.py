"""FHIR Patients: matched to carepoints patients by identifier (and the FHIR id, kept
as an external id), enrolled when the sending key may enrol, marked deceased; and
the patient references of other resources resolved to carepoints ids."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.enrolment import service as enrolment
from carepoints.fhir_ingest.errors import MissingElementError, PatientIncompleteError
from carepoints.kit.bulk import insert_new
from carepoints.kit.db import table
from carepoints.kit.errors import PermissionDeniedError
from carepoints.kit.ids import is_id
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.patients.models import ExternalId, Patient
from carepoints.patients.schemas import PatientCreate
from carepoints.security import scope

Json = dict[str, Any]
_patients = table(Patient)
_external = table(ExternalId)
CONSENT_VERSION = "institution"
_FHIR_ID = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_CONDITIONAL = re.compile(r"^Patient\?identifier=([^|&]+)\|([^&]+)$")


@dataclass(slots=True)
class Context:
    """One request: who sends, and the Patients its Bundle carries (by fullUrl and by
    `Patient/<id>`), resolved to carepoints ids once their entries are processed."""

    actor: Actor
    can_enrol: bool
    can_revoke: bool
    tz: ZoneInfo
    id_system: str
    carried: dict[str, Json] = field(default_factory=dict)
    local: dict[str, str] = field(default_factory=dict)


def identifiers(pat: Json, id_system: str) -> list[tuple[str, str]]:
    """(system, value) pairs of a Patient: its identifiers, then its FHIR id."""
    pairs: list[tuple[str, str]] = []
    for ident in pat.get("identifier") or []:
        if not isinstance(ident, dict):
            continue
        system, value = ident.get("system"), ident.get("value")
        if isinstance(system, str) and isinstance(value, str) and 0 < len(system) <= 200 and 0 < len(value) <= 200:
            pairs.append((system, value))
    if isinstance(pat.get("id"), str) and pat["id"]:
        pairs.append((id_system, pat["id"]))
    return list(dict.fromkeys(pairs))


def _match(session: Session, pairs: list[tuple[str, str]]) -> str | None:
    if not pairs:
        return None
    _found, by_ref = patients.resolve(session, [], pairs)
    return next((by_ref[p] for p in pairs if p in by_ref), None)


def resolve(session: Session, ctx: Context, ref: Any, contained: list[Json]) -> str:
    """The carepoints patient a FHIR reference names: a Bundle entry (fullUrl or
    Patient/<id>), a contained Patient, a conditional `Patient?identifier=s|v`, a
    logical `identifier`, or `Patient/<id>` by the FHIR id kept at enrolment (or a
    carepoints id). Unknown → PatientNotFoundError (404)."""
    if not isinstance(ref, dict):
        raise MissingElementError(element="subject", fields=[{"loc": ["subject"], "msg": "a Patient is required"}])
    pairs: list[tuple[str, str]] = []
    internal: str | None = None
    ident = ref.get("identifier")
    if isinstance(ident, dict) and isinstance(ident.get("system"), str) and isinstance(ident.get("value"), str):
        pairs.append((ident["system"], ident["value"]))
    reference = ref.get("reference")
    if isinstance(reference, str) and reference:
        if reference in ctx.local:
            return ctx.local[reference]
        if reference.startswith("#"):
            pat = next((c for c in contained if isinstance(c, dict) and c.get("id") == reference[1:]
                        and c.get("resourceType") == "Patient"), None)
            pairs.extend(identifiers(pat, ctx.id_system) if pat else [])
        elif reference in ctx.carried:
            pairs.extend(identifiers(ctx.carried[reference], ctx.id_system))
        elif (cond := _CONDITIONAL.match(reference)) is not None:
            pairs.append((cond[1], cond[2]))
        elif (m := _FHIR_ID.search(reference)) is not None:
            if f"Patient/{m[1]}" in ctx.local:
                return ctx.local[f"Patient/{m[1]}"]
            pairs.append((ctx.id_system, m[1]))
            internal = m[1] if is_id(m[1]) else None
    pid = _match(session, [p for p in pairs if len(p[0]) <= 200 and len(p[1]) <= 200])
    if pid is None and internal is not None and patients.exists(session, internal):
        pid = internal
    if pid is None:
        raise PatientNotFoundError()
    scope.ensure(pid, session)  # (ops.alliance) a key bound to institutions reaches only their patients
    return pid


# --- Patient resources ---------------------------------------------------------------------

def _cjk(text: str) -> bool:
    return all(unicodedata.name(ch, "").startswith("CJK") for ch in text if not ch.isspace())


def name_of(pat: Json) -> str | None:
    """The official (else first) HumanName: its text, else family then given names (the
    Chinese order; without spaces when the name is written in Chinese characters)."""
    names = [n for n in pat.get("name") or [] if isinstance(n, dict)]
    chosen = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    if chosen is None:
        return None
    text = chosen.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip()[:100]
    parts = [str(chosen.get("family") or "").strip(), *(str(g).strip() for g in chosen.get("given") or [])]
    parts = [p for p in parts if p]
    if not parts:
        return None
    joined = "".join(parts) if _cjk("".join(parts)) else " ".join(parts)
    return joined[:100]


def phone_of(pat: Json) -> str | None:
    """A telecom phone (mobile first, then by rank), reduced to digits and a leading +."""
    phones = [t for t in pat.get("telecom") or [] if isinstance(t, dict) and t.get("system") in ("phone", "sms")
              and isinstance(t.get("value"), str)]
    phones.sort(key=lambda t: (t.get("use") != "mobile", int(t.get("rank") or 99)))
    for t in phones:
        raw = t["value"].strip()
        digits = ("+" if raw.startswith("+") else "") + re.sub(r"\D", "", raw)
        if re.fullmatch(r"\+?[0-9]{5,20}", digits):
            return digits
    return None


def _birth(pat: Json) -> date | None:
    value = pat.get("birthDate")
    try:
        return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        return None


def is_deceased(pat: Json) -> bool:
    return pat.get("deceasedBoolean") is True or bool(pat.get("deceasedDateTime"))


def _create_body(pat: Json, pairs: list[tuple[str, str]], source: str, now: datetime) -> PatientCreate:
    name, phone = name_of(pat), phone_of(pat)
    missing = [{"loc": ["name"], "msg": "a name is required"}] if name is None else []
    missing += [{"loc": ["telecom"], "msg": "a phone number is required"}] if phone is None else []
    if missing:
        raise PatientIncompleteError(fields=missing)
    gender = pat.get("gender")
    key = None if pairs else "fhir:" + hashlib.sha256(f"{source}|{name}|{phone}|{pat.get('birthDate')}".encode()
                                                     ).hexdigest()[:40]
    try:
        return PatientCreate.model_validate({
            "name": name, "phone": phone, "birth_date": _birth(pat),
            "sex": gender if gender in ("male", "female", "other", "unknown") else "unknown",
            "external_ids": [{"system": s, "value": v} for s, v in pairs[:20]],
            # the institution consents for the programme's default purposes; not for the deceased
            "consent": {"version": CONSENT_VERSION, "accepted_at": now, "source": "institution",
                        **({"purposes": []} if is_deceased(pat) else {})},
            "idempotency_key": key})
    except ValidationError as exc:
        raise PatientIncompleteError(fields=[{"loc": list(e["loc"]), "msg": e["msg"]}
                                             for e in exc.errors(include_url=False)]) from exc


def _link(session: Session, pid: str, pairs: list[tuple[str, str]]) -> None:
    """Keep the identifiers this Patient brings that nobody holds yet."""
    _found, by_ref = patients.resolve(session, [], pairs)
    for system, value in (p for p in pairs if p not in by_ref):
        insert_new(session.connection(), _external, {"system": system, "value": value, "patient_id": pid},
                   ("system", "value"))


def mark_deceased(session: Session, pid: str, actor: Actor, now: datetime) -> bool:
    """Status `deceased`: the rules engine earns nothing for a patient who is not active
    and notifications skip them. Audited; False when already not active."""
    done = session.connection().execute(update(_patients).where(
        _patients.c.id == pid, _patients.c.status == "active").values(status="deceased")).rowcount
    if done:
        audit.record(session, actor, "patients:patient:deceased", now, subject_id=pid, patient_id=pid,
                     via="fhir")
    return bool(done)


def ingest_patient(session: Session, ctx: Context, pat: Json, source: str, now: datetime) -> tuple[bool, str]:
    """Match, else enrol (needs `patients:enrol`; consent source institution, default
    purposes). Returns (enrolled now, patient id)."""
    pairs = identifiers(pat, ctx.id_system)
    pid = _match(session, pairs)
    created = False
    if pid is not None:
        _link(session, pid, pairs)
    else:
        if not ctx.can_enrol:
            raise PermissionDeniedError(permission="patients:enrol")
        pid, created = enrolment.enrol(session, _create_body(pat, pairs, source, now), now, channel="fhir")
    if is_deceased(pat):
        mark_deceased(session, pid, ctx.actor, now)  # enrolled deceased: no consent, so no welcome either
    return created, pid


def status_of(session: Session, pid: str) -> str | None:
    status = session.connection().execute(select(_patients.c.status).where(_patients.c.id == pid)).scalar()
    return str(status) if status is not None else None
