"""Shared set-up of the experiments tests: a design, and consenting patients in a chosen arm."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from carepoints.audit.service import Actor
from carepoints.enrolment import privacy
from carepoints.experiments import assign
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now

if TYPE_CHECKING:
    from tests.api_client import Api

RESEARCH = ["points_programme", "health_data", "research"]


def design(code: str = "bp_points", treatment: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """Control (no overrides) and `double` at 1:1; by default double pays 20 per check-in."""
    body: dict[str, Any] = {
        "code": code, "names": {"zh": "打卡积分翻倍", "en": "Double check-in points"},
        "ethics_ref": "2026-伦审-017",
        "variants": [{"code": "control", "weight": 1},
                     {"code": "double", "weight": 1,
                      "overrides": treatment if treatment is not None else [{"rule": "health_checkin", "points": 20}]}],
    }
    body.update(extra)
    return body


def create(api: Api, body: dict[str, Any] | None = None, start: bool = True) -> dict[str, Any]:
    r = api.post("/experiments", body or design())
    assert r.status_code == 201, r.text
    doc: dict[str, Any] = r.json()
    if start:
        r = api.post(f"/experiments/{doc['id']}/start")
        assert r.status_code == 200, r.text
        doc = r.json()
    return doc


def variant_of(doc: dict[str, Any], pid: str) -> str:
    weights = [v["weight"] for v in doc["variants"]]
    return str(doc["variants"][assign.variant_index(doc["id"], weights, pid)]["code"])


def consent(research: bool = True, days_ago: int = 1) -> dict[str, Any]:
    return {"version": "1.0", "accepted_at": (utc_now() - timedelta(days=days_ago)).isoformat(),
            "purposes": RESEARCH if research else RESEARCH[:2]}


def enrol_in(api: Api, doc: dict[str, Any], variant: str, research_since: datetime | None = None,
             **extra: Any) -> str:
    """A patient in `variant`: patients are enrolled without a research consent until one
    falls into it by the hash (the others stay out of the experiment), who then grants it
    (at `research_since`, default now)."""
    for _ in range(64):
        pid = api.enrol(**{"consent": consent(research=False), **extra})
        if variant_of(doc, pid) == variant:
            with write_tx() as session:
                privacy.grant(session, pid, "research", "1.0", Actor("patient", pid), research_since or utc_now())
            return pid
    raise AssertionError(f"no patient fell into {variant}")  # p < 2^-64 at 1:1
