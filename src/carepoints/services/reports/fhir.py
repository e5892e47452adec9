"""FHIR DiagnosticReports (R4B, validated with fhir.resources) → reports: the report with its
contained Observations (`result` → `#id`) or, in a Bundle, the Observations it names by fullUrl or
`Observation/<id>`. Statuses are checked here (fhir.resources does not check codes). Patients are
resolved as the FHIR ingest resolves them (Bundle entry, contained, identifier, Patient/<id>)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from carepoints.events.schemas import PatientRef
from carepoints.fhir_ingest import mapping
from carepoints.fhir_ingest import service as ingest
from carepoints.fhir_ingest.errors import FhirInvalidError
from carepoints.fhir_ingest.people import Context, resolve
from carepoints.kit.bulk import savepoint
from carepoints.kit.errors import AppError
from carepoints.services.reports import service
from carepoints.services.reports.flags import FHIR_CODES
from carepoints.services.reports.schemas import Category, Flag, ReportIn, ReportStatus, ResultIn

Json = dict[str, Any]
_IMAGING = frozenset({"RAD", "CT", "MR", "NMR", "NMS", "RX", "US", "VUS", "OUS", "CUS", "XRC", "CTH", "RUS",
                      "imaging", "LP29684-5"})
_LAB = frozenset({"LAB", "HM", "CH", "MB", "SR", "SP", "CP", "HLA", "BLB", "MCB", "MYC", "OSL", "PAT", "PHY",
                  "SC", "TX", "VR", "laboratory", "LP7839-6"})


def _invalid(loc: str, msg: str) -> FhirInvalidError:
    return FhirInvalidError(fields=[{"loc": [loc], "msg": msg}])


def _concept(value: Any, loc: str) -> tuple[str, str | None, str]:
    """(code, system, display) of a CodeableConcept."""
    codings = [c for c in (value or {}).get("coding") or [] if isinstance(c, dict) and c.get("code")]
    if not codings:
        raise _invalid(loc, "a coded value is required")
    first = codings[0]
    display = (value or {}).get("text") or first.get("display") or first["code"]
    return str(first["code"])[:64], first.get("system"), str(display)[:200]


def _category(doc: Json) -> Category:
    codes = {str(c.get("code")) for cat in doc.get("category") or [] for c in cat.get("coding") or []}
    if codes & _IMAGING:
        return Category.imaging
    return Category.lab if codes & _LAB else Category.other


def _flag(obs: Json) -> Flag | None:
    codes = [str(c.get("code")) for i in obs.get("interpretation") or [] for c in i.get("coding") or []]
    return (FHIR_CODES.get(codes[0], Flag.abnormal)) if codes else None


def _result(obs: Json, loc: str) -> ResultIn:
    code, _system, display = _concept(obs.get("code"), f"{loc}.code")
    value: float | str | None = None
    unit = None
    if isinstance(obs.get("valueQuantity"), dict):
        value = obs["valueQuantity"].get("value")
        unit = obs["valueQuantity"].get("unit") or obs["valueQuantity"].get("code")
    elif isinstance(obs.get("valueString"), str):
        value = obs["valueString"]
    elif isinstance(obs.get("valueCodeableConcept"), dict):
        vc = obs["valueCodeableConcept"]
        value = vc.get("text") or next((c.get("display") for c in vc.get("coding") or []), None)
    rng = (obs.get("referenceRange") or [{}])[0]
    try:
        return ResultIn(code=code, display=display, value=value, unit=str(unit)[:40] if unit else None,
                        range_low=(rng.get("low") or {}).get("value"), range_high=(rng.get("high") or {}).get("value"),
                        range_text=str(rng["text"])[:200] if rng.get("text") else None, flag=_flag(obs))
    except ValueError as exc:
        raise _invalid(loc, str(exc)[:200]) from exc


def to_report(doc: Json, observations: dict[str, Json], pid: str) -> ReportIn:
    """The validated DiagnosticReport `doc` as a report of `pid`; `observations` are the
    Bundle's, by fullUrl and `Observation/<id>`."""
    status = doc.get("status")
    if status not in {s.value for s in ReportStatus} | {"partial"}:
        raise _invalid("status", "registered, partial, preliminary, final, amended, corrected, cancelled or "
                                 "entered-in-error")
    if status == "partial":
        status = "preliminary"
    code, system, display = _concept(doc.get("code"), "code")
    issued = doc.get("issued") or doc.get("effectiveDateTime") or (doc.get("effectivePeriod") or {}).get("end")
    if not issued:
        raise _invalid("issued", "issued or effectiveDateTime is required")
    contained = {f"#{c['id']}": c for c in doc.get("contained") or [] if c.get("resourceType") == "Observation"}
    results = []
    for i, ref in enumerate(doc.get("result") or []):
        key = ref.get("reference", "")
        obs = contained.get(key) or observations.get(key)
        if obs is None:
            raise _invalid(f"result.{i}", "the Observation is neither contained nor in the Bundle")
        results.append(_result(obs, f"result.{i}"))
    performer = next((p.get("display") for p in doc.get("performer") or [] if p.get("display")), None)
    meta = doc.get("meta") or {}
    source = f"fhir:{meta['source']}"[:100] if meta.get("source") else "fhir"
    try:
        return ReportIn(patient=PatientRef(id=pid), source=source.replace("/", ":").replace(" ", "_"),
                        source_id=f"DiagnosticReport/{doc.get('id') or mapping.content_hash(doc)}"[:200],
                        category=_category(doc), code=code, code_system=system, display=display,
                        status=ReportStatus(status), issued_at=issued, conclusion=doc.get("conclusion"),
                        performer=str(performer)[:200] if performer else None, results=results)
    except ValueError as exc:
        raise _invalid("DiagnosticReport", str(exc)[:300]) from exc


def ingest_report(session: Session, ctx: Context, raw: Any, now: datetime,
                  observations: dict[str, Json] | None = None) -> ingest.Result:
    """One DiagnosticReport (raises AppError: 4xx as OperationOutcome); 201 a new report, 200 the
    same again or a new version."""
    doc = ingest.validate(raw)
    if doc["resourceType"] != "DiagnosticReport":
        raise _invalid("resourceType", "a DiagnosticReport is required")
    contained = [c for c in doc.get("contained") or [] if isinstance(c, dict)]
    pid = resolve(session, ctx, doc.get("subject"), contained)
    data = to_report(doc, observations or {}, pid)
    stored, status = service.ingest(session, data, ctx.actor, now, pid=pid)
    result = ingest.Result(status, location=f"DiagnosticReport/{stored['id']}/_history/{stored['version']}")
    code = "reports.created" if status == 201 else "reports.stored"
    text = (f"报告已保存(第 {stored['version']} 版)/ Report stored (version {stored['version']})"
            + (";含危急结果,已通知医护 / critical result: the care team is alerted" if stored["held"] else ""))
    return result.info(code, text)


def ingest_bundle_reports(session: Session, ctx: Context, doc: Json, results: list[ingest.Result],
                          now: datetime) -> list[ingest.Result]:
    """After the FHIR ingest processed a Bundle (DiagnosticReports skipped there): each
    DiagnosticReport entry in its own savepoint, with the Bundle's Observations."""
    entries = doc.get("entry") or []
    observations: dict[str, Json] = {}
    for e in entries:
        res = e.get("resource") if isinstance(e, dict) else None
        if isinstance(res, dict) and res.get("resourceType") == "Observation":
            if isinstance(e.get("fullUrl"), str):
                observations[e["fullUrl"]] = res
            if isinstance(res.get("id"), str):
                observations[f"Observation/{res['id']}"] = res
    out = list(results)
    for i, e in enumerate(entries):
        res = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(res, dict) or res.get("resourceType") != "DiagnosticReport":
            continue
        try:
            with savepoint(session.connection(), "cp_fhir_report"):
                out[i] = ingest_report(session, ctx, res, now, observations)
        except AppError as exc:
            out[i] = ingest.error_result(exc)
    return out
