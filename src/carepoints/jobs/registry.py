"""The periodic jobs. Public names (API.md) map to `domain.verb_object`
functions; each runs in transactions of bounded size and reports figures."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from carepoints.analytics import rollup as analytics
from carepoints.audit import tasks as audit_tasks
from carepoints.config import get_settings
from carepoints.engagement.followups import tasks as followups
from carepoints.engagement.health import tasks as health
from carepoints.enrolment import identity
from carepoints.jobs.models import JobRun
from carepoints.kit import retention
from carepoints.kit.db import drain, table, write_tx
from carepoints.kit.ids import new_id
from carepoints.kit.metrics import job_finished
from carepoints.kit.time import utc_now
from carepoints.ledger import integrity, notices
from carepoints.ledger import service as ledger
from carepoints.notifications import tasks as notifications
from carepoints.operations import adjustments, fraud
from carepoints.rules import governance
from carepoints.rules import service as rules
from carepoints.scheduling import tasks as scheduling
from carepoints.services.consult import service as consult
from carepoints.services.reports import service as reports
from carepoints.services.satisfaction import tasks as satisfaction
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
        result = integrity.seal_checkpoint(session, settings.checkpoint_key, now, settings.checkpoint_path())
    return {**result, **audit_tasks.seal_blocks(now)}  # (trust.audit) then the audit log's due blocks


def ledger_notify_expiring_points(now: datetime) -> dict[str, Any]:
    with write_tx() as session:
        prog = rules.current_settings(session, now)
        return {"notices": notices.notify_expiring(session, now, prog.settings.expiring_notice_days, prog.tz)}


def engagement_care_alerts(now: datetime) -> dict[str, Any]:
    """`care-alerts`: each care-alert step in turn: inactivity, then overdue follow-ups."""
    return {**health.flag_inactivity(now), "overdue_followups": followups.flag_overdue_followups(now)["alerts"]}


def reports_release_due(now: datetime) -> dict[str, Any]:
    """`release-reports` (services.reports): held reports whose critical alert a clinician has
    acknowledged, or whose release delay has passed, in batches; each tells the patient once."""
    return {"released": drain(lambda session: reports.release_due(session, now)["released"])}


def consult_close_idle(now: datetime) -> dict[str, Any]:
    """`close-consultations` (services.consult): answered consultations idle for `consult_idle_hours`
    are closed, in batches; each patient is told and may rate theirs."""
    return {"closed": drain(lambda session: consult.close_idle(session, now))}


def privacy_apply_retention(now: datetime) -> dict[str, Any]:
    """`apply-retention` (trust.privacy): every registered kind of record past its period, in batches."""
    return retention.apply(now, get_settings().retention_days)


JOBS: dict[str, Callable[[datetime], dict[str, Any]]] = {
    "apply-retention": privacy_apply_retention,
    "care-alerts": engagement_care_alerts,
    "remind-followups": followups.remind_followups,
    "remind-medication": health.remind_medication,
    "expire-points": ledger_expire_points,
    "expire-holds": ledger_expire_holds,
    "seal-checkpoint": ledger_seal_checkpoint,
    "seal-audit": audit_tasks.seal_blocks,  # (trust.audit)
    "generate-sessions": scheduling.generate_sessions,
    "sweep-no-shows": scheduling.sweep_no_shows,
    "release-reserved-slots": scheduling.release_reserved_slots,
    "expire-waitlist-offers": scheduling.expire_waitlist_offers,
    "recompute-tiers": tiers.recompute_tiers,
    "send-notifications": notifications.send_notifications,
    "remind-appointments": scheduling.remind_appointments,
    "notify-expiring-points": ledger_notify_expiring_points,
    # (ops.identity jobs)
    "detect-duplicates": identity.detect_duplicates,
    # (ops.adjustments jobs)
    "expire-adjustments": adjustments.expire_pending,
    # (ops.governance jobs)
    "announce-programme": governance.announce_programme,
    # (ops.fraud jobs)
    "detect-fraud": fraud.detect,
    # (analytics jobs)
    "rollup-analytics": analytics.rollup_analytics,
    # (services.reports jobs)
    "release-reports": reports_release_due,
    # (services.consult jobs)
    "close-consultations": consult_close_idle,
    # (services.satisfaction jobs)
    "detect-improvements": satisfaction.detect_improvements,
    "satisfaction-alerts": satisfaction.satisfaction_alerts,
}

# Fixed local times (hour, minute) or an interval, never "at start-up".
SCHEDULE: dict[str, tuple[int, int] | timedelta] = {
    "apply-retention": (4, 0),  # daily, after seal-checkpoint (an audit purge needs sealed blocks)
    "remind-followups": (9, 30),
    "care-alerts": (8, 0),  # a follow-up step is overdue from local midnight
    "remind-medication": timedelta(minutes=5),
    "expire-points": (2, 0),
    "seal-checkpoint": (3, 30),
    "seal-audit": timedelta(minutes=10),  # (trust.audit) rows stay unsealed about margin + 10 min
    "expire-holds": timedelta(minutes=5),
    "generate-sessions": (1, 0),
    "sweep-no-shows": timedelta(minutes=15),
    "release-reserved-slots": timedelta(minutes=5),
    "expire-waitlist-offers": timedelta(minutes=1),
    "recompute-tiers": (2, 30),  # after expire-points; the only time a tier goes down
    "send-notifications": timedelta(seconds=10),
    "remind-appointments": (18, 0),  # the evening before
    "notify-expiring-points": (10, 0),  # a civil hour, after expire-points
    # (ops.identity schedule)
    "detect-duplicates": (3, 0),  # daily, quiet hours
    # (ops.adjustments schedule)
    "expire-adjustments": (3, 0),  # daily
    # (ops.governance schedule)
    "announce-programme": timedelta(minutes=5),
    # (ops.fraud schedule)
    "detect-fraud": timedelta(minutes=10),
    # (analytics schedule)
    "rollup-analytics": (2, 15),  # yesterday, after the night's expiry run; re-rolls recent days
    # (services.reports schedule)
    "release-reports": timedelta(minutes=10),  # acknowledged critical reports reach the patient within 10 min
    # (services.consult schedule)
    "close-consultations": timedelta(minutes=30),  # idle answered threads close within half an hour of the limit
    # (services.satisfaction schedule)
    "detect-improvements": timedelta(minutes=10),  # low surveys and negative reviews reach the queue within ~12 min
    "satisfaction-alerts": (7, 30),  # daily, over the last whole days, before the working day
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
        job_finished(name, "skipped", None)
        raise AlreadyRunError(name) from None
    started = time.perf_counter()
    try:
        result = fn(now)
    except Exception:
        job_finished(name, "failed", time.perf_counter() - started)
        _finish(run_id, "failed", None)
        raise
    job_finished(name, "done", time.perf_counter() - started)
    _finish(run_id, "done", result)
    return result


def run_unleased(name: str, now: datetime) -> dict[str, Any]:
    """Run a job that claims its own work (no lease row, no `job_runs` row), counted in the metrics."""
    started = time.perf_counter()
    try:
        result = JOBS[name](now)
    except Exception:
        job_finished(name, "failed", time.perf_counter() - started)
        raise
    job_finished(name, "done", time.perf_counter() - started)
    return result


def _finish(run_id: str, status: str, result: dict[str, Any] | None) -> None:
    with write_tx() as session:
        session.connection().execute(update(table(JobRun)).where(table(JobRun).c.id == run_id).values(
            status=status, finished_at=utc_now(), result=result))
