"""Programme governance over the API: drafts with maker-checker approval, and the
programme's published terms (积分规则) with the history of versions."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.rules import governance
from carepoints.security.deps import require, require_any
from carepoints.security.service import Principal

router = APIRouter(tags=["programme"])
_READ = require_any("programme:read", "programme:write")


class Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zh: str = Field(min_length=1, max_length=500)
    en: str = Field(min_length=1, max_length=500)


class Changes(BaseModel):
    """A patch to the newest version: `settings` merged key by key, `rules` and `rewards`
    by code (a known code is changed only where named; a new code must be a whole rule)."""

    model_config = ConfigDict(extra="forbid")
    name: dict[str, str] | None = None
    settings: dict[str, Any] | None = None
    rules: list[dict[str, Any]] | None = Field(default=None, max_length=500)
    rewards: list[dict[str, Any]] | None = Field(default=None, max_length=500)


class DraftCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: dict[str, Any] | None = None
    changes: Changes | None = None
    summary: Summary
    activate_at: AwareDatetime

    @model_validator(mode="after")
    def _one_source(self) -> DraftCreate:
        if (self.document is None) == (self.changes is None):
            raise ValueError("give either `document` or `changes`")
        return self


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=500)


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=500)


@router.post("/programme/drafts", status_code=201)
def create_draft(body: DraftCreate, principal: Principal = Depends(require("programme:write"))) -> JSON:
    """Draft a programme change (rules, point value, tiers, budget, settings): a whole
    `document`, or `changes` to the newest version. Validated like a programme file
    (422 `programme.invalid` with fields); nothing takes effect until another admin approves."""
    now = utc_now()
    changes = body.changes.model_dump(exclude_none=True) if body.changes else None
    with write_tx() as session:
        doc = governance.propose(session, principal.actor(), summary=body.summary.model_dump(),
                                 activate_at=body.activate_at, now=now, document=body.document, changes=changes)
    return JSON(doc, status_code=201)


@router.get("/programme/drafts")
def list_drafts(status: Literal["draft", "approved", "rejected", "withdrawn"] | None = Query(None),
                _p: Principal = Depends(_READ)) -> JSON:
    """Programme drafts, newest first (optionally of one status)."""
    with read_tx() as session:
        return JSON({"items": governance.drafts(session, status)})


@router.get("/programme/drafts/{draft_id}")
def get_draft(draft_id: str, _p: Principal = Depends(_READ)) -> JSON:
    """One draft with its document and what it changes (settings and rules, old → new)."""
    with read_tx() as session:
        return JSON(governance.draft(session, draft_id))


@router.post("/programme/drafts/{draft_id}/approve")
def approve_draft(draft_id: str, body: Decision | None = Body(default=None),
                  principal: Principal = Depends(require("programme:write"))) -> JSON:
    """Approve a draft (an admin other than its author: 409 `programme.approver_is_author`):
    it is installed as the next version from its `activate_at` and announced to patients.
    A draft whose base is no longer the newest version is stale (409 `programme.draft_stale`)."""
    now = utc_now()
    with write_tx() as session:
        return JSON(governance.approve(session, draft_id, principal.actor(), now, body.note if body else None))


@router.post("/programme/drafts/{draft_id}/reject")
def reject_draft(draft_id: str, body: Rejection, principal: Principal = Depends(require("programme:write"))) -> JSON:
    """Reject a draft with a note (another admin than its author)."""
    now = utc_now()
    with write_tx() as session:
        return JSON(governance.reject(session, draft_id, principal.actor(), now, body.note))


@router.post("/programme/drafts/{draft_id}/withdraw")
def withdraw_draft(draft_id: str, principal: Principal = Depends(require("programme:write"))) -> JSON:
    """The author withdraws their own draft."""
    now = utc_now()
    with write_tx() as session:
        return JSON(governance.withdraw(session, draft_id, principal.actor(), now))


@router.get("/programme/terms")
def get_terms(lang: Literal["zh", "en"] = Query("zh")) -> JSON:
    """The programme's current terms (积分规则) in plain words, and the next scheduled
    version if any. Public: what a patient agrees to is public information (no PII)."""
    with read_tx() as session:
        return JSON(governance.current_terms(session, lang, utc_now()))


@router.get("/programme/versions")
def list_versions() -> JSON:
    """Every programme version, newest first: number, name, effective from, loaded at, and
    the summary of the approved draft it came from. Public, like the terms."""
    with read_tx() as session:
        return JSON({"items": governance.versions(session)})
