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
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import ValidationFailedError
from carepoints.kit.time import utc_now
from carepoints.kit.web import error_surface
from carepoints.scheduling import fhir as scheduling
from carepoints.security.deps import require
from carepoints.security.service import Principal

MEDIA = "application/fhir+json"
router = APIRouter(prefix="/fhir", tags=["fhir"])


class FHIR(Response):
    media_type = MEDIA

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


_ISSUE = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported", 409: "conflict",
          413: "too-costly", 422: "invalid"}


def outcome(body: dict[str, Any], status: int, headers: dict[str, str] | None) -> Response:
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
    resources.append({"type": "Appointment", "interaction": [{"code": "read"}],
                      "operation": [{"name": "book",
                                     "definition": "urn:carepoints:OperationDefinition/Appointment-book"}]})
    doc = {"resourceType": "CapabilityStatement", "status": "active", "date": utc_now().date().isoformat(),
           "kind": "instance", "fhirVersion": "4.0.1", "format": [MEDIA, "json"],
           "software": {"name": "carepoints", "version": __version__},
           "implementation": {"description": "carepoints scheduling (预约挂号) over FHIR R4", "url": _base(request)},
           "rest": [{"mode": "server", "resource": resources,
                     "documentation": "Slot.status free means bookable now; Slot.comment names its pool "
                                      "(online, onsite, referral). $book takes a Parameters resource (an "
                                      "`appointment` part, or `slot` and `patient` references, optional "
                                      "`channel` and `referral-id`) or an Appointment naming one Slot and one "
                                      "Patient. Errors are OperationOutcome."}]}
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
