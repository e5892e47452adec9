"""Request-level audit: one audit row per request of a staff member (reads and
actions alike), per read (GET/HEAD) of an integration key, and per request of
a patient acting as proxy for someone else, written after the response has
been sent so that the caller does not wait for it.

A pure ASGI middleware inside the FastAPI app: the event-ingest fast path
(kit/fastpath.py) sits in front of the app and is never audited per request.
Who called is what `security.deps.require` stored as `request.state.principal`
(Starlette keeps request.state in `scope["state"]`); requests that never got
that far (no or bad credential) leave no row. The row holds ids and codes
only: the route template, the patient and subject ids from the path (or a
`patient_id` query parameter), status, client address and request id — never
bodies, headers or other query values."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carepoints.audit import service as audit
from carepoints.kit.db import write_tx
from carepoints.kit.ids import is_id
from carepoints.kit.time import utc_now

log = logging.getLogger("carepoints.audit")
_READS = frozenset({"GET", "HEAD"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def route_template(scope: Scope) -> str:
    """The matched route's full path template (`/api/v1/patients/{patient_id}`)."""
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    full = getattr(context, "path", None)
    if isinstance(full, str) and full.startswith("/"):
        return full
    path: str = scope.get("path", "")
    relative = getattr(scope.get("route"), "path", None)
    if not isinstance(relative, str):
        return path
    # an included router's route knows its path below the router's prefix only:
    # keep as many leading segments of the request path as the prefix has
    segments = path.rstrip("/").split("/")
    depth = relative.rstrip("/").count("/")
    prefix = "/".join(segments[:len(segments) - depth]) if depth else path.rstrip("/")
    return prefix + relative


def _query_patient(scope: Scope) -> str | None:
    raw = scope.get("query_string", b"")
    if b"patient_id" not in raw:
        return None
    values = parse_qs(raw.decode("latin-1")).get("patient_id") or []
    return values[0] if values and is_id(values[0]) else None


def _request_id(scope: Scope, state: dict[str, Any]) -> str | None:
    rid = state.get("request_id")
    if isinstance(rid, str) and rid:
        return rid
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.match(text) else None
    return None


def request_row(scope: Scope, status: int) -> dict[str, Any] | None:
    """The audit row for a finished request, or None when the request is not audited."""
    state = scope.get("state")
    principal = state.get("principal") if isinstance(state, dict) else None
    if principal is None:
        return None
    kind, pid = str(getattr(principal, "kind", "")), str(getattr(principal, "id", ""))
    method: str = scope.get("method", "")
    params: dict[str, Any] = scope.get("path_params") or {}
    raw_patient = params.get("patient_id")
    patient_id = raw_patient if is_id(raw_patient) else _query_patient(scope)
    on_behalf_of = None
    if kind == "api_key":
        if method not in _READS:
            return None
    elif kind == "patient":
        if patient_id is None or patient_id == pid:
            return None  # a patient's own data: not someone else looking
        on_behalf_of = patient_id
    subject_id = next((v for k, v in reversed(params.items()) if k != "patient_id" and is_id(v)), None)
    details: dict[str, Any] = {"status": status}
    client = scope.get("client")
    if client:
        details["ip"] = client[0]
    rid = _request_id(scope, state) if isinstance(state, dict) else None
    if rid is not None:
        details["request_id"] = rid
    role = "proxy" if on_behalf_of is not None else str(getattr(principal, "role", "") or "")
    return {"actor": audit.Actor(kind, pid, role),
            "action": f"{audit.REQUEST_PREFIX}{method}:{route_template(scope)}"[:160],
            "subject_id": subject_id, "patient_id": patient_id, "on_behalf_of": on_behalf_of, "details": details}


def write_row(row: dict[str, Any]) -> None:
    """One short write transaction; a failure is logged (ids only), never raised at the client."""
    try:
        with write_tx() as session:
            audit.record(session, row["actor"], row["action"], utc_now(), subject_id=row["subject_id"],
                         patient_id=row["patient_id"], on_behalf_of=row["on_behalf_of"], **row["details"])
    except Exception:
        log.exception("request audit row not written (%s)", row["action"])


class AuditRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # shared with request.state, so the principal is seen here
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            row = request_row(scope, status)
            if row is not None:
                await run_in_threadpool(write_row, row)
