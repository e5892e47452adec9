"""Triage guidance API (智能导诊): ask with a symptom description (a patient for themself, staff,
or a kiosk's integration key; rate-limited per caller), and the admin's knowledge base.

The description is health data: it is never logged, stored or audited (the request-level
audit keeps the route and ids only, never bodies)."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Depends, Query

from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.ratelimit import limiter
from carepoints.kit.time import local_date, utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.service import Principal
from carepoints.services.triage import curation, service
from carepoints.services.triage.schemas import KindDepartments, RedFlagUpdate, TermCreate, TermUpdate, TriageAsk

router = APIRouter(prefix="/triage", tags=["triage"])


@router.post("")
def ask(body: TriageAsk, p: Principal = Depends(require("triage:ask"))) -> JSON:
    """Triage guidance for a symptom description (1–500 characters; optional age, sex, pregnant,
    and a patient whose profile fills in what is left out). A red flag answers `urgent: true`
    with the red flags and "请立即前往急诊 / 拨打120" and nothing else; otherwise suggested
    department kinds with the reason (the words that led there), the hospital's departments
    and clinicians with open sessions. Always a disclaimer: never a diagnosis. 429
    `rate.limited` past 30 a minute per caller."""
    limiter.check("triage:" + p.id, get_settings().rate_limit_triage_per_minute)
    with write_tx() as session:
        return JSON(service.ask(session, body, utc_now()))


@router.get("/terms")
def list_terms(q: str | None = Query(None, min_length=1, max_length=32), enabled: bool | None = Query(None),
               _p: Principal = Depends(require("triage:read"))) -> JSON:
    """The symptom terms with their synonyms, department weights, state and the red flags reading them."""
    with read_tx() as session:
        return JSON({"items": curation.terms(session, q=q, enabled=enabled)})


@router.post("/terms", status_code=201)
def create_term(body: TermCreate, p: Principal = Depends(require("triage:write"))) -> JSON:
    """Add a symptom term (409 `triage.synonym_taken` when a synonym belongs to another term)."""
    with write_tx() as session:
        return JSON(curation.create_term(session, body, p.actor(), utc_now()), status_code=201)


@router.get("/terms/{term_id}")
def get_term(term_id: str, _p: Principal = Depends(require("triage:read"))) -> JSON:
    """One symptom term."""
    with read_tx() as session:
        return JSON(curation.term(session, term_id))


@router.put("/terms/{term_id}")
def update_term(term_id: str, body: TermUpdate, p: Principal = Depends(require("triage:write"))) -> JSON:
    """Change a term's names, synonyms (the whole list), weights (the whole map) or `enabled`;
    what is left out stays. The next triage uses it. A term an enabled red flag reads cannot be
    disabled (409 `triage.term_in_red_flag`)."""
    with write_tx() as session:
        return JSON(curation.update_term(session, term_id, body, p.actor(), utc_now()))


@router.get("/red-flags")
def list_red_flags(_p: Principal = Depends(require("triage:read"))) -> JSON:
    """The red flags: messages, term combinations, state."""
    with read_tx() as session:
        return JSON({"items": curation.red_flags(session)})


@router.put("/red-flags/{flag_id}")
def update_red_flag(flag_id: str, body: RedFlagUpdate, p: Principal = Depends(require("triage:write"))) -> JSON:
    """Change a red flag's names, messages, combinations (`when`: alternatives of groups of
    term ids) or `enabled`."""
    with write_tx() as session:
        return JSON(curation.update_red_flag(session, flag_id, body, p.actor(), utc_now()))


@router.get("/kinds")
def list_kinds(_p: Principal = Depends(require("triage:read"))) -> JSON:
    """The department kinds with the hospital departments each stands for (and how: name or admin)."""
    with read_tx() as session:
        return JSON({"items": curation.kinds(session)})


@router.put("/kinds/{code}/departments")
def set_kind_departments(code: str, body: KindDepartments, p: Principal = Depends(require("triage:write"))) -> JSON:
    """The hospital departments a kind stands for (replaces its name matches)."""
    with write_tx() as session:
        return JSON(curation.set_kind_departments(session, code, body, p.actor(), utc_now()))


@router.post("/kinds/match")
def match_kinds(p: Principal = Depends(require("triage:write"))) -> JSON:
    """Map by name the departments no mapping row covers yet (start-up does it too)."""
    with write_tx() as session:
        return JSON(curation.match_by_name(session, p.actor(), utc_now()))


@router.get("/stats")
def stats(start: date | None = Query(None), end: date | None = Query(None),
          _p: Principal = Depends(require("triage:read"))) -> JSON:
    """Triages per day, per red flag raised, per first kind suggested and unmatched, over
    `start`..`end` (local days; default the last 30 days). No text, no patient is ever kept."""
    today = local_date(utc_now(), get_settings().tz)
    end = end or today
    with read_tx() as session:
        return JSON(curation.stats(session, start or end - timedelta(days=29), end))
