"""FHIR R4 views of scheduling: Schedule (one per clinician or resource), Slot,
Appointment, and the `$book` operation. Resources are built as plain documents and
validated with the `fhir.resources` R4B models; coded values the models accept as
any string (statuses) are checked here."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.schedule import Schedule
from fhir.resources.R4B.slot import Slot
from pydantic import ValidationError
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from carepoints.kit.errors import ValidationFailedError
from carepoints.kit.ids import is_id
from carepoints.kit.time import as_utc, day_start_utc
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.scheduling import booking, service
from carepoints.scheduling import repository as repo
from carepoints.scheduling.errors import AppointmentNotFoundError, SlotNotFoundError
from carepoints.scheduling.schemas import AppointmentCreate

SEQ_SYSTEM = "urn:carepoints:slot-seq"
SLOT_STATUSES = frozenset({"free", "busy", "busy-unavailable", "busy-tentative"})
BOOKABLE = frozenset({"proposed", "pending", "booked"})  # statuses a client may send to $book
_STATUS = {"booked": "booked", "checked_in": "checked-in", "attended": "fulfilled", "cancelled": "cancelled",
           "no_show": "noshow"}


def _invalid(msg: str, *loc: str) -> ValidationFailedError:
    return ValidationFailedError(fields=[{"loc": ["body", *loc], "msg": msg}])


def _bundle(resources: list[dict[str, Any]], base: str) -> dict[str, Any]:
    doc = {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
           "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                      "search": {"mode": "match"}} for r in resources]}
    return Bundle.model_validate(doc).model_dump(mode="json", by_alias=True, exclude_none=True)


def _actor_ref(kind: str, actor_id: str, name: str | None = None) -> dict[str, Any]:
    ref = {"reference": f"{'Practitioner' if kind == 'clinician' else 'Device'}/{actor_id}"}
    return ref | ({"display": name} if name else {})


def schedules(session: Session, base: str, actor: str | None = None) -> dict[str, Any]:
    """GET /fhir/Schedule: a Schedule per clinician and resource (id = theirs)."""
    wanted = _ref_id(actor, ("Practitioner", "Device")) if actor else None
    if actor and wanted is None:
        return _bundle([], base)
    out = []
    for row in repo.actors(session.connection(), wanted):
        doc = {"resourceType": "Schedule", "id": row["id"], "active": True,
               "actor": [_actor_ref(row["kind"], row["id"], row["name"])],
               "specialty": [{"text": row["department"]}],
               **({"serviceType": [{"text": row["modality"]}]} if row["modality"] else {})}
        out.append(Schedule.model_validate(doc).model_dump(mode="json", by_alias=True, exclude_none=True))
    return _bundle(out, base)


def _ref_id(value: str | None, types: tuple[str, ...]) -> str | None:
    """The id in "Type/id" (one of `types`) or a bare id; None when malformed."""
    if value is None:
        return None
    kind, _, rest = value.rpartition("/")
    if kind and kind.split("/")[-1] not in types:
        return None
    return rest if is_id(rest) else None


def _slot_status(row: RowMapping, now: datetime) -> str:
    if row["appointment_id"] is not None:
        return "busy"
    if row["held_for"] is not None:
        return "busy-tentative"
    if row["session_status"] != "open" or row["starts_at"] <= now:
        return "busy-unavailable"
    return "free"


def _start_bounds(values: list[str]) -> list[tuple[str, datetime]]:
    """FHIR date search on Slot.start: ge/gt/le/lt/eq prefixes; a date without a time
    stands for that local day."""
    out: list[tuple[str, datetime]] = []
    for raw in values:
        op, text = (raw[:2], raw[2:]) if raw[:2] in ("ge", "gt", "le", "lt", "eq") else ("eq", raw)
        try:
            if len(text) == 10:
                day = datetime.fromisoformat(text).date()
                lo = day_start_utc(day, booking.tz())
                hi = lo + timedelta(days=1)
                at = {"ge": lo, "gt": hi, "lt": lo, "le": hi}.get(op, lo)
                out += [("ge", lo), ("lt", hi)] if op == "eq" else [(op if op != "le" else "lt", at)]
                continue
            at = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise _invalid(f"start: not a FHIR date or dateTime: {raw[:40]}", "start") from exc
        if at.tzinfo is None:
            raise _invalid("start: a dateTime needs a time zone", "start")
        out += [("ge", as_utc(at)), ("le", as_utc(at))] if op == "eq" else [(op, as_utc(at))]
    return out


def slots(session: Session, base: str, now: datetime, *, schedule: str | None, status: list[str],
          start: list[str], count: int) -> dict[str, Any]:
    """GET /fhir/Slot: slots of released sessions, in time order."""
    bad = [s for s in status if s not in SLOT_STATUSES]
    if bad:
        raise _invalid(f"status: unknown slot status {bad[0][:20]}", "status")
    actor = _ref_id(schedule, ("Schedule",)) if schedule else None
    if schedule and actor is None:
        return _bundle([], base)
    rows = repo.published_slots(session.connection(), now, actor, _start_bounds(start),
                                limit=count if not status else 5000)
    out = []
    for row in rows:
        st = _slot_status(row, now)
        if status and st not in status:
            continue
        doc = {"resourceType": "Slot", "id": row["id"],
               "identifier": [{"system": SEQ_SYSTEM, "value": str(row["seq"])}],
               "schedule": {"reference": f"Schedule/{row['actor_id']}"}, "status": st,
               "start": booking.local(row["starts_at"]), "end": booking.local(row["ends_at"]),
               "comment": row["pool"]}
        out.append(Slot.model_validate(doc).model_dump(mode="json", by_alias=True, exclude_none=True))
        if len(out) >= count:
            break
    return _bundle(out, base)


def appointment(session: Session, appointment_id: str) -> dict[str, Any]:
    """GET /fhir/Appointment/{id}."""
    conn = session.connection()
    row = repo.get(conn, repo.appointments, appointment_id) if is_id(appointment_id) else None
    if row is None:
        raise AppointmentNotFoundError()
    kind = "clinician" if row["clinician_id"] else "resource"
    participants = [{"actor": {"reference": f"Patient/{row['patient_id']}"}, "status": "accepted"},
                    {"actor": _actor_ref(kind, row["clinician_id"] or row["resource_id"]), "status": "accepted"}]
    doc = {"resourceType": "Appointment", "id": row["id"], "status": _STATUS[row["status"]],
           "start": booking.local(row["slot_start"]), "end": booking.local(row["slot_end"]),
           "created": booking.local(row["booked_at"]).split("T")[0],
           "slot": [{"reference": f"Slot/{row['slot_id']}"}], "participant": participants,
           "identifier": [{"system": SEQ_SYSTEM, "value": str(row["seq"])}]}
    if row["status"] == "cancelled":
        doc["cancelationReason"] = {"text": f"cancelled by {row['cancelled_by']}"}
    return FhirAppointment.model_validate(doc).model_dump(mode="json", by_alias=True, exclude_none=True)


def book(session: Session, body: dict[str, Any], now: datetime,
         idempotency_key: str | None) -> tuple[dict[str, Any], bool]:
    """POST /fhir/Appointment/$book: a Parameters resource (an `appointment` part holding
    an Appointment, or `slot` and `patient` references) or an Appointment naming a Slot
    and a Patient. Without an idempotency key the same slot and patient again answer the
    same appointment."""
    slot_ref, patient, channel, referral = _book_request(body)
    slot_id = _ref_id(slot_ref, ("Slot",))
    conn = session.connection()
    slot = repo.get(conn, repo.slots, slot_id) if slot_id else None
    if slot is None:
        raise SlotNotFoundError()
    pid = _patient(session, patient)
    data = AppointmentCreate.model_validate({
        "patient_id": pid, "session_id": slot["session_id"], "slot_id": slot["id"],
        "channel": channel or ("onsite" if slot["pool"] == "onsite" else "referral" if referral else "online"),
        "referral_id": referral, "idempotency_key": idempotency_key or f"fhir:{slot['id']}"})
    doc, created = service.book(session, data, now)
    return appointment(session, doc["id"]), created


def _book_request(body: dict[str, Any]) -> tuple[str, dict[str, Any], str | None, str | None]:
    kind = body.get("resourceType")
    try:
        if kind == "Parameters":
            params = Parameters.model_validate(body)
            parts = {p.name: p for p in params.parameter or []}
            channel = parts["channel"].valueCode if "channel" in parts else None
            referral = parts["referral-id"].valueString if "referral-id" in parts else None
            if "appointment" in parts and parts["appointment"].resource is not None:
                slot, patient = _from_appointment(parts["appointment"].resource.model_dump(mode="json", by_alias=True))
                return slot, patient, channel, referral
            if "slot" in parts and "patient" in parts:
                slot_ref = parts["slot"].valueReference
                patient_ref = parts["patient"].valueReference
                if slot_ref is None or patient_ref is None:
                    raise _invalid("slot and patient are references", "parameter")
                return (str(slot_ref.reference or ""), patient_ref.model_dump(mode="json", exclude_none=True),
                        channel, referral)
            raise _invalid("give an appointment part, or slot and patient parts", "parameter")
        if kind == "Appointment":
            slot, patient = _from_appointment(body)
            return slot, patient, None, None
    except ValidationError as exc:
        raise _invalid(f"not a valid FHIR R4 {kind}: {exc.error_count()} problem(s)", "resourceType") from exc
    raise _invalid("resourceType must be Parameters or Appointment", "resourceType")


def _from_appointment(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    appt = FhirAppointment.model_validate(doc)
    if appt.status not in BOOKABLE:
        raise _invalid("status: an Appointment to book is proposed, pending or booked", "status")
    slot = [s.reference for s in appt.slot or [] if s.reference]
    if len(slot) != 1:
        raise _invalid("slot: name exactly one Slot", "slot")
    patients_ = [p.actor for p in appt.participant or []
                 if p.actor is not None and ((p.actor.reference or "").startswith("Patient/")
                                             or p.actor.type == "Patient")]
    if len(patients_) != 1:
        raise _invalid("participant: name exactly one Patient", "participant")
    return str(slot[0]), patients_[0].model_dump(mode="json", exclude_none=True)


def _patient(session: Session, ref: dict[str, Any]) -> str:
    """A Patient reference: "Patient/{id}" or an identifier {system, value} (HIS MRN)."""
    if ref.get("reference"):
        pid = _ref_id(str(ref["reference"]), ("Patient",))
        if pid is None or not patients.exists(session, pid):
            raise PatientNotFoundError()
        return pid
    ident = ref.get("identifier") or {}
    system, value = ident.get("system"), ident.get("value")
    if not system or not value:
        raise _invalid("participant: a Patient reference or identifier", "participant")
    _found, by_ref = patients.resolve(session, [], [(str(system), str(value))])
    pid = by_ref.get((str(system), str(value)))
    if pid is None:
        raise PatientNotFoundError()
    return pid
