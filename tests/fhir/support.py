"""Helpers for the FHIR ingest tests: the test corpus, resource builders, and reads of
the stored events (ids, types, attributes)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select

from carepoints.events.models import Event
from carepoints.kit.db import read_tx

if TYPE_CHECKING:
    from tests.api_client import Api

DATA = Path("/work/shared/testdata/fhir")
EXAMPLES = DATA / "examples"
SYNTHEA = DATA / "synthea"
INGESTED = ("Observation", "Appointment", "QuestionnaireResponse", "Encounter", "Patient")


def load(path: Path | str) -> dict[str, Any]:
    p = Path(path)
    return dict(json.loads((p if p.is_absolute() else EXAMPLES / p).read_text()))


def post(api: Api, doc: Any, path: str | None = None, key: str | None = None) -> httpx.Response:
    """POST a resource where it belongs: Bundles and other types to /fhir, the ingested
    types to /fhir/<Type>."""
    if path is None:
        rtype = doc.get("resourceType") if isinstance(doc, dict) else None
        path = f"/fhir/{rtype}" if rtype in INGESTED else "/fhir"
    return api.client.post(path, json=doc, headers=api.headers(key))


def codes(body: dict[str, Any]) -> list[str]:
    """The carepoints codes of an OperationOutcome."""
    return [i.get("diagnostics", "") for i in body.get("issue", [])]


def entry_codes(entry: dict[str, Any]) -> list[str]:
    return codes(entry["response"]["outcome"])


def events_of(source_event_prefix: str | None = None, patient_id: str | None = None) -> list[dict[str, Any]]:
    """Stored events, oldest key first: FHIR ones by source key prefix or by patient."""
    with read_tx() as session:
        stmt = select(Event.id, Event.type, Event.patient_id, Event.source, Event.source_event_id, Event.status,
                      Event.attributes, Event.occurred_at)
        if source_event_prefix is not None:
            stmt = stmt.where(Event.source_event_id.startswith(source_event_prefix))
        if patient_id is not None:
            stmt = stmt.where(Event.patient_id == patient_id)
        rows = session.connection().execute(stmt.order_by(Event.source_event_id)).mappings().all()
    return [dict(r) for r in rows]


def patient(name: str = "张三丰", phone: str = "13800138000", pid: str = "p1", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Patient", "id": pid,
        "identifier": [{"system": "urn:oid:1.2.156.112606.1.2", "value": f"MRN-{pid}"}],
        "name": [{"use": "official", "family": name[0], "given": [name[1:]]}],
        "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
        "gender": "male", "birthDate": "1950-03-01"}
    doc.update(extra)
    return doc


def bp(at: datetime, systolic: int = 128, diastolic: int = 82, oid: str = "bp1", subject: str = "Patient/p1",
       **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Observation", "id": oid, "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "subject": {"reference": subject}, "effectiveDateTime": at.isoformat(),
        "device": {"display": "home blood pressure monitor"},
        "component": bp_components(systolic, diastolic)}
    doc.update(extra)
    return doc


def enrol_fhir(api: Api, **extra: Any) -> str:
    """Enrol a patient through POST /fhir/Patient; their carepoints id."""
    r = post(api, patient(**extra))
    assert r.status_code == 201, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def bp_components(systolic: float, diastolic: float) -> list[dict[str, Any]]:
    """The systolic and diastolic components of a blood-pressure panel, in mmHg."""
    return [{"code": {"coding": [{"system": "http://loinc.org", "code": code}]},
             "valueQuantity": {"value": value, "unit": "mmHg", "code": "mm[Hg]"}}
            for code, value in (("8480-6", systolic), ("8462-4", diastolic))]
