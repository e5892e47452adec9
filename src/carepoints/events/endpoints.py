from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from carepoints.events import alliance, service
from carepoints.events.errors import BatchTooLargeError
from carepoints.events.schemas import EventIn
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError, ValidationFailedError
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON, error_response
from carepoints.security.deps import Signed, authorize, require
from carepoints.security.service import Principal

router = APIRouter(tags=["events"])


class EventBatch(BaseModel):
    events: list[EventIn] = Field(max_length=service.MAX_BATCH)


class RevokeBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class RevokeByKey(RevokeBody):
    source: str = Field(min_length=1, max_length=100)
    source_event_id: str = Field(min_length=1, max_length=200)


_EVENTS_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
    {"$ref": "#/components/schemas/EventIn"}, {"$ref": "#/components/schemas/EventBatch"}]}}}}}


@router.post("/events", openapi_extra=_EVENTS_DOC, responses={201: {}, 200: {}, 409: {}, 413: {}})
async def post_events(request: Request, principal: Principal = Depends(require("events:write"))) -> JSON:
    """Ingest one event (201, or 200 for a duplicate) or a batch of up to 1000 (200 with one outcome per item)."""
    return await ingest_body(await request.body(), principal.institutions)


async def fast_post_events(headers: Mapping[str, str], body: bytes) -> JSON:
    """`POST /api/v1/events` on the lean ASGI path (kit.fastpath): the route above, minus the framework."""
    target = headers.get(":target")  # only signed requests have one (kit.fastpath)
    principal = await authorize(headers.get("authorization", ""), "events:write",
                                None if target is None else Signed("POST", target, headers, body))
    return await ingest_body(body, principal.institutions)


async def ingest_body(raw: bytes, bound: frozenset[str] | None = None) -> JSON:
    """Parse a request body (one event or {"events": [...]}), ingest it and answer. For a caller
    bound to institutions (`bound`, ops.alliance) items out of its scope are answered, not ingested."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationFailedError("请求体不是有效的JSON / The body is not valid JSON",
                                    fields=[{"loc": ["body"], "msg": "invalid JSON"}]) from None
    if isinstance(body, dict) and "events" in body and "type" not in body:
        items = body["events"]
        if not isinstance(items, list):
            raise ValidationFailedError(fields=[{"loc": ["body", "events"], "msg": "must be a list"}])
        if len(items) > service.MAX_BATCH:
            raise BatchTooLargeError(limit=service.MAX_BATCH)
        results = await _run(items, bound) if items else []
        return JSON({"outcomes": [service.error_item(r) if isinstance(r, AppError) else r for r in results]})
    result = (await _run([body], bound))[0]
    if isinstance(result, AppError):
        return error_response(result)
    return JSON(result, status_code=200 if result.get("duplicate") else 201)


@router.post("/events/revoke")
def revoke_by_key(body: RevokeByKey, _p: Principal = Depends(require("events:revoke"))) -> JSON:
    """Reverse the awards of the event with this source key; again → the same result."""
    with write_tx() as session:
        result = service.revoke(session, now=utc_now(), reason=body.reason, source=body.source,
                                source_event_id=body.source_event_id)
    return JSON(result)


@router.post("/events/{event_id}/revoke")
def revoke(event_id: str, body: RevokeBody,
           _p: Principal = Depends(require("events:revoke"))) -> JSON:
    """Reverse exactly this event's awards and free the cap room they used; again → the same result."""
    with write_tx() as session:
        result = service.revoke(session, now=utc_now(), reason=body.reason, event_id=event_id)
    return JSON(result)


async def _run(items: list[Any], bound: frozenset[str] | None) -> list[service.Result]:
    if bound is None:  # unbound keys: straight to the writer, nothing added
        return await service.writer.run(items)
    errors = await run_in_threadpool(_check_scope, items, bound)
    allowed = [item for item, err in zip(items, errors, strict=True) if err is None]
    done = iter(await service.writer.run(allowed) if allowed else [])
    return [err if err is not None else next(done) for err in errors]


def _check_scope(items: list[Any], bound: frozenset[str]) -> list[AppError | None]:
    with read_tx() as session:
        return alliance.check(session, items, bound)
