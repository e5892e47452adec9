"""Health readings: the patient's upload (validated, converted, handed to the spine as
`health.measurement`), the observer that stores every accepted reading whichever path
it took and flags abnormal ones, and the trend. Values are health data: never logged,
never in an outbox payload, an error message or an audit row."""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import fmean
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import Settings, get_settings
from carepoints.engagement import spine
from carepoints.engagement.care import service as care
from carepoints.engagement.care.models import CareAlert
from carepoints.engagement.care.schemas import AlertKind
from carepoints.engagement.health.errors import HealthConsentMissingError, TakenInFutureError, TakenTooLongAgoError
from carepoints.engagement.health.models import HealthMeasurement
from carepoints.engagement.health.schemas import SELF_MONITORING, MeasurementCreate
from carepoints.events.models import Event
from carepoints.kit.bulk import fetch, insert_rows, marks
from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import day_start_utc, local_date
from carepoints.rules import service as rules

CLOCK_SKEW = timedelta(minutes=1)  # a device clock slightly ahead is not "the future"
_readings = table(HealthMeasurement)
_alerts = table(CareAlert)
_events = table(Event)


# --- recording a reading ---------------------------------------------------------------

def record(session: Session, patient_id: str, data: MeasurementCreate, actor: Actor,
           now: datetime) -> tuple[dict[str, Any], bool]:
    """Ingest one reading as a `health.measurement` event in this transaction; the observer
    below stores it. The same idempotency key again answers the same outcome (created False);
    with a different payload it is the spine's 409 `events.conflict`. A new reading is
    audited (ids only)."""
    if data.taken_at > now + CLOCK_SKEW:
        raise TakenInFutureError()
    if not consenting(session, [patient_id]):
        raise HealthConsentMissingError()
    max_age = rules.programmes(session).at(now).settings.max_event_age_days
    if now - data.taken_at > timedelta(days=max_age):
        raise TakenTooLongAgoError()
    attrs: dict[str, Any] = {"kind": data.kind, "provenance": data.provenance}
    if data.kind == "blood_pressure":
        attrs.update(systolic=data.systolic, diastolic=data.diastolic)
        if data.pulse is not None:
            attrs["pulse"] = data.pulse
    else:
        attrs["glucose_mmol_l"] = data.glucose_mmol_l
    if data.device_id is not None:
        attrs["device_id"] = data.device_id
    key = f"measurement:{patient_id}:{data.idempotency_key}" if data.idempotency_key else f"measurement:{new_id()}"
    result = spine.emit(session, "health.measurement", patient_id, data.taken_at, now, key, attrs)
    event_id = result["event_id"]
    alert = session.connection().execute(select(_alerts.c.id).where(
        _alerts.c.kind == AlertKind.abnormal_reading.value, _alerts.c.source_ref == event_id)).scalar()
    doc = {"reading": reading_by_event(session, event_id), "event_id": event_id,
           "duplicate": bool(result.get("duplicate")), "awards": result.get("awards", []),
           "notices": result.get("notices", []), "balance": result.get("balance"),
           "alert": {"id": alert} if alert else None}
    if not doc["duplicate"]:
        audit.record(session, actor, "health:measurement:record", now, subject_id=event_id, patient_id=patient_id,
                     kind=data.kind, provenance=data.provenance)
    return doc, not doc["duplicate"]


def consenting(session: Session, patient_ids: list[str]) -> set[str]:
    """The patients among these who consent to the processing of health data (PIPL) now."""
    conn = session.connection()
    unique = sorted(set(patient_ids))
    sql = ("SELECT DISTINCT patient_id FROM consents WHERE purpose = 'health_data' AND withdrawn_at IS NULL "  # noqa: S608
           f"AND patient_id IN ({marks(conn, len(unique))})")
    return {r[0] for r in fetch(conn, sql, unique)}


def reading_by_event(session: Session, event_id: str) -> dict[str, Any] | None:
    row = session.connection().execute(select(_readings).where(_readings.c.event_id == event_id)).mappings().first()
    return None if row is None else _doc(row, get_settings())


def _doc(row: Any, settings: Settings) -> dict[str, Any]:
    doc = {"id": row["id"], "event_id": row["event_id"], "kind": row["kind"],
           "taken_at": row["taken_at"].astimezone(settings.tz).isoformat(), "local_day": row["local_day"].isoformat(),
           "provenance": row["provenance"], "abnormal": bool(row["abnormal"]),
           "reasons": row["reasons"].split(",") if row["reasons"] else []}
    if row["kind"] == "blood_pressure":
        doc.update(systolic=row["systolic"], diastolic=row["diastolic"], pulse=row["pulse"])
    else:
        doc["glucose_mmol_l"] = row["glucose_mmol_l"]
    return doc


# --- the observer: every accepted reading ------------------------------------------------

def abnormal_reasons(attrs: dict[str, Any], settings: Settings) -> list[str]:
    """The reason codes that make a reading abnormal (thresholds inclusive)."""
    reasons = []
    if attrs.get("kind") == "blood_pressure":
        if (attrs.get("systolic") or 0) >= settings.alert_sbp:
            reasons.append("sbp_high")
        if (attrs.get("diastolic") or 0) >= settings.alert_dbp:
            reasons.append("dbp_high")
    else:
        glucose = attrs.get("glucose_mmol_l")
        if glucose is not None and glucose >= settings.alert_glucose_high:
            reasons.append("glucose_high")
        if glucose is not None and glucose <= settings.alert_glucose_low:
            reasons.append("glucose_low")
    return reasons


def _variant(reasons: list[str]) -> str:
    if "glucose_low" in reasons:
        return "glucose_low"
    return "glucose_high" if "glucose_high" in reasons else "bp_high"


def store_readings(session: Session, rows: list[dict[str, Any]], now: datetime) -> None:
    """Observer of `health.measurement`: one consent query and one multi-row insert per
    batch, no per-row query; readings of patients without health-data consent are not
    kept (the spine still judges the event); a care alert and one advice message for each
    abnormal reading that is recent (a backfill of old readings from the HIS alerts nobody)."""
    settings = get_settings()
    tz = settings.tz
    allowed = consenting(session, [r["patient_id"] for r in rows])
    rows = [r for r in rows if r["patient_id"] in allowed]  # no health-data consent: not processed here
    if not rows:
        return
    readings: list[dict[str, Any]] = []
    flagged: list[tuple[dict[str, Any], list[str]]] = []
    for row in rows:
        attrs = row["attributes"]
        reasons = abnormal_reasons(attrs, settings)
        taken = row["occurred_at"]
        readings.append({
            "id": new_id(), "event_id": row["id"], "patient_id": row["patient_id"], "kind": attrs["kind"],
            "systolic": attrs.get("systolic"), "diastolic": attrs.get("diastolic"), "pulse": attrs.get("pulse"),
            "glucose_mmol_l": attrs.get("glucose_mmol_l"), "provenance": attrs["provenance"],
            "self_monitored": attrs["provenance"] in SELF_MONITORING, "taken_at": taken,
            "local_day": local_date(taken, tz), "abnormal": bool(reasons), "reasons": ",".join(reasons) or None,
            "created_at": now})
        if reasons and now - taken <= timedelta(hours=settings.alert_reading_max_age_hours):
            flagged.append((row, reasons))
    insert_rows(session.connection(), _readings, readings)
    advice = []
    for row, reasons in flagged:
        alert_id = care.raise_alert(session, patient_id=row["patient_id"], kind=AlertKind.abnormal_reading,
                                    source_ref=row["id"], now=now, severity="high",
                                    details={"event_id": row["id"], "reasons": reasons})
        if alert_id is not None:
            advice.append(("health.advice", row["patient_id"],
                           {"patient_id": row["patient_id"], "event_id": row["id"], "variant": _variant(reasons)}))
    enqueue_many(session.connection(), advice, now)


# --- the trend ---------------------------------------------------------------------------

def trend(session: Session, patient_id: str, days: int, kind: str | None, now: datetime) -> dict[str, Any]:
    """Readings of the last `days` local days (today included) in local time, oldest first,
    with per-day summaries; readings whose event was revoked are left out."""
    settings = get_settings()
    first_day = local_date(now, settings.tz) - timedelta(days=days - 1)
    stmt = (select(_readings).join(_events, _events.c.id == _readings.c.event_id)
            .where(_readings.c.patient_id == patient_id, _events.c.status == "accepted",
                   _readings.c.taken_at >= day_start_utc(first_day, settings.tz))
            .order_by(_readings.c.taken_at, _readings.c.id))
    if kind is not None:
        stmt = stmt.where(_readings.c.kind == kind)
    items = [_doc(r, settings) for r in session.connection().execute(stmt).mappings()] if is_id(patient_id) else []
    return {"patient_id": patient_id, "days": days, "from": first_day.isoformat(), "kind": kind, "readings": items,
            "summaries": _summaries(items), "abnormal": sum(1 for i in items if i["abnormal"])}


def _summaries(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_day: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in items:
        by_day.setdefault((item["local_day"], item["kind"]), []).append(item)
    out = []
    for (day, kind), group in by_day.items():
        fields = ("systolic", "diastolic", "pulse") if kind == "blood_pressure" else ("glucose_mmol_l",)
        stats: dict[str, Any] = {}
        for f in fields:
            values = [g[f] for g in group if g.get(f) is not None]
            if values:
                stats[f] = {"min": min(values), "max": max(values), "mean": round(fmean(values), 1)}
        out.append({"day": day, "kind": kind, "count": len(group),
                    "abnormal": sum(1 for g in group if g["abnormal"]), **stats})
    return out
