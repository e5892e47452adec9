"""Every query of the reports domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.orm import Session

from carepoints.engagement.care.models import CareAlert
from carepoints.kit.bulk import insert_rows
from carepoints.kit.db import is_postgres, table
from carepoints.kit.ids import is_id
from carepoints.services.reports.models import DiagnosticReport, DiagnosticResult

_reports = table(DiagnosticReport)
_results = table(DiagnosticResult)
_alerts = table(CareAlert)


def by_source(session: Session, source: str, source_id: str) -> Any:
    stmt = select(_reports).where(_reports.c.source == source, _reports.c.source_id == source_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    return session.connection().execute(stmt).mappings().first()


def get(session: Session, patient_id: str, report_id: str) -> Any:
    """The report with its care alert's status (`alert_status`), only when it is this patient's."""
    if not is_id(report_id):
        return None
    stmt = (select(_reports, _alerts.c.status.label("alert_status"))
            .outerjoin(_alerts, _alerts.c.id == _reports.c.alert_id)
            .where(_reports.c.id == report_id, _reports.c.patient_id == patient_id))
    return session.connection().execute(stmt).mappings().first()


def owners(session: Session, report_id: str) -> list[str]:
    if not is_id(report_id):
        return []
    stmt = select(_reports.c.patient_id).where(_reports.c.id == report_id)
    return [str(v) for v in session.connection().execute(stmt).scalars()]


def of_patient(session: Session, patient_id: str, statuses: tuple[str, ...] | None, limit: int) -> list[Any]:
    stmt = (select(_reports, _alerts.c.status.label("alert_status"))
            .outerjoin(_alerts, _alerts.c.id == _reports.c.alert_id)
            .where(_reports.c.patient_id == patient_id)
            .order_by(_reports.c.issued_at.desc(), _reports.c.id.desc()).limit(limit))
    if statuses is not None:
        stmt = stmt.where(_reports.c.status.in_(statuses))
    return list(session.connection().execute(stmt).mappings().all())


def results(session: Session, report_id: str) -> list[Any]:
    stmt = select(_results).where(_results.c.report_id == report_id).order_by(_results.c.position)
    return list(session.connection().execute(stmt).mappings().all())


def insert_report(session: Session, row: dict[str, Any]) -> None:
    insert_rows(session.connection(), _reports, [row])


def update_report(session: Session, report_id: str, **values: Any) -> None:
    session.connection().execute(update(_reports).where(_reports.c.id == report_id).values(**values))


def release_held(session: Session, report_id: str, now: datetime) -> bool:
    """Clear the hold of a still held report; False when another transaction released it first."""
    stmt = (update(_reports).where(_reports.c.id == report_id, _reports.c.held.is_(True))
            .values(held=False, released_at=now))
    return bool(session.connection().execute(stmt).rowcount)


def replace_results(session: Session, report_id: str, rows: list[dict[str, Any]]) -> None:
    conn = session.connection()
    conn.execute(delete(_results).where(_results.c.report_id == report_id))
    if rows:
        insert_rows(conn, _results, rows)


def held_due(session: Session, issued_before: datetime | None, limit: int) -> list[Any]:
    """Held reports whose alert a clinician has acknowledged (or resolved), or issued before
    `issued_before` (the release delay), oldest first (filtered in the query, so a backlog of
    held reports still awaiting review never hides a due one behind the limit)."""
    due: ColumnElement[bool] = _alerts.c.status.in_(("acknowledged", "resolved"))
    if issued_before is not None:
        due = or_(due, _reports.c.issued_at <= issued_before)
    stmt = (select(_reports, _alerts.c.status.label("alert_status"))
            .outerjoin(_alerts, _alerts.c.id == _reports.c.alert_id)
            .where(_reports.c.held.is_(True), due).order_by(_reports.c.issued_at, _reports.c.id).limit(limit))
    return list(session.connection().execute(stmt).mappings().all())
