"""Pure mapping of FHIR R4 resources (as validated JSON) to carepoints events: no I/O.

Each mapper answers a `Draft` (an event to ingest), a `Revoke` (the resource was
cancelled or entered in error: its earlier event is revoked) or a `Skip` (nothing
to record, with the reason as an `information` issue), or raises an AppError for a
resource it cannot accept. Statuses are checked here: the FHIR models do not check
code values."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from carepoints.events.schemas import MG_DL_PER_MMOL_L
from carepoints.fhir_ingest.errors import FhirCodeError, MissingElementError, UnitError

Json = dict[str, Any]

BP_PANELS = frozenset({"85354-9", "55284-4"})
SYSTOLIC, DIASTOLIC, PULSE = "8480-6", "8462-4", "8867-4"
GLUCOSE = frozenset({"2339-0", "2345-7", "15074-8", "14749-6"})
LOINC = "http://loinc.org"

OBSERVATION_STATUS = frozenset({"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                                "entered-in-error", "unknown"})
APPOINTMENT_STATUS = frozenset({"proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
                                "entered-in-error", "checked-in", "waitlist"})
QR_STATUS = frozenset({"in-progress", "completed", "amended", "entered-in-error", "stopped"})
ENCOUNTER_STATUS = frozenset({"planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled",
                              "entered-in-error", "unknown"})
REVOKING = frozenset({"cancelled", "entered-in-error"})

# appointment-cancellation-reason codes (http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason)
# that put the cancellation on the hospital's side; every other reason, and none, is the patient's.
HOSPITAL_CANCELLATION = frozenset({
    "prov", "prov-dch", "prov-edu", "prov-hosp", "prov-labs", "prov-mri", "prov-onc",  # provider
    "maint", "meds-inc",  # equipment maintenance, medication incomplete
    "oth-cms", "oth-err", "oth-room", "oth-oerr", "oth-swie", "oth-int", "oth-mu"})  # therapy cap, errors, room …


@dataclass(slots=True)
class Draft:
    """An event to ingest; `patient` is the FHIR reference naming the patient."""

    type: str
    occurred_at: datetime
    attributes: Json
    patient: Json | None
    contained: list[Json] = field(default_factory=list)


@dataclass(slots=True)
class Revoke:
    code: str  # the status that revokes


@dataclass(slots=True)
class Skip:
    code: str
    message: str


Mapped = Draft | Revoke | Skip


def content_hash(resource: Json) -> str:
    """A stable hash of what the resource says: `meta.lastUpdated` alone does not make a
    new version (a resend from a server that stamps it again is a duplicate)."""
    doc = dict(resource)
    if isinstance(doc.get("meta"), dict):
        doc["meta"] = {k: v for k, v in doc["meta"].items() if k != "lastUpdated"}
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def instant(value: Any, tz: ZoneInfo) -> datetime | None:
    """A FHIR date or dateTime as an aware datetime: a bare date is local midnight; a
    partial date (year, year-month) is too vague for an event and answers None."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=tz)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _DATE.match(text):
        return datetime.combine(date.fromisoformat(text), time(0), tzinfo=tz)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _status(resource: Json, allowed: frozenset[str]) -> str:
    status = resource.get("status")
    if not isinstance(status, str):
        raise MissingElementError(element="status", fields=[{"loc": ["status"], "msg": "required"}])
    if status not in allowed:
        raise FhirCodeError(element="status", fields=[{"loc": ["status"], "msg": f"one of {sorted(allowed)}"}])
    return status


def _codes(concept: Any) -> set[str]:
    if not isinstance(concept, dict):
        return set()
    return {c["code"] for c in concept.get("coding") or []
            if isinstance(c, dict) and isinstance(c.get("code"), str) and c.get("system") in (None, LOINC)}


def _all_codes(concept: Any) -> set[str]:
    if not isinstance(concept, dict):
        return set()
    return {c["code"] for c in concept.get("coding") or [] if isinstance(c, dict) and isinstance(c.get("code"), str)}


def _whole(value: Any) -> int:
    """Half up to a whole number (mmHg, beats per minute); the plausibility ranges judge it."""
    number = Decimal(str(value))
    if not number.is_finite() or abs(number) > 100_000:
        return 0 if not number.is_finite() else int(Decimal(100_000).copy_sign(number))
    return int(number.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _when(resource: Json, tz: ZoneInfo, *names: str) -> datetime:
    for name in names:
        value = resource.get(name)
        if name == "effectivePeriod":
            value = value.get("start") if isinstance(value, dict) else None
        at = instant(value, tz)
        if at is not None:
            return at
    raise MissingElementError(element=names[0], fields=[{"loc": [names[0]], "msg": "a date and time is required"}])


# --- Observation ------------------------------------------------------------------------

def _provenance(obs: Json) -> str:
    """device when a Device took it; self_reported when only the patient (or a relative)
    performed it; clinic otherwise (readings at a visit are recorded, not rewarded)."""
    if obs.get("device"):
        return "device"
    performers = [p.get("reference") or "" for p in obs.get("performer") or [] if isinstance(p, dict)]
    subject = (obs.get("subject") or {}).get("reference")
    if performers and all(ref.startswith(("Patient/", "RelatedPerson/")) or (subject and ref == subject)
                          for ref in performers):
        return "self_reported"
    return "clinic"


def _quantity(part: Json, element: str) -> tuple[float, str]:
    q = part.get("valueQuantity")
    if not isinstance(q, dict) or q.get("value") is None:
        raise MissingElementError(element=element, fields=[{"loc": [element], "msg": "a valueQuantity is required"}])
    unit = str(q.get("code") or q.get("unit") or "")
    return float(q["value"]), unit


def _mm_hg(part: Json, element: str) -> int:
    value, unit = _quantity(part, element)
    if unit and unit.lower() not in ("mm[hg]", "mmhg"):
        raise UnitError(element=element, fields=[{"loc": [element], "msg": "mm[Hg] expected"}])
    return _whole(value)


def observation(obs: Json, tz: ZoneInfo) -> Mapped:
    status = _status(obs, OBSERVATION_STATUS)
    if status in REVOKING:
        return Revoke(status)
    codes = _codes(obs.get("code"))
    kind = "blood_pressure" if codes & BP_PANELS else "blood_glucose" if codes & GLUCOSE else None
    if kind is None:
        return Skip("fhir.observation_unsupported",
                    "仅记录血压和血糖观察 / Only blood pressure and glucose Observations are recorded")
    if status not in ("final", "amended", "corrected"):
        return Skip("fhir.not_final", "观察尚未确定,未记录 / The Observation is not final: not recorded")
    attrs: Json = {"kind": kind, "provenance": _provenance(obs)}
    parts = {code: c for c in obs.get("component") or [] if isinstance(c, dict) for code in _codes(c.get("code"))}
    needed = [parts.get(SYSTOLIC), parts.get(DIASTOLIC)] if kind == "blood_pressure" else [obs]
    if any(p is not None and "valueQuantity" not in p and p.get("dataAbsentReason") for p in needed):
        return Skip("fhir.value_absent", "读数缺失(dataAbsentReason),未记录 / A value is absent: not recorded")
    if kind == "blood_pressure":
        for code, name in ((SYSTOLIC, "systolic"), (DIASTOLIC, "diastolic")):
            if code not in parts:
                raise MissingElementError(element=f"component[{code}]",
                                          fields=[{"loc": ["component"], "msg": f"{name} ({code}) is required"}])
            attrs[name] = _mm_hg(parts[code], f"component[{code}]")
        if PULSE in parts and parts[PULSE].get("valueQuantity"):
            attrs["pulse"] = _whole(_quantity(parts[PULSE], f"component[{PULSE}]")[0])
    else:
        value, unit = _quantity(obs, "valueQuantity")
        if unit.lower() == "mg/dl":
            attrs["glucose_mmol_l"] = round(value / MG_DL_PER_MMOL_L, 1)  # as engagement.health converts
        elif unit.lower() == "mmol/l":
            attrs["glucose_mmol_l"] = round(value, 2)
        else:
            raise UnitError(element="valueQuantity", fields=[{"loc": ["valueQuantity"], "msg": "mg/dL or mmol/L"}])
    at = _when(obs, tz, "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued")
    return Draft("health.measurement", at, attrs, obs.get("subject"), obs.get("contained") or [])


# --- Appointment ------------------------------------------------------------------------

def appointment_patient(appt: Json) -> Json | None:
    """The participant whose actor references a Patient (by type or reference); failing
    that, an actor naming a Bundle entry (`urn:uuid:`) or a contained resource."""
    actors: list[Json] = [p["actor"] for p in appt.get("participant") or []
              if isinstance(p, dict) and isinstance(p.get("actor"), dict)]
    for actor in actors:
        ref = str(actor.get("reference") or "")
        if actor.get("type") == "Patient" or re.search(r"(^|/)Patient(/|\?)", ref):
            return actor
    return next((a for a in actors if str(a.get("reference") or "").startswith(("urn:uuid:", "#"))
                 and a.get("type") in (None, "Patient")), None)


def cancelled_by(appt: Json) -> str:
    codes = _all_codes(appt.get("cancelationReason"))
    return "hospital" if codes & HOSPITAL_CANCELLATION else "patient"


def appointment(appt: Json, tz: ZoneInfo, received: datetime) -> Mapped:
    """fulfilled → attended, noshow → no-show, cancelled → cancelled (by patient or
    hospital), arrived / checked-in → checked in; `received` stands for the moment of a
    change the resource does not date (its meta.lastUpdated when present)."""
    status = _status(appt, APPOINTMENT_STATUS)
    if status == "entered-in-error":
        return Revoke(status)
    kinds = {"fulfilled": "appointment.attended", "noshow": "appointment.no_show",
             "cancelled": "appointment.cancelled", "arrived": "appointment.checked_in",
             "checked-in": "appointment.checked_in"}
    if status not in kinds:
        return Skip("fhir.appointment_status",
                    f"预约状态 {status} 不产生事件 / Appointment status {status} records no event")
    start = instant(appt.get("start"), tz)
    if start is None:
        raise MissingElementError(element="start", fields=[{"loc": ["start"], "msg": "required for this status"}])
    changed = instant((appt.get("meta") or {}).get("lastUpdated"), tz) or received
    attrs: Json = {"appointment_id": str(appt.get("id") or ""), "slot_start": start.isoformat()}
    if not attrs["appointment_id"]:
        raise MissingElementError(element="id", fields=[{"loc": ["id"], "msg": "required"}])
    occurred = start
    if status == "fulfilled":
        booked = instant(appt.get("created"), tz)
        # without Appointment.created the booking time is unknown: taking slot_start pays no book-ahead
        attrs["booked_at"] = (booked if booked is not None and booked <= start else start).isoformat()
    elif status == "cancelled":
        attrs["cancelled_at"] = min(changed, received).isoformat()
        attrs["by"] = cancelled_by(appt)
        occurred = min(changed, received)
    elif status in ("arrived", "checked-in"):
        attrs["checked_in_at"] = min(changed, received).isoformat()
        occurred = min(changed, received)
    return Draft(kinds[status], occurred, attrs, appointment_patient(appt), appt.get("contained") or [])


# --- QuestionnaireResponse ----------------------------------------------------------------

def questionnaire_response(qr: Json, tz: ZoneInfo) -> Mapped:
    """completed / amended → survey.completed {survey_id: the Questionnaire's canonical,
    period: the local month it was authored}."""
    status = _status(qr, QR_STATUS)
    if status == "entered-in-error":
        return Revoke(status)
    if status not in ("completed", "amended"):
        return Skip("fhir.response_incomplete", "问卷尚未完成 / The QuestionnaireResponse is not completed")
    at = _when(qr, tz, "authored")
    survey = str(qr.get("questionnaire") or f"QuestionnaireResponse/{qr.get('id') or ''}")[:200]
    attrs = {"survey_id": survey, "period": at.astimezone(tz).strftime("%Y-%m")}
    patient = qr.get("subject")
    if not patient and str((qr.get("source") or {}).get("reference") or "").startswith("Patient/"):
        patient = qr.get("source")
    return Draft("survey.completed", at, attrs, patient, qr.get("contained") or [])


# --- Encounter -----------------------------------------------------------------------------

def encounter(enc: Json, tz: ZoneInfo) -> Mapped:
    """A finished inpatient stay (class IMP / ACUTE / NONAC, or a discharge disposition) →
    encounter.discharged {encounter_id, discharged_at: period.end, disposition?}; cancelled or
    entered-in-error revokes; other Encounters (visits, an undated discharge) are acknowledged."""
    status = _status(enc, ENCOUNTER_STATUS)
    if status in REVOKING:
        return Revoke(status)
    cls = enc.get("class") or {}
    hospitalization = enc.get("hospitalization") or {}
    disposition = hospitalization.get("dischargeDisposition") if isinstance(hospitalization, dict) else None
    inpatient = (cls.get("code") in ("IMP", "ACUTE", "NONAC") if isinstance(cls, dict) else False) or bool(
        disposition)
    if status != "finished" or not inpatient:
        return Skip("fhir.encounter_not_scored", "就诊记录不产生事件 / Encounters record no event")
    period = enc.get("period") or {}
    at = instant(period.get("end") if isinstance(period, dict) else None, tz)
    if at is None:
        return Skip("fhir.discharge_undated",
                    "出院记录缺少出院时间(period.end),未记录 / The discharge has no period.end: not recorded")
    attrs: Json = {"encounter_id": str(enc.get("id") or "")[:200] or "unknown", "discharged_at": at.isoformat()}
    codes = sorted(_all_codes(disposition))
    if codes:
        attrs["disposition"] = codes[0][:100]
    return Draft("encounter.discharged", at, attrs, enc.get("subject"), enc.get("contained") or [])
