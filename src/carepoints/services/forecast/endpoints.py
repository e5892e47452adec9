"""Demand forecast API (智能号源, programme admin): run a forecast of the coming weeks, read the
latest (or one) run with the models' held-back errors, the suggested capacities and the off-peak
windows, and apply a suggestion (the scheduling service changes the capacity). Auditors read."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.service import Principal
from carepoints.services.forecast import service
from carepoints.services.forecast.errors import RunNotFoundError
from carepoints.services.forecast.schemas import RunCreate

router = APIRouter(tags=["forecast"])
_read = require("forecast:read")
_write = require("forecast:write")


@router.post("/forecast/runs", status_code=201)
def create_run(body: RunCreate, p: Principal = Depends(_write)) -> JSON:
    """Forecast demand per department, weekday and hour for the next `weeks` weeks from the booking
    history (the better of the models on the held-back 28 days, per department) and suggest a
    capacity for every coming session and weekly template (demand × headroom, rounded up, never
    below the slots taken); earlier pending suggestions are superseded."""
    now = utc_now()
    with read_tx() as session:
        plan = service.prepare(session, body, now)
    with write_tx() as session:
        return JSON(service.save(session, plan, p.actor(), now), status_code=201)


@router.get("/forecast")
def latest_run(_p: Principal = Depends(_read)) -> JSON:
    """The latest forecast run (404 `forecast.run_not_found` before the first)."""
    with read_tx() as session:
        doc = service.latest(session)
    if doc is None:
        raise RunNotFoundError()
    return JSON(doc)


@router.get("/forecast/runs/{run_id}")
def read_run(run_id: str, _p: Principal = Depends(_read)) -> JSON:
    """One forecast run: per department the models' WAPE and MAE on the held-back days, the one
    chosen, daily history and forecast, off-peak windows; every suggestion with its status."""
    with read_tx() as session:
        return JSON(service.read_run(session, run_id))


@router.post("/forecast/suggestions/{suggestion_id}/apply")
def apply_suggestion(suggestion_id: str, p: Principal = Depends(_write)) -> JSON:
    """Apply a capacity suggestion through the scheduling service (audited). Again → the same
    suggestion with `changed: false`. 409 `forecast.suggestion_superseded`, `forecast.nothing_to_apply`,
    `scheduling.capacity_below_booked` (more bookings than the new capacity),
    `scheduling.capacity_session_started`; 422 when more slots than fit are asked."""
    with write_tx() as session:
        return JSON(service.apply(session, suggestion_id, p.actor(), utc_now()))
