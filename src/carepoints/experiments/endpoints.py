"""Experiments API (A/B tests of rules): admins create, start and stop them
(`experiments:write`); admins and auditors read them and a patient's variant
(`experiments:read`). Results are an analytics view (`experiment_results`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from carepoints.experiments import service
from carepoints.experiments.schemas import ExperimentCreate, Status
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["experiments"])


@router.post("/experiments", status_code=201)
def create_experiment(body: ExperimentCreate, principal: Principal = Depends(require("experiments:write"))) -> JSON:
    """A draft experiment: its code, names, the ethics approval reference (伦理审批号, required)
    and its variants, the first being the control, each with a weight and overrides of
    active rules (`points`, `enabled`, `daily_points`). The same code and body again answer
    the stored experiment (200); another body under the code is 409."""
    with write_tx() as session:
        doc, created = service.create(session, body, principal.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.get("/experiments")
def list_experiments(status: Status | None = None, limit: int = Query(default=100, ge=1, le=500),
                     _p: Principal = Depends(require("experiments:read"))) -> JSON:
    """Experiments, newest first, optionally of one status."""
    with read_tx() as session:
        return JSON({"items": service.listing(session, status, limit)})


@router.get("/experiments/{experiment_id}")
def get_experiment(experiment_id: str, _p: Principal = Depends(require("experiments:read"))) -> JSON:
    """One experiment with its variants and their shares."""
    with read_tx() as session:
        return JSON(service.get(session, experiment_id))


@router.post("/experiments/{experiment_id}/start")
def start_experiment(experiment_id: str, principal: Principal = Depends(require("experiments:write"))) -> JSON:
    """Start a draft: from now, consenting patients' events are scored with their variant's
    overrides. 409 when it is not a draft or a running experiment overrides the same rules."""
    with write_tx() as session:
        return JSON(service.start(session, experiment_id, principal.actor(), utc_now()))


@router.post("/experiments/{experiment_id}/stop")
def stop_experiment(experiment_id: str, principal: Principal = Depends(require("experiments:write"))) -> JSON:
    """Stop a running experiment: events that occur from now get the programme as it is."""
    with write_tx() as session:
        return JSON(service.stop(session, experiment_id, principal.actor(), utc_now()))


@router.get("/experiments/{experiment_id}/assignment/{patient_id}")
def get_assignment(experiment_id: str, patient_id: str,
                   _p: Principal = Depends(require("experiments:read"))) -> JSON:
    """The patient's variant (deterministic: a hash of experiment and patient), or
    `variant: null` with `reason` `not_running` or `no_research_consent`."""
    with read_tx() as session:
        return JSON(service.assignment(session, experiment_id, patient_id, utc_now()))
