"""Every query of the satisfaction loop. Reviews, survey responses, appointments, sessions and
departments are read here, never written (they change only through their own services)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, RowMapping

from carepoints.engagement.followups.models import QuestionnaireResponse
from carepoints.engagement.learning.models import Review
from carepoints.kit.bulk import insert_new, insert_rows, upsert
from carepoints.kit.db import table
from carepoints.kit.ids import is_id
from carepoints.scheduling import repository as sched
from carepoints.services.satisfaction.models import (
    OPEN_STATUSES,
    Complaint,
    ImprovementItem,
    ImprovementNote,
    SatisfactionAlert,
    SatisfactionScanCursor,
    SatisfactionScore,
)

scores = table(SatisfactionScore)
items = table(ImprovementItem)
notes = table(ImprovementNote)
complaints = table(Complaint)
alerts = table(SatisfactionAlert)
cursors = table(SatisfactionScanCursor)
_reviews = table(Review)
_responses = table(QuestionnaireResponse)
_a, _s, _d = sched.appointments, sched.sessions, sched.departments


# --- the scan ---------------------------------------------------------------------------------

def cursor(conn: Connection, name: str) -> str | None:
    value = conn.execute(select(cursors.c.last_id).where(cursors.c.name == name)).scalar()
    return None if value is None else str(value)


def move_cursor(conn: Connection, name: str, last_id: str, now: datetime) -> None:
    """Forward only: a slower concurrent run never moves the cursor back."""
    stmt = upsert(conn, cursors).values(name=name, last_id=last_id, updated_at=now)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                            set_={"last_id": stmt.excluded.last_id, "updated_at": now},
                                            where=cursors.c.last_id < stmt.excluded.last_id))


def reviews_after(conn: Connection, after: str | None, horizon: str, limit: int) -> list[RowMapping]:
    """Reviews with ids in (after, horizon), in id order, with their visit's department."""
    stmt = (select(_reviews.c.id, _reviews.c.patient_id, _reviews.c.appointment_id, _reviews.c.rating,
                   _reviews.c.created_at, _s.c.department_id)
            .select_from(_reviews.join(_a, _a.c.id == _reviews.c.appointment_id).join(_s, _s.c.id == _a.c.session_id))
            .where(_reviews.c.id < horizon).order_by(_reviews.c.id).limit(limit))
    if after is not None:
        stmt = stmt.where(_reviews.c.id > after)
    return list(conn.execute(stmt).mappings())


def surveys_after(conn: Connection, after: str | None, horizon: str, limit: int) -> list[RowMapping]:
    """Monthly survey responses (those with a period) with ids in (after, horizon), in id order."""
    r = _responses
    stmt = (select(r.c.id, r.c.patient_id, r.c.answers, r.c.created_at)
            .where(r.c.survey_period.is_not(None), r.c.id < horizon).order_by(r.c.id).limit(limit))
    if after is not None:
        stmt = stmt.where(r.c.id > after)
    return list(conn.execute(stmt).mappings())


def attended_visits(conn: Connection, patient_ids: Sequence[str], since: datetime, until: datetime
                    ) -> list[RowMapping]:
    """Attended clinic visits of these patients with slots in [since, until], latest first."""
    if not patient_ids:
        return []
    stmt = (select(_a.c.id, _a.c.patient_id, _a.c.slot_start, _s.c.department_id)
            .select_from(_a.join(_s, _s.c.id == _a.c.session_id))
            .where(_a.c.patient_id.in_(sorted(set(patient_ids))), _a.c.status == "attended",
                   _s.c.resource_id.is_(None), _a.c.slot_start >= since, _a.c.slot_start <= until)
            .order_by(_a.c.slot_start.desc(), _a.c.id.desc()))
    return list(conn.execute(stmt).mappings())


def add_scores(conn: Connection, rows: list[dict[str, Any]]) -> None:
    insert_rows(conn, scores, rows, "ON CONFLICT (source_kind, source_id) DO NOTHING")


def add_item(conn: Connection, row: dict[str, Any]) -> bool:
    """Insert the item unless its source has one; True when this statement created it."""
    return insert_new(conn, items, row, ("kind", "source_id"))


# --- items ------------------------------------------------------------------------------------

def _item_select() -> Any:
    return (select(items, _d.c.name_zh.label("department_zh"), _d.c.name_en.label("department_en"))
            .select_from(items.outerjoin(_d, _d.c.id == items.c.department_id)))


def item(conn: Connection, item_id: str) -> RowMapping | None:
    if not is_id(item_id):
        return None
    return conn.execute(_item_select().where(items.c.id == item_id)).mappings().first()


def item_list(conn: Connection, *, statuses: Sequence[str] | None, department_id: str | None, kind: str | None,
              assignee_id: str | None, before: str | None, limit: int) -> list[RowMapping]:
    stmt = _item_select().order_by(items.c.id.desc()).limit(limit)
    if statuses is not None:
        stmt = stmt.where(items.c.status.in_(list(statuses)))
    if department_id is not None:
        stmt = stmt.where(items.c.department_id == department_id)
    if kind is not None:
        stmt = stmt.where(items.c.kind == kind)
    if assignee_id is not None:
        stmt = stmt.where(items.c.assignee_id == assignee_id)
    if before is not None:
        stmt = stmt.where(items.c.id < before)
    return list(conn.execute(stmt).mappings())


def set_item(conn: Connection, item_id: str, from_status: Sequence[str], **values: Any) -> bool:
    """A guarded update: only while the item is in one of `from_status`."""
    stmt = update(items).where(items.c.id == item_id, items.c.status.in_(list(from_status))).values(**values)
    return bool(conn.execute(stmt).rowcount)


def item_notes(conn: Connection, item_id: str) -> list[RowMapping]:
    return list(conn.execute(select(notes).where(notes.c.item_id == item_id)
                             .order_by(notes.c.created_at, notes.c.id)).mappings())


def add_note(conn: Connection, row: dict[str, Any]) -> None:
    insert_rows(conn, notes, [row])


def review_text(conn: Connection, review_id: str) -> RowMapping | None:
    return conn.execute(select(_reviews.c.rating, _reviews.c.text).where(_reviews.c.id == review_id)
                        ).mappings().first()


def survey_answers(conn: Connection, response_id: str) -> RowMapping | None:
    return conn.execute(select(_responses.c.answers, _responses.c.survey_period)
                        .where(_responses.c.id == response_id)).mappings().first()


# --- complaints -------------------------------------------------------------------------------

def complaint_by_key(conn: Connection, patient_id: str, key: str) -> RowMapping | None:
    return conn.execute(select(complaints).where(complaints.c.patient_id == patient_id,
                                                 complaints.c.idempotency_key == key)).mappings().first()


def add_complaint(conn: Connection, row: dict[str, Any]) -> bool:
    """False when the patient's idempotency key is taken (by a concurrent request)."""
    if row["idempotency_key"] is None:
        insert_rows(conn, complaints, [row])
        return True
    return insert_new(conn, complaints, row, ("patient_id", "idempotency_key"))


def _complaint_select() -> Any:
    i = items
    return (select(complaints, i.c.id.label("item_id"), i.c.status, i.c.resolution, i.c.closed_at,
                   _d.c.name_zh.label("department_zh"), _d.c.name_en.label("department_en"))
            .select_from(complaints.join(_d, _d.c.id == complaints.c.department_id)
                         .outerjoin(i, (i.c.kind == "complaint") & (i.c.source_id == complaints.c.id))))


def complaint(conn: Connection, complaint_id: str) -> RowMapping | None:
    if not is_id(complaint_id):
        return None
    return conn.execute(_complaint_select().where(complaints.c.id == complaint_id)).mappings().first()


def complaints_of(conn: Connection, patient_id: str, limit: int) -> list[RowMapping]:
    return list(conn.execute(_complaint_select().where(complaints.c.patient_id == patient_id)
                             .order_by(complaints.c.created_at.desc(), complaints.c.id.desc()).limit(limit)).mappings())


def complaint_owners(conn: Connection, complaint_id: str) -> list[str]:
    if not is_id(complaint_id):
        return []
    return [str(v) for v in conn.execute(select(complaints.c.patient_id).where(complaints.c.id == complaint_id))
            .scalars()]


def appointment_of(conn: Connection, appointment_id: str) -> RowMapping | None:
    if not is_id(appointment_id):
        return None
    stmt = (select(_a.c.id, _a.c.patient_id, _a.c.slot_start, _a.c.status, _s.c.department_id)
            .select_from(_a.join(_s, _s.c.id == _a.c.session_id)).where(_a.c.id == appointment_id))
    return conn.execute(stmt).mappings().first()


def department(conn: Connection, department_id: str) -> RowMapping | None:
    if not is_id(department_id):
        return None
    return conn.execute(select(_d).where(_d.c.id == department_id)).mappings().first()


def departments(conn: Connection) -> list[RowMapping]:
    return list(conn.execute(select(_d).order_by(_d.c.name_zh, _d.c.id)).mappings())


def recent_visits(conn: Connection, patient_id: str, until: datetime, limit: int) -> list[RowMapping]:
    """The patient's clinic appointments that have begun, latest first, with the department."""
    stmt = (select(_a.c.id, _a.c.slot_start, _a.c.status, _s.c.department_id, _d.c.name_zh, _d.c.name_en)
            .select_from(_a.join(_s, _s.c.id == _a.c.session_id).join(_d, _d.c.id == _s.c.department_id))
            .where(_a.c.patient_id == patient_id, _a.c.slot_start <= until, _a.c.status != "cancelled")
            .order_by(_a.c.slot_start.desc(), _a.c.id.desc()).limit(limit))
    return list(conn.execute(stmt).mappings())


# --- alerts -----------------------------------------------------------------------------------

def window_sums(conn: Connection, start: date, end: date) -> dict[str, tuple[float, int]]:
    """Per department: (sum, count) of the scores of local days start..end."""
    stmt = (select(scores.c.department_id, func.sum(scores.c.score), func.count())
            .where(scores.c.department_id.is_not(None), scores.c.day >= start, scores.c.day <= end)
            .group_by(scores.c.department_id))
    return {str(d): (float(s or 0), int(n)) for d, s, n in conn.execute(stmt)}


def last_alert_ends(conn: Connection) -> dict[str, date]:
    stmt = select(alerts.c.department_id, func.max(alerts.c.window_end)).group_by(alerts.c.department_id)
    return {str(d): e for d, e in conn.execute(stmt)}


def add_alert(conn: Connection, row: dict[str, Any]) -> bool:
    return insert_new(conn, alerts, row, ("department_id", "window_end"))


def alert(conn: Connection, alert_id: str) -> RowMapping | None:
    if not is_id(alert_id):
        return None
    return conn.execute(_alert_select().where(alerts.c.id == alert_id)).mappings().first()


def _alert_select() -> Any:
    return (select(alerts, _d.c.name_zh.label("department_zh"), _d.c.name_en.label("department_en"))
            .select_from(alerts.join(_d, _d.c.id == alerts.c.department_id)))


def alert_list(conn: Connection, status: str | None, limit: int) -> list[RowMapping]:
    stmt = _alert_select().order_by(alerts.c.raised_at.desc(), alerts.c.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(alerts.c.status == status)
    return list(conn.execute(stmt).mappings())


def acknowledge_alert(conn: Connection, alert_id: str, by: str, now: datetime) -> bool:
    stmt = (update(alerts).where(alerts.c.id == alert_id, alerts.c.status == "open")
            .values(status="acknowledged", acknowledged_by=by, acknowledged_at=now))
    return bool(conn.execute(stmt).rowcount)


# --- the dashboard ----------------------------------------------------------------------------

def open_counts(conn: Connection, department_id: str | None) -> list[tuple[str | None, str, int]]:
    """(department, kind, open items)."""
    stmt = (select(items.c.department_id, items.c.kind, func.count())
            .where(items.c.status.in_(OPEN_STATUSES)).group_by(items.c.department_id, items.c.kind))
    if department_id is not None:
        stmt = stmt.where(items.c.department_id == department_id)
    return [(d, str(k), int(n)) for d, k, n in conn.execute(stmt)]


def closed_since(conn: Connection, since: datetime, department_id: str | None) -> list[RowMapping]:
    stmt = (select(items.c.department_id, items.c.created_at, items.c.closed_at)
            .where(items.c.status == "closed", items.c.closed_at >= since))
    if department_id is not None:
        stmt = stmt.where(items.c.department_id == department_id)
    return list(conn.execute(stmt).mappings())


def created_since(conn: Connection, since: datetime, department_id: str | None) -> list[RowMapping]:
    stmt = select(items.c.kind, items.c.created_at).where(items.c.created_at >= since)
    if department_id is not None:
        stmt = stmt.where(items.c.department_id == department_id)
    return list(conn.execute(stmt).mappings())


def daily_scores(conn: Connection, start: date, end: date, department_id: str | None
                 ) -> list[tuple[date, float, int]]:
    stmt = (select(scores.c.day, func.sum(scores.c.score), func.count())
            .where(scores.c.day >= start, scores.c.day <= end).group_by(scores.c.day))
    if department_id is not None:
        stmt = stmt.where(scores.c.department_id == department_id)
    return [(d if isinstance(d, date) else date.fromisoformat(str(d)), float(s or 0), int(n))
            for d, s, n in conn.execute(stmt)]


def department_scores(conn: Connection, start: date, end: date) -> dict[str | None, tuple[float, int]]:
    stmt = (select(scores.c.department_id, func.sum(scores.c.score), func.count())
            .where(scores.c.day >= start, scores.c.day <= end).group_by(scores.c.department_id))
    return {d: (float(s or 0), int(n)) for d, s, n in conn.execute(stmt)}
