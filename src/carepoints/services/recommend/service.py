"""Recommendation use cases: a patient's recommendations (gather the snapshot, run the pure
engine with the rules in force), and the per-patient switch.

Health data: registered conditions, readings and medication plans are used only with the
patient's `health_data` consent (without it the suggestions rest on behaviour alone, and the
answer says so: `uses_health_data: false`). Explanations name a condition only to the patient
and those allowed to read their record; audit rows carry ids and the switch's value, nothing else.

The switch is one row per patient (primary key); no row = on. Setting it is idempotent: the
row is inserted if missing (one statement), then a guarded UPDATE changes it only when it
differs, so of concurrent requests asking the same exactly one changes it and writes the audit
row (`recommend:settings:update`); the others answer `changed: false`. Staff reads of a
patient's recommendations are audited (`recommend:recommendations:view`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.engagement.health import conditions as registry
from carepoints.engagement.health import medication
from carepoints.engagement.health.service import CHECKS
from carepoints.enrolment.privacy import has_consent
from carepoints.kit.time import day_start_utc, iso_z, local_date
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.services.recommend import engine, repository, rules
from carepoints.services.recommend.rules import Signal, Task


def patient_id(session: Session, patient_id: str | None, ref: Any = None) -> str:
    """The patient a request names (by id or external reference), who must exist."""
    pid = patients.named(session, patient_id, ref)
    if not patients.exists(session, pid):
        raise PatientNotFoundError()
    return pid


def _profile(session: Session, pid: str) -> Any:
    row = repository.profile(session, pid)
    if row is None:
        raise PatientNotFoundError()
    return row


def _open_doses(session: Session, pid: str, today: date) -> int:
    """Planned doses of today's active plans not checked in (two queries, whatever the plans)."""
    tz = get_settings().tz
    plans = medication.plans_of(session, pid, include_stopped=False)
    if not plans:
        return 0
    start, end = day_start_utc(today, tz), day_start_utc(today + timedelta(days=1), tz)
    doses = medication.doses_on(session, [p["id"] for p in plans], start, end)
    n = 0
    for plan in plans:
        row = {**plan, "start_date": date.fromisoformat(plan["start_date"]),
               "end_date": date.fromisoformat(plan["end_date"]) if plan["end_date"] else None}
        for instant in medication.planned(row, today, tz):
            dose = doses.get((plan["id"], instant))
            n += dose is None or dose["taken_at"] is None
    return n


def _content(rows: list[Any]) -> tuple[engine.ContentItem, ...]:
    return tuple(engine.ContentItem(
        id=r["id"], title_zh=str(r["title"].get("zh") or ""), title_en=r["title"].get("en"),
        conditions=frozenset(v for k, v in r["labels"] if k == "condition"),
        tags=frozenset(v for k, v in r["labels"] if k == "tag"), completed=bool(r["completed"])) for r in rows)


def _lectures(rows: list[Any]) -> tuple[engine.LectureItem, ...]:
    return tuple(engine.LectureItem(
        id=r["id"], title_zh=str(r["title"].get("zh") or ""), title_en=r["title"].get("en"),
        seats_left=int(r["seats"]) - int(r["taken"]), registered=r["registration"] in ("registered", "attended"))
        for r in rows)


def snapshot(session: Session, pid: str, now: datetime, doc: rules.RulesDoc, *,
             enabled: bool = True) -> tuple[engine.Snapshot, bool]:
    """The patient's plain snapshot for the engine and whether it used health data."""
    if not enabled:
        return engine.Snapshot(enabled=False), False
    tz = get_settings().tz
    today = local_date(now, tz)
    signals = repository.counts(session, pid, today - timedelta(days=doc.window_days), today)
    health = has_consent(session, pid, "health_data")
    codes: frozenset[str] = frozenset()
    open_tasks: set[str] = set()
    if signals["followups_open"]:
        open_tasks.add(Task.followup)
    if health:
        codes = frozenset(registry.active_codes(session, pid))
        week = repository.readings(session, pid, day_start_utc(today - timedelta(days=6), tz))
        signals[Signal.readings_7d] = sum(n for _k, _d, n in week)
        measured_today = {kind for kind, day, _n in week if day == today}
        for condition, (task, kind, _zh, _en) in CHECKS.items():
            if condition in codes and kind not in measured_today:
                open_tasks.add(task)
        signals[Signal.medication_open_today] = _open_doses(session, pid, today)
        if signals[Signal.medication_open_today]:
            open_tasks.add(Task.medication)
    items = repository.education(session, pid, codes, doc.tags())
    lectures = repository.lectures(session, pid, now)
    return engine.Snapshot(enabled=True, health_data=health, conditions=codes, signals=signals,
                           open_tasks=frozenset(open_tasks),
                           content=_content(items), lectures=_lectures(lectures)), health


def recommendations(session: Session, pid: str, now: datetime, *, limit: int | None = None,
                    elderly: bool | None = None, viewer: Actor | None = None) -> dict[str, Any]:
    """The patient's recommendations, best first: at most `limit`, else the rules' number (fewer
    in elderly mode: `elderly`, else the patient's stored setting). Switched off, or the record
    closed or the patient deceased: none, and nothing about the patient is read beyond that.
    `viewer` (staff) is audited."""
    doc = rules.current()
    row = _profile(session, pid)
    enabled = row["enabled"] is not False
    snap, health = snapshot(session, pid, now, doc, enabled=enabled and row["status"] == "active")
    if limit is None:
        limit = doc.elderly_items if (row["elderly_mode"] if elderly is None else elderly) else doc.items
    items = engine.recommend(snap, doc, limit=limit)
    if viewer is not None:
        audit.record(session, viewer, "recommend:recommendations:view", now, patient_id=pid, items=len(items))
    return {"patient_id": pid, "enabled": enabled, "uses_health_data": health, "rules_version": doc.version,
            "items": [r.as_dict() for r in items],
            "disclaimer": {"zh": doc.disclaimer.zh, "en": doc.disclaimer.en}}


def _setting_doc(pid: str, row: Any) -> dict[str, Any]:
    return {"patient_id": pid, "enabled": row["enabled"] is not False,
            "updated_at": iso_z(row["updated_at"]) if row["updated_at"] is not None else None}


def setting(session: Session, pid: str) -> dict[str, Any]:
    """Whether the patient's recommendations are on (never set: on)."""
    return _setting_doc(pid, _profile(session, pid))


def switch(session: Session, pid: str, enabled: bool, actor: Actor, now: datetime) -> dict[str, Any]:
    """Turn the patient's recommendations on or off. The same value again changes nothing
    (`changed: false`, no audit row); a change is audited `recommend:settings:update` with the
    value only. Concurrent requests: the database decides, exactly one of those asking the same
    change reports it."""
    _profile(session, pid)
    repository.ensure_setting(session, pid, now)
    changed = repository.flip(session, pid, enabled, now)
    if changed:
        audit.record(session, actor, "recommend:settings:update", now, patient_id=pid, enabled=enabled)
    return {**_setting_doc(pid, _profile(session, pid)), "changed": changed}
