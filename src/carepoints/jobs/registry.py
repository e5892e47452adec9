"""The periodic jobs. Public names (API.md) map to `domain.verb_object`
functions; each runs in transactions of bounded size and reports figures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from carepoints.config import get_settings
from carepoints.jobs.models import JobRun
from carepoints.kit.db import drain, table, write_tx
from carepoints.kit.ids import new_id
from carepoints.kit.time import utc_now
from carepoints.ledger import integrity
from carepoints.ledger import service as ledger
from carepoints.scheduling import tasks as scheduling
from carepoints.tiers import tasks as tiers


def ledger_expire_points(now: datetime) -> dict[str, Any]:
    wallets = points = 0
    while True:
        with write_tx() as session:
            w, p = ledger.expire_points(session, now)
        wallets, points = wallets + w, points + p
        if w == 0:
            return {"wallets": wallets, "points": points}


def ledger_expire_holds(now: datetime) -> dict[str, Any]:
    return {"holds": drain(lambda session: ledger.expire_holds(session, now))}


def ledger_seal_checkpoint(now: datetime) -> dict[str, Any]:
    settings = get_settings()
    with write_tx() as session:
        return integrity.seal_checkpoint(session, settings.checkpoint_key, now, settings.checkpoint_path())


JOBS: dict[str, Callable[[datetime], dict[str, Any]]] = {
    "expire-points": ledger_expire_points,
    "expire-holds": ledger_expire_holds,
    "seal-checkpoint": ledger_seal_checkpoint,
    "generate-sessions": scheduling.generate_sessions,
    "sweep-no-shows": scheduling.sweep_no_shows,
    "release-reserved-slots": scheduling.release_reserved_slots,
    "expire-waitlist-offers": scheduling.expire_waitlist_offers,
    "recompute-tiers": tiers.recompute_tiers,
}

# Fixed local times (hour, minute) or an interval, never "at start-up".
SCHEDULE: dict[str, tuple[int, int] | timedelta] = {
    "expire-points": (2, 0),
    "seal-checkpoint": (3, 30),
    "expire-holds": timedelta(minutes=5),
    "generate-sessions": (1, 0),
    "sweep-no-shows": timedelta(minutes=15),
    "release-reserved-slots": timedelta(minutes=5),
    "expire-waitlist-offers": timedelta(minutes=1),
    "recompute-tiers": (2, 30),  # after expire-points; the only time a tier goes down
}


class AlreadyRunError(Exception):
    pass


def run(name: str, now: datetime | None = None, slot: str | None = None) -> dict[str, Any]:
    """Run a job once. With a `slot`, the (job, slot) lease makes sure no
    instance runs twice, whichever process gets there first."""
    now = now or utc_now()
    fn = JOBS[name]
    run_id = new_id()
    try:
        with write_tx() as session:
            session.connection().execute(table(JobRun).insert(), [{
                "id": run_id, "job": name, "slot": slot or f"manual:{run_id}", "started_at": utc_now(),
                "finished_at": None, "status": "running", "result": None}])
    except IntegrityError:
        raise AlreadyRunError(name) from None
    try:
        result = fn(now)
    except Exception:
        _finish(run_id, "failed", None)
        raise
    _finish(run_id, "done", result)
    return result


def _finish(run_id: str, status: str, result: dict[str, Any] | None) -> None:
    with write_tx() as session:
        session.connection().execute(update(table(JobRun)).where(table(JobRun).c.id == run_id).values(
            status=status, finished_at=utc_now(), result=result))
