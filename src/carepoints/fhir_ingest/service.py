"""FHIR ingest use cases: one resource, or a batch / transaction Bundle with batch
semantics (each entry in its own savepoint: it succeeds or fails alone).

Events are keyed on the resource: source `fhir` (or `fhir:<meta.source>`),
source_event_id `<Type>/<id>/_history/<revision>`. `fhir_resources` remembers each
resource's content hash and revision: the same content again re-ingests the same
event (a duplicate, no double points); new content (a new meta.versionId or a
changed body) revokes the previous revision's event and ingests the new one;
cancelled / entered-in-error revokes. Patient entries are processed first, so the
other entries of the Bundle can name them by fullUrl."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.events import service as events
from carepoints.fhir_ingest import mapping
from carepoints.fhir_ingest.errors import (
    BundleRequiredError,
    BundleTooLargeError,
    FhirInvalidError,
    MethodNotSupportedError,
    TypeMismatchError,
)
from carepoints.fhir_ingest.mapping import Draft, Json, Revoke, Skip
from carepoints.fhir_ingest.models import FhirResource
from carepoints.fhir_ingest.people import Context, ingest_patient, resolve
from carepoints.kit.bulk import insert_new, savepoint
from carepoints.kit.db import is_postgres, table
from carepoints.kit.errors import AppError, PermissionDeniedError

SUPPORTED = ("Observation", "Appointment", "QuestionnaireResponse", "Encounter", "Patient")
_resources = table(FhirResource)


@dataclass(slots=True)
class Result:
    """One entry's answer: HTTP status, where the resource went, and issues
    (severity, code, carepoints code, text)."""

    status: int
    location: str | None = None
    issues: list[tuple[str, str, str, str]] = field(default_factory=list)
    outcome: dict[str, Any] | None = None

    def info(self, code: str, text: str) -> Result:
        self.issues.append(("information", "informational", code, text))
        return self


def _source(resource: Json) -> str:
    meta = resource.get("meta")
    sender = meta.get("source") if isinstance(meta, dict) else None
    return f"fhir:{sender}"[:100] if isinstance(sender, str) and sender else "fhir"


def _resource_id(resource: Json, full_url: str | None) -> str:
    rid = resource.get("id") or full_url or mapping.content_hash(resource)
    rid = str(rid)
    return rid if len(rid) <= 64 else hashlib.sha256(rid.encode()).hexdigest()[:64]


def validate(resource: Any) -> Json:
    """The resource checked against its R4B model; answers its JSON form."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise FhirInvalidError(fields=[{"loc": ["resourceType"], "msg": "a FHIR resource is required"}])
    try:
        model = get_fhir_model_class(resource["resourceType"])
    except (ValueError, KeyError, AttributeError) as exc:
        raise FhirInvalidError(fields=[{"loc": ["resourceType"], "msg": "unknown resource type"}]) from exc
    try:
        parsed = model.model_validate(resource)
    except (ValidationError, ValueError, TypeError) as exc:
        errors = exc.errors(include_url=False)[:20] if isinstance(exc, ValidationError) else []
        raise FhirInvalidError(fields=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in errors]
                               or [{"loc": [], "msg": "invalid"}]) from exc
    doc: Json = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    return doc


# --- one resource ------------------------------------------------------------------------

def ingest_resource(session: Session, ctx: Context, raw: Json, now: datetime, full_url: str | None = None) -> Result:
    """Ingest one resource (raises AppError); an unsupported type is skipped unread."""
    rtype = raw.get("resourceType") if isinstance(raw, dict) else None
    if isinstance(rtype, str) and rtype not in SUPPORTED:
        return Result(200).info("fhir.unsupported", f"不处理 {rtype[:40]} 资源,已跳过 / {rtype[:40]} is not "
                                                    "ingested: skipped")
    doc = validate(raw)
    rtype = doc["resourceType"]
    if rtype == "Patient":
        created, pid = ingest_patient(session, ctx, doc, _source(doc), now)
        for key in (full_url, f"Patient/{doc['id']}" if doc.get("id") else None):
            if key:
                ctx.local[key] = pid
        result = Result(201 if created else 200, location=f"Patient/{pid}")
        return result.info("fhir.patient_enrolled" if created else "fhir.patient_matched",
                           "已注册患者 / Patient enrolled" if created else "已匹配患者 / Patient matched")
    source, rid = _source(doc), _resource_id(raw, full_url)
    digest = mapping.content_hash(raw)
    row = _row(session, source, rtype, rid)
    same = row is not None and row["content_hash"] == digest
    received = row["received_at"] if same and row is not None else now
    if rtype == "Observation":
        mapped = mapping.observation(doc, ctx.tz)
    elif rtype == "Appointment":
        mapped = mapping.appointment(doc, ctx.tz, received)
    elif rtype == "QuestionnaireResponse":
        mapped = mapping.questionnaire_response(doc, ctx.tz)
    else:
        mapped = mapping.encounter(doc, ctx.tz)
    if isinstance(mapped, Skip):
        return Result(200).info(mapped.code, mapped.message)
    if isinstance(mapped, Revoke):
        return _revoke(session, ctx, row, (source, rtype, rid), digest, doc, now)
    return _ingest(session, ctx, mapped, row, (source, rtype, rid), digest, doc, now)


def _row(session: Session, source: str, rtype: str, rid: str) -> Any:
    stmt = select(_resources).where(_resources.c.source == source, _resources.c.resource_type == rtype,
                                    _resources.c.resource_id == rid)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    return session.connection().execute(stmt).mappings().first()


def _save(session: Session, row: Any, key: tuple[str, str, str], *, revision: int, digest: str, doc: Json,
          event_key: str | None, status: str, now: datetime) -> None:
    meta = doc.get("meta") or {}
    values = {"version": str(meta.get("versionId"))[:64] if meta.get("versionId") else None, "revision": revision,
              "content_hash": digest, "event_source_key": event_key, "status": status, "updated_at": now}
    conn = session.connection()
    if row is None:
        # one statement, so that a concurrent first sight of the same resource cannot fail the entry
        insert_new(conn, _resources, {"source": key[0], "resource_type": key[1], "resource_id": key[2],
                                      "received_at": now, **values}, ("source", "resource_type", "resource_id"))
    else:
        conn.execute(update(_resources).where(
            _resources.c.source == key[0], _resources.c.resource_type == key[1],
            _resources.c.resource_id == key[2]).values(received_at=now, **values))


def _revoke_previous(session: Session, ctx: Context, row: Any, reason: str, now: datetime) -> dict[str, Any] | None:
    if row is None or row["status"] != "accepted" or not row["event_source_key"]:
        return None
    if not ctx.can_revoke:
        raise PermissionDeniedError(permission="events:revoke")
    return events.revoke(session, now=now, reason=reason, source=row["source"],
                         source_event_id=row["event_source_key"])


def _revoke(session: Session, ctx: Context, row: Any, key: tuple[str, str, str], digest: str, doc: Json,
            now: datetime) -> Result:
    if row is not None and row["content_hash"] == digest:
        return Result(200).info("fhir.duplicate", "重复提交,未作更改 / Resent: nothing changed")
    revoked = _revoke_previous(session, ctx, row, f"fhir:{doc.get('status')}", now)
    _save(session, row, key, revision=(row["revision"] + 1) if row is not None else 1, digest=digest, doc=doc,
          event_key=None, status="revoked", now=now)
    if revoked is None:
        return Result(200).info("fhir.nothing_to_revoke",
                                "该资源此前未产生事件 / No earlier event of this resource to revoke")
    result = Result(200, outcome=revoked)
    points = sum(r["points"] for r in revoked.get("reversed", []))
    return result.info("fhir.revoked", f"已撤销事件 {revoked['event_id']}({points} 积分)/ "
                                       f"Event {revoked['event_id']} revoked ({points} points)")


def _ingest(session: Session, ctx: Context, draft: Draft, row: Any, key: tuple[str, str, str], digest: str,
            doc: Json, now: datetime) -> Result:
    pid = resolve(session, ctx, draft.patient, draft.contained)
    same = row is not None and row["content_hash"] == digest and row["event_source_key"]
    if same:
        revision = int(row["revision"])
    else:
        if row is not None and row["content_hash"] == digest:  # resent after it was revoked
            return Result(200).info("fhir.duplicate", "重复提交,未作更改 / Resent: nothing changed")
        _revoke_previous(session, ctx, row, "fhir:new_version", now)
        revision = int(row["revision"]) + 1 if row is not None else 1
    event_key = f"{key[1]}/{key[2]}/_history/{revision}"
    result = events.ingest(session, [{
        "type": draft.type, "patient": {"id": pid}, "occurred_at": draft.occurred_at.isoformat(),
        "source": key[0], "source_event_id": event_key, "attributes": draft.attributes}], now)[0]
    if isinstance(result, AppError):
        raise result
    if not same:
        _save(session, row, key, revision=revision, digest=digest, doc=doc, event_key=event_key, status="accepted",
              now=now)
    status = 201 if row is None else 200
    out = Result(status, location=f"{key[1]}/{key[2]}/_history/{revision}", outcome=result)
    points = sum(a["points"] for a in result.get("awards", []))
    if result.get("duplicate"):
        return out.info("fhir.duplicate", f"重复提交,事件 {result['event_id']} 不变 / Resent: event "
                                          f"{result['event_id']} unchanged")
    text = f"事件 {result['event_id']}:{points} 积分 / Event {result['event_id']}: {points} points"
    out.info("fhir.updated" if row is not None else "fhir.created", text)
    for notice in result.get("notices", []):
        out.info(notice["code"], notice["message"])
    return out


# --- Bundles -------------------------------------------------------------------------------

def check_bundle(doc: Any) -> list[Any]:
    """The entries of a batch or transaction Bundle (anything else: 400 / 413 / 422)."""
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        validate(doc)  # an invalid resource is a 422 with its errors
        raise BundleRequiredError()
    if doc.get("type") not in ("batch", "transaction"):
        raise BundleRequiredError()
    entries = doc.get("entry") or []
    if not isinstance(entries, list):
        raise FhirInvalidError(fields=[{"loc": ["entry"], "msg": "must be a list"}])
    limit = get_settings().fhir_max_bundle_entries
    if len(entries) > limit:
        raise BundleTooLargeError(limit=limit)
    return entries


def _entry(session: Session, ctx: Context, entry: Any, now: datetime) -> Result:
    if not isinstance(entry, dict):
        raise FhirInvalidError(fields=[{"loc": ["entry"], "msg": "an entry is an object"}])
    request = entry.get("request")
    method = str((request.get("method") if isinstance(request, dict) else None) or "POST").upper()
    resource = entry.get("resource")
    if method not in ("POST", "PUT") or resource is None:
        raise MethodNotSupportedError()
    full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
    return ingest_resource(session, ctx, resource, now, full_url)


def process_bundle(session: Session, ctx: Context, doc: Json, now: datetime) -> list[Result]:
    """Every entry in its own savepoint, Patients first; answers one Result per entry
    in the Bundle's order."""
    entries = check_bundle(doc)
    for entry in entries:  # the Bundle's Patients, for references by fullUrl before they are processed
        res = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(res, dict) and res.get("resourceType") == "Patient":
            if isinstance(entry.get("fullUrl"), str):
                ctx.carried[entry["fullUrl"]] = res
            if isinstance(res.get("id"), str):
                ctx.carried[f"Patient/{res['id']}"] = res

    def is_patient(i: int) -> bool:
        e = entries[i]
        return isinstance(e, dict) and isinstance(e.get("resource"), dict) and \
            e["resource"].get("resourceType") == "Patient"

    order = sorted(range(len(entries)), key=lambda i: (not is_patient(i), i))
    results: dict[int, Result] = {}
    for i in order:
        try:
            with savepoint(session.connection(), "cp_fhir_entry"):
                results[i] = _entry(session, ctx, entries[i], now)
        except AppError as exc:
            results[i] = error_result(exc)
    return [results[i] for i in range(len(entries))]


def error_result(exc: AppError) -> Result:
    text = exc.detail
    if exc.fields:
        text += " — " + "; ".join(f"{'.'.join(str(x) for x in f.get('loc', []))}: {f.get('msg', '')}"
                                  for f in exc.fields[:10])
    return Result(exc.status_code, issues=[("error", _ISSUE.get(exc.status_code, "processing"), exc.code, text)])


_ISSUE = {400: "invalid", 403: "forbidden", 404: "not-found", 405: "not-supported", 409: "conflict",
          413: "too-costly", 422: "invalid"}


def expect_type(raw: Any, rtype: str) -> None:
    if isinstance(raw, dict) and raw.get("resourceType") not in (None, rtype):
        raise TypeMismatchError()
