"""FHIR R4 endpoints under /fhir (application/fhir+json). Errors are answered as
OperationOutcome with the same HTTP status and the error code in `diagnostics`."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from starlette.concurrency import run_in_threadpool

from carepoints import __version__
from carepoints.config import get_settings
from carepoints.fhir_ingest import service as ingest
from carepoints.fhir_ingest.errors import BodyTooLargeError
from carepoints.fhir_ingest.people import Context
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import ValidationFailedError
from carepoints.kit.time import utc_now
from carepoints.kit.web import error_surface
from carepoints.scheduling import fhir as scheduling
from carepoints.security.deps import require
from carepoints.security.service import Principal
from carepoints.services.reports import fhir as reports

MEDIA = "application/fhir+json"
router = APIRouter(prefix="/fhir", tags=["fhir"])


class FHIR(Response):
    media_type = MEDIA

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


_ISSUE = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported", 409: "conflict",
          413: "too-costly", 422: "invalid"}


def outcome(body: dict[str, Any], status: int, headers: dict[str, str] | None,
            request: Request | None = None) -> Response:
    """An error as OperationOutcome (kit.web renders every /fhir error through this)."""
    issue: dict[str, Any] = {"severity": "error", "code": _ISSUE.get(status, "exception"),
                             "details": {"text": body.get("detail", "")}, "diagnostics": body.get("error", "")}
    locs = [".".join(str(x) for x in f.get("loc", []) if x != "body") for f in body.get("fields") or []]
    if any(locs):
        issue["expression"] = [loc for loc in locs if loc]
        issue["details"]["text"] += " — " + "; ".join(str(f.get("msg", "")) for f in body.get("fields") or [])
    doc = OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": [issue]})
    return FHIR(doc.model_dump(mode="json", by_alias=True, exclude_none=True), status_code=status, headers=headers)


error_surface("/fhir", outcome)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


@router.get("/metadata")
def metadata(request: Request) -> FHIR:
    """CapabilityStatement: what this server does (unauthenticated, as FHIR clients expect)."""
    search = {"Schedule": [("actor", "reference")],
              "Slot": [("schedule", "reference"), ("status", "token"), ("start", "date"), ("_count", "number")]}
    resources = [{"type": t, "interaction": [{"code": "search-type"}],
                  "searchParam": [{"name": n, "type": k} for n, k in search[t]]} for t in search]
    resources.append({"type": "Appointment", "interaction": [{"code": "read"}, {"code": "create"}],
                      "operation": [{"name": "book",
                                     "definition": "urn:carepoints:OperationDefinition/Appointment-book"}],
                      "documentation": "create = ingest of a status change from the HIS: fulfilled → "
                                       "appointment.attended, noshow → appointment.no_show, cancelled → "
                                       "appointment.cancelled (by hospital for cancelationReason prov*, maint, "
                                       "meds-inc, oth-cms, oth-err, oth-room, oth-oerr, oth-swie, oth-int, oth-mu; "
                                       "else by patient), arrived / checked-in → appointment.checked_in; "
                                       "entered-in-error revokes; other statuses are information only."})
    resources.extend({"type": t, "interaction": [{"code": "create"}], "documentation": note}
                     for t, note in _INGESTED.items())
    doc = {"resourceType": "CapabilityStatement", "status": "active", "date": utc_now().date().isoformat(),
           "kind": "instance", "fhirVersion": "4.0.1", "format": [MEDIA, "json"],
           "software": {"name": "carepoints", "version": __version__},
           "implementation": {"description": "carepoints scheduling (预约挂号) over FHIR R4", "url": _base(request)},
           "rest": [{"mode": "server", "resource": resources,
                     "interaction": [{"code": "batch"}, {"code": "transaction"}],
                     "documentation": "Slot.status free means bookable now; Slot.comment names its pool "
                                      "(online, onsite, referral). $book takes a Parameters resource (an "
                                      "`appointment` part, or `slot` and `patient` references, optional "
                                      "`channel` and `referral-id`) or an Appointment naming one Slot and one "
                                      "Patient. Errors are OperationOutcome. " + _INGEST_NOTE}]}
    return FHIR(CapabilityStatement.model_validate(doc).model_dump(mode="json", by_alias=True, exclude_none=True))


@router.get("/Schedule")
def search_schedules(request: Request, actor: str | None = Query(None, max_length=200),
                     _p: Principal = Depends(require("schedule:read"))) -> FHIR:
    """Schedules: one per clinician (Practitioner) and exam resource (Device)."""
    with read_tx() as session:
        return FHIR(scheduling.schedules(session, _base(request), actor))


@router.get("/Slot")
def search_slots(request: Request, schedule: str | None = Query(None, max_length=200),
                 status: list[str] = Query([], max_length=4), start: list[str] = Query([], max_length=4),
                 count: int = Query(100, alias="_count", ge=1, le=500),
                 _p: Principal = Depends(require("schedule:read"))) -> FHIR:
    """Slots of released sessions, by schedule, status (free, busy, busy-tentative,
    busy-unavailable) and start (ge/gt/le/lt/eq, repeatable)."""
    statuses = [s for value in status for s in value.split(",") if s]
    with read_tx() as session:
        return FHIR(scheduling.slots(session, _base(request), utc_now(), schedule=schedule, status=statuses,
                                     start=start, count=count))


@router.post("/Appointment/$book", status_code=201, responses={200: {"description": "the same booking again"}})
async def book(request: Request, _p: Principal = Depends(require("appointments:write"))) -> FHIR:
    """Book a free Slot for a Patient (Parameters or Appointment); answers the Appointment."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ValidationFailedError("请求不是有效的JSON / The body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise ValidationFailedError("请求须为FHIR资源 / The body must be a FHIR resource")
    key = request.headers.get("x-idempotency-key")

    def run() -> tuple[dict[str, Any], bool]:
        with write_tx() as session:
            return scheduling.book(session, body, utc_now(), key)

    doc, created = await run_in_threadpool(run)
    return FHIR(doc, status_code=201 if created else 200,
                headers={"Location": f"{_base(request)}/Appointment/{doc['id']}"})


@router.get("/Appointment/{appointment_id}")
def read_appointment(appointment_id: str, _p: Principal = Depends(require("appointments:read"))) -> FHIR:
    """One Appointment (status booked, checked-in, fulfilled, cancelled or noshow)."""
    with read_tx() as session:
        return FHIR(scheduling.appointment(session, appointment_id))


# --- ingest (carepoints.fhir_ingest) ---------------------------------------------------------

_INGEST_NOTE = (
    "Ingest, not a store: POST [base] takes a batch or transaction Bundle, processed with batch semantics even "
    "for transactions (each entry succeeds or fails alone; Patient entries first) and answered with a "
    "batch-response / transaction-response Bundle, one entry per input entry: response.status 201 Created "
    "(an event or patient was created), 200 OK (duplicate, new version, skipped or information only), 4xx with "
    "response.outcome (403 no permission, 404 patients.not_found, 405 a GET/DELETE entry, 409 conflict, "
    "422 invalid); response.location names the resource version (`<Type>/<id>/_history/<n>`) or the "
    "carepoints Patient. Unsupported resource types are skipped with an information issue. Events are keyed "
    "on (fhir[:meta.source], <Type>/<id>/_history/<n>): the same content again is a duplicate; new content "
    "(meta.versionId or body) revokes the previous version's event; cancelled / entered-in-error revokes. "
    "Patients are named by a Bundle fullUrl, a contained Patient, an identifier (conditional or logical) or "
    "Patient/<id> (the FHIR id kept at enrolment); unknown Patients are enrolled (consent source institution) "
    "when the key holds patients:enrol. Limits: body size and entries per Bundle (413).")
_INGESTED = {
    "Observation": "Blood pressure (LOINC 85354-9, 55284-4; components 8480-6, 8462-4, pulse 8867-4) and glucose "
                   "(2339-0, 2345-7, 15074-8, 14749-6; mg/dL ÷ 18 to mmol/L) → health.measurement; provenance "
                   "device (Observation.device), self_reported (performed by the Patient), else clinic. final / "
                   "amended / corrected ingest; preliminary / registered skip; cancelled / entered-in-error revoke.",
    "QuestionnaireResponse": "completed / amended → survey.completed {survey_id: the questionnaire canonical, "
                             "period: local month of authored}; entered-in-error revokes.",
    "Encounter": "A finished inpatient stay (class IMP/ACUTE/NONAC or a dischargeDisposition) with period.end "
                 "becomes encounter.discharged; entered-in-error or cancelled revokes it; other Encounters are "
                 "acknowledged.",
    "DiagnosticReport": "(services.reports) final / amended / corrected reports with contained or Bundle "
                        "Observations (value, unit, referenceRange, interpretation) → a patient report, keyed on "
                        "(fhir[:meta.source], DiagnosticReport/<id>): the same content is a duplicate, a later "
                        "status a new version, other new content 409; a critical result (HH, LL, AA) is held "
                        "from the patient and opens a critical care alert. Needs diagnostic_reports:write.",
    "Patient": "Matched by identifier or enrolled (patients:enrol); deceased → status deceased (earns nothing, "
               "no messages).",
}
_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large", 422: "Unprocessable Entity"}


async def _read_body(request: Request) -> Any:
    limit = get_settings().fhir_max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(limit=limit)
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise ValidationFailedError("请求不是有效的JSON / The body is not valid JSON") from exc


def _context(principal: Principal) -> Context:
    settings = get_settings()
    return Context(actor=principal.actor(), can_enrol=principal.can("patients:enrol"),
                   can_revoke=principal.can("events:revoke"), tz=settings.tz,
                   id_system=settings.fhir_patient_id_system)


def _outcome(result: ingest.Result) -> dict[str, Any]:
    issues = [{"severity": sev, "code": code, "diagnostics": cp,
               "details": {"coding": [{"system": "urn:carepoints:codes", "code": cp}], "text": text}}
              for sev, code, cp, text in result.issues] or [
        {"severity": "information", "code": "informational", "diagnostics": "ok"}]
    return {"resourceType": "OperationOutcome", "issue": issues}


@router.post("", status_code=200)
async def post_bundle(request: Request, principal: Principal = Depends(require("events:write"))) -> FHIR:
    """Ingest a batch or transaction Bundle (batch semantics); answers a batch-response /
    transaction-response Bundle with one entry per input entry."""
    doc = await _read_body(request)
    ctx = _context(principal)

    def run() -> list[ingest.Result]:
        with write_tx() as session:
            results = ingest.process_bundle(session, ctx, doc, utc_now())
            if principal.can("diagnostic_reports:write"):  # (services.reports) DiagnosticReport entries
                results = reports.ingest_bundle_reports(session, ctx, doc, results, utc_now())
            return results

    results = await run_in_threadpool(run)
    entries = []
    for r in results:
        response: dict[str, Any] = {"status": f"{r.status} {_REASONS.get(r.status, '')}".strip(),
                                    "outcome": _outcome(r)}
        if r.location:
            response["location"] = r.location
        entries.append({"response": response})
    return FHIR({"resourceType": "Bundle", "type": f"{doc['type']}-response", "timestamp": utc_now().isoformat(),
                 "entry": entries})


def _single(resource_type: str) -> Any:
    async def post_resource(request: Request, principal: Principal = Depends(require("events:write"))) -> FHIR:
        doc = await _read_body(request)
        ingest.expect_type(doc, resource_type)
        ctx = _context(principal)

        def run() -> ingest.Result:
            if not isinstance(doc, dict):
                ingest.validate(doc)
            with write_tx() as session:
                return ingest.ingest_resource(session, ctx, doc, utc_now())

        result = await run_in_threadpool(run)
        headers = {"Location": f"{_base(request)}/{result.location}"} if result.location else None
        return FHIR(_outcome(result), status_code=result.status, headers=headers)

    post_resource.__name__ = f"post_{resource_type.lower()}"
    post_resource.__doc__ = (f"Ingest one {resource_type} (201 created, 200 duplicate, new version or information "
                             "only; 4xx OperationOutcome).")
    return post_resource


for _type in ("Observation", "Appointment", "QuestionnaireResponse", "Encounter", "Patient"):
    router.add_api_route(f"/{_type}", _single(_type), methods=["POST"], status_code=201,
                         responses={200: {"description": "duplicate, new version or information only"}})


@router.post("/DiagnosticReport", status_code=201, responses={200: {"description": "duplicate or new version"}})
async def post_diagnostic_report(request: Request,
                                 principal: Principal = Depends(require("diagnostic_reports:write"))) -> FHIR:
    """Ingest one DiagnosticReport with contained Observations (services.reports): 201 created, 200
    the same again or a new version; 4xx OperationOutcome."""
    doc = await _read_body(request)
    ingest.expect_type(doc, "DiagnosticReport")
    ctx = _context(principal)

    def run() -> ingest.Result:
        with write_tx() as session:
            return reports.ingest_report(session, ctx, doc, utc_now())

    result = await run_in_threadpool(run)
    headers = {"Location": f"{_base(request)}/{result.location}"} if result.location else None
    return FHIR(_outcome(result), status_code=result.status, headers=headers)
