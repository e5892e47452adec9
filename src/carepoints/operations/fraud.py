"""Fraud signals: detection (the `detect-fraud` job) and the review queue.

Detection never touches ingest's hot path and never penalises: it reads the events
table after the fact, in id order (UUIDv7, so reception order) from a stored cursor,
one bounded batch per transaction, and raises candidate signals (operations.fraud_rules)
with INSERT ... ON CONFLICT DO NOTHING on the unique (kind, subject_key, window_key):
re-runs, overlapping batches and concurrent runs raise each signal exactly once. Only
ids older than a margin are read (as audit sealing does), so an ingest that took an id
before the horizon has committed when the scan passes it. Each batch is read with the
events received up to `fraud_lookback_hours` before it, so a window that spans two runs
is judged whole.

Review: a reviewer dismisses a signal or acts on it — freeze the earning of its patients
(patients.service.set_earning_frozen; ingest then awards nothing, notice
`rules.earning_frozen`) and/or revoke its events (events.service.revoke, reason
`fraud:<signal id>`). One guarded UPDATE open → dismissed/actioned decides concurrent
reviews (the second answers 409 `fraud.already_reviewed`). Every review and freeze is
audited with ids and codes only; a patient whose earning is frozen or resumed is told
through the outbox (`points.earning_frozen` / `points.earning_resumed`). The reviewer's
note stays on the signal, never in the audit log."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.sealing import id_horizon
from carepoints.audit.service import Actor
from carepoints.config import Settings, get_settings
from carepoints.events import service as events
from carepoints.events.models import Event
from carepoints.kit.bulk import upsert
from carepoints.kit.db import Base, table, write_tx
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import as_utc, day_start_utc, local_date, utc_now
from carepoints.ledger.posting import Poster
from carepoints.operations import fraud_rules as rules
from carepoints.operations.errors import (
    FraudEventNotInSignalError,
    FraudNothingToActOnError,
    FraudPatientNotInSignalError,
    FraudSignalNotFoundError,
    FraudSignalReviewedError,
)
from carepoints.operations.models import FraudScanCursor, FraudSignal
from carepoints.patients import service as patients
from carepoints.patients.models import Patient

SCANNER = "events"
KINDS = ("velocity", "repeated_reading", "implausible_reading", "staff_outlier", "shared_phone", "shared_device")
STATUSES = ("open", "dismissed", "actioned")
ACTIONS = ("dismiss", "freeze", "revoke_events", "freeze_and_revoke")
_CHUNK = 500

_events = table(Event)
_signals = table(FraudSignal)
_cursors = table(FraudScanCursor)
_patients = table(Patient)
_EV_COLS = (_events.c.id, _events.c.type, _events.c.patient_id, _events.c.occurred_at, _events.c.received_at,
            _events.c.attributes)


def thresholds(s: Settings) -> rules.Thresholds:
    return rules.Thresholds(
        velocity_events=s.fraud_velocity_events, velocity_minutes=s.fraud_velocity_minutes,
        repeated_readings=s.fraud_repeated_readings, daily_readings=s.fraud_daily_readings,
        jump_minutes=s.fraud_jump_minutes, jump_systolic=s.fraud_jump_systolic, jump_glucose=s.fraud_jump_glucose,
        staff_daily_entries=s.fraud_staff_daily_entries, staff_median_factor=s.fraud_staff_median_factor,
        staff_median_min_entries=s.fraud_staff_median_min_entries,
        shared_phone_patients=s.fraud_shared_phone_patients, shared_device_patients=s.fraud_shared_device_patients,
        shared_kiosk_patients=s.fraud_shared_kiosk_patients)


# --- detection -----------------------------------------------------------------------------

def id_time(event_id: str) -> datetime:
    """The instant a UUIDv7 id was generated (its first 48 bits, milliseconds)."""
    ms = int(event_id[:8] + event_id[9:13], 16)
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _ev(row: Any) -> rules.Ev:
    return rules.Ev(row["id"], row["type"], row["patient_id"], as_utc(row["occurred_at"]),
                    as_utc(row["received_at"]), dict(row["attributes"] or {}))


def _read(session: Session, *where: Any) -> list[rules.Ev]:
    stmt = select(*_EV_COLS).where(_events.c.status != "revoked", *where).order_by(_events.c.id)
    return [_ev(r) for r in session.connection().execute(stmt).mappings()]


def _adjustment_entries(session: Session, since: datetime, until: datetime, s: Settings) -> list[rules.Entry]:
    """Manual adjustments entered in [since, until], when the adjustments table exists
    (read by table name: this module never imports operations.adjustments)."""
    adj: Table | None = Base.metadata.tables.get("adjustments")
    if adj is None:
        return []
    maker = next((adj.c[c] for c in ("maker_id", "created_by_id", "actor_id") if c in adj.c), None)
    at = next((adj.c[c] for c in ("created_at", "requested_at") if c in adj.c), None)
    if maker is None or at is None:
        return []
    rows = session.connection().execute(select(adj.c.id, maker, at).where(at >= since, at <= until))
    return [rules.Entry(str(r[1])[:200], local_date(as_utc(r[2]), s.tz).isoformat(), f"adjustment:{r[0]}")
            for r in rows if r[1]]


def _phone_candidates(session: Session, patient_ids: set[str], now: datetime, s: Settings,
                      t: rules.Thresholds) -> list[rules.Candidate]:
    conn = session.connection()
    phones: set[str] = set()
    ids = sorted(patient_ids)
    for i in range(0, len(ids), _CHUNK):
        phones.update(conn.execute(select(_patients.c.phone_index).where(
            _patients.c.id.in_(ids[i:i + _CHUNK]), _patients.c.phone_index.is_not(None),
            _patients.c.status == "active")).scalars())
    if not phones:
        return []
    by_phone: dict[str, list[str]] = {}
    listed = sorted(phones)
    for i in range(0, len(listed), _CHUNK):
        for phone, pid in conn.execute(select(_patients.c.phone_index, _patients.c.id).where(
                _patients.c.phone_index.in_(listed[i:i + _CHUNK]), _patients.c.status == "active")):
            by_phone.setdefault(phone, []).append(pid)
    month = local_date(now, s.tz).strftime("%Y-%m")
    out = []
    for phone, pids in sorted(by_phone.items()):
        key = "phone:" + hashlib.sha256(phone.encode()).hexdigest()[:40]  # never the blind index itself
        cand = rules.shared_phone(key, pids, month, t)
        if cand is not None:
            out.append(cand)
    return out


def candidates(session: Session, batch: Sequence[rules.Ev], now: datetime, s: Settings) -> list[rules.Candidate]:
    """Every candidate signal a batch of new events gives, read with its look-back context."""
    t = thresholds(s)
    tz = s.tz
    lower = id_horizon(id_time(batch[0].id) - timedelta(hours=s.fraud_lookback_hours))
    upper = batch[-1].id
    in_range = (_events.c.id >= lower, _events.c.id <= upper)
    pids = sorted({e.patient_id for e in batch})
    own: list[rules.Ev] = []
    for i in range(0, len(pids), _CHUNK):
        own.extend(_read(session, *in_range, _events.c.patient_id.in_(pids[i:i + _CHUNK])))
    out = rules.velocity(own, t, tz) + rules.repeated_readings(own, t, tz) + rules.implausible_readings(own, t, tz)
    wide = rules.STAFF_TYPES + rules.DEVICE_TYPES
    shared = _read(session, *in_range, _events.c.type.in_(wide)) if any(e.type in wide for e in batch) else []
    out += rules.shared_devices(shared, batch, t, tz)
    new_staff = rules.staff_entries(batch, tz)
    if new_staff:
        days = {e.day for e in new_staff}
        since = day_start_utc(min(local_date(e.received_at, tz) for e in batch), tz)
        entries = rules.staff_entries(shared, tz) + _adjustment_entries(session, since, now, s)
        out += rules.staff_outliers(entries, days, t)
    out += _phone_candidates(session, set(pids), now, s, t)
    return out


def raise_signals(session: Session, found: Sequence[rules.Candidate], now: datetime) -> list[str]:
    """Insert each candidate unless its (kind, subject_key, window_key) exists: one
    statement each, in key order (concurrent runs wait on the same keys in the same
    order, so they cannot deadlock). Answers the ids of the signals this call raised."""
    conn = session.connection()
    raised: list[str] = []
    for cand in sorted({c.key: c for c in found}.values(), key=lambda c: c.key):
        sid = new_id()
        row: dict[str, Any] = {"id": sid, "kind": cand.kind, "patient_id": cand.patient_id, "staff_id": cand.staff_id,
               "subject_key": cand.subject_key[:240], "window_key": cand.window_key, "details": cand.details,
               "event_ids": cand.event_ids, "status": "open", "raised_at": now}
        stmt = upsert(conn, _signals).values(**row).on_conflict_do_nothing(
            index_elements=["kind", "subject_key", "window_key"]).returning(_signals.c.id)
        if conn.execute(stmt).first() is not None:
            raised.append(sid)
    return raised


def scan_batch(session: Session, now: datetime, s: Settings | None = None) -> dict[str, int]:
    """One batch of `detect-fraud`: the next events after the cursor (older than the
    margin), their signals, the cursor moved on; all in the caller's transaction."""
    s = s or get_settings()
    conn = session.connection()
    cursor = conn.execute(select(_cursors.c.last_event_id).where(_cursors.c.name == SCANNER)).scalar()
    horizon = id_horizon(min(now, utc_now()) - timedelta(seconds=s.fraud_scan_margin_seconds))
    where = [_events.c.id < horizon] + ([_events.c.id > cursor] if cursor else [])
    rows = conn.execute(select(*_EV_COLS).where(*where).order_by(_events.c.id).limit(s.fraud_batch_size)
                        ).mappings().all()
    if not rows:
        return {"events": 0, "signals": 0}
    batch = [_ev(r) for r in rows]  # revoked ones too: they only move the cursor on
    live = _read(session, _events.c.id >= batch[0].id, _events.c.id <= batch[-1].id)
    raised = raise_signals(session, candidates(session, live, now, s), now) if live else []
    stmt = upsert(conn, _cursors).values(name=SCANNER, last_event_id=batch[-1].id, updated_at=now)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["name"], set_={"last_event_id": stmt.excluded.last_event_id, "updated_at": now},
        where=_cursors.c.last_event_id < stmt.excluded.last_event_id))
    return {"events": len(batch), "signals": len(raised)}


# --- the review queue ----------------------------------------------------------------------

def _doc(row: Any) -> dict[str, Any]:
    reviewed = None if row["reviewed_at"] is None else {
        "by": {"kind": row["reviewed_by_kind"], "id": row["reviewed_by_id"]}, "at": row["reviewed_at"],
        "action": row["action"], "note": row["note"]}
    return {"id": row["id"], "kind": row["kind"], "status": row["status"], "patient_id": row["patient_id"],
            "staff_id": row["staff_id"], "subject_key": row["subject_key"], "window": row["window_key"],
            "details": row["details"], "event_ids": list(row["event_ids"] or []), "raised_at": row["raised_at"],
            "review": reviewed}


def _row(session: Session, signal_id: str) -> Any:
    row = session.connection().execute(select(_signals).where(_signals.c.id == signal_id)).mappings().first() \
        if is_id(signal_id) else None
    if row is None:
        raise FraudSignalNotFoundError()
    return row


def signals(session: Session, *, status: str | None = "open", kind: str | None = None, limit: int = 50,
            before: str | None = None) -> dict[str, Any]:
    """The queue, newest first; `before` is the id the previous page ended at (`next`)."""
    stmt = select(_signals).order_by(_signals.c.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(_signals.c.status == status)
    if kind is not None:
        stmt = stmt.where(_signals.c.kind == kind)
    if before is not None:
        stmt = stmt.where(_signals.c.id < before)
    items = [_doc(r) for r in session.connection().execute(stmt).mappings()]
    return {"items": items, "next": items[-1]["id"] if len(items) == limit else None}


def signal(session: Session, signal_id: str) -> dict[str, Any]:
    return _doc(_row(session, signal_id))


def _signal_patients(row: Any) -> set[str]:
    named = {row["patient_id"]} if row["patient_id"] else set()
    return named | {str(p) for p in (row["details"] or {}).get("patient_ids") or []}


def _targets(row: Any, action: str, event_ids: Sequence[str] | None,
             patient_ids: Sequence[str] | None) -> tuple[list[str], list[str]]:
    freeze_ids: list[str] = []
    revoke_ids: list[str] = []
    if action in ("freeze", "freeze_and_revoke"):
        allowed = _signal_patients(row)
        freeze_ids = sorted(set(patient_ids)) if patient_ids else sorted(allowed)
        if not set(freeze_ids) <= allowed:
            raise FraudPatientNotInSignalError()
        if not freeze_ids:
            raise FraudNothingToActOnError()
    if action in ("revoke_events", "freeze_and_revoke"):
        listed = [str(e) for e in row["event_ids"] or []]
        revoke_ids = sorted(set(event_ids)) if event_ids else sorted(listed)
        if not set(revoke_ids) <= set(listed):
            raise FraudEventNotInSignalError()
        if not revoke_ids:
            raise FraudNothingToActOnError()
    return freeze_ids, revoke_ids


def review(session: Session, signal_id: str, action: str, actor: Actor, now: datetime, *,
           event_ids: Sequence[str] | None = None, patient_ids: Sequence[str] | None = None,
           note: str | None = None) -> dict[str, Any]:
    """Close an open signal: dismiss it, or act (freeze the earning of its patients, revoke
    its events, or both). The guarded update open → dismissed/actioned comes first, so of
    two concurrent reviews one acts and the other answers 409. Audited
    (`operations:fraud_signal:<action>`)."""
    row = _row(session, signal_id)
    if row["status"] != "open":
        raise FraudSignalReviewedError()
    freeze_ids, revoke_ids = _targets(row, action, event_ids, patient_ids)
    done = session.connection().execute(update(_signals).where(
        _signals.c.id == signal_id, _signals.c.status == "open").values(
        status="dismissed" if action == "dismiss" else "actioned", reviewed_by_kind=actor.kind,
        reviewed_by_id=actor.id, reviewed_at=now, action=action, note=note))
    if not done.rowcount:
        raise FraudSignalReviewedError()
    frozen = [pid for pid in freeze_ids if _freeze(session, pid, actor, now, "fraud_review", signal_id)]
    revoked = []
    if revoke_ids:  # every owner's wallet up front, in key order, as ingest takes them (no deadlock)
        owners = set(session.connection().execute(
            select(_events.c.patient_id).where(_events.c.id.in_(revoke_ids))).scalars())
        Poster(session, now).lock_patients(owners)
    for eid in revoke_ids:
        result = events.revoke(session, now=now, reason=f"fraud:{signal_id}", event_id=eid)
        revoked.append({"event_id": eid, "points": sum(int(r["points"]) for r in result.get("reversed") or [])})
    audit.record(session, actor, f"operations:fraud_signal:{action}", now, subject_id=signal_id,
                 patient_id=row["patient_id"], kind=row["kind"], frozen=frozen, revoked=revoke_ids,
                 patients=freeze_ids if len(freeze_ids) > 1 else None)
    return {**signal(session, signal_id), "outcome": {"frozen": frozen, "revoked": revoked}}


# --- freezing earning ----------------------------------------------------------------------

def _freeze(session: Session, patient_id: str, actor: Actor, now: datetime, reason: str,
            signal_id: str | None) -> bool:
    changed = patients.set_earning_frozen(session, patient_id, True, now)
    if changed:
        audit.record(session, actor, "operations:earning:freeze", now, subject_id=patient_id, patient_id=patient_id,
                     reason=reason, signal_id=signal_id)
        enqueue_many(session.connection(), [("points.earning_frozen", patient_id, {"patient_id": patient_id})], now)
    return changed


def _state(session: Session, patient_id: str) -> dict[str, Any]:
    at = session.connection().execute(select(_patients.c.earning_frozen_at).where(
        _patients.c.id == patient_id)).scalar()
    return {"patient_id": patient_id, "earning_frozen": at is not None, "frozen_at": at}


def freeze(session: Session, patient_id: str, actor: Actor, now: datetime, *, reason: str = "fraud_review",
           signal_id: str | None = None) -> dict[str, Any]:
    """Freeze the patient's earning (again: unchanged, `changed` false, nothing sent twice).
    A named signal must exist. Audited; the patient is told."""
    if signal_id is not None:
        _row(session, signal_id)
    changed = _freeze(session, patient_id, actor, now, reason, signal_id)
    return {**_state(session, patient_id), "changed": changed}


def unfreeze(session: Session, patient_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """Let the patient earn again from now (events ingested while frozen stay unawarded).
    Audited; the patient is told. Not frozen: unchanged, `changed` false."""
    changed = patients.set_earning_frozen(session, patient_id, False, now)
    if changed:
        audit.record(session, actor, "operations:earning:unfreeze", now, subject_id=patient_id,
                     patient_id=patient_id)
        enqueue_many(session.connection(), [("points.earning_resumed", patient_id, {"patient_id": patient_id})], now)
    return {**_state(session, patient_id), "changed": changed}


def detect(now: datetime, *, max_batches: int = 100) -> dict[str, Any]:
    """`detect-fraud`: batches of `scan_batch`, each in its own transaction, until the
    events older than the margin are read (or `max_batches`; the next run goes on)."""
    s = get_settings()
    total = {"events": 0, "signals": 0, "batches": 0}
    for _ in range(max_batches):
        with write_tx() as session:
            done = scan_batch(session, now, s)
        if not done["events"]:
            break
        total["events"] += done["events"]
        total["signals"] += done["signals"]
        total["batches"] += 1
        if done["events"] < s.fraud_batch_size:
            break
    return total
