"""The waitlist (候补): patients queue for a full session; a freed slot goes to the
first one waiting and never back to the open pool while anyone waits.

Far enough ahead (`waitlist_confirm_hours`, default 24 h before the slot) the
slot is booked for the waiting patient at once and they are told. Closer to
the slot it is held for them as an offer they confirm within
`waitlist_offer_minutes`; an offer that lapses, or that they decline, passes
to the next in line. An offer never confirmed books nothing, so it can never
turn into a no-show penalty. A waiting patient whom the booking limits no
longer admit (they booked elsewhere that day) is skipped and told."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.kit.bulk import savepoint
from carepoints.kit.errors import AppError
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.ledger.posting import Poster
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.scheduling import booking
from carepoints.scheduling import repository as repo
from carepoints.scheduling.errors import (
    AlreadyBookedError,
    AlreadyWaitingError,
    IdempotencyConflictError,
    NotFullError,
    NotOpenError,
    OfferExpiredError,
    PatientInactiveError,
    SessionCancelledError,
    SessionNotFoundError,
    SessionStartedError,
    WaitlistEntryNotFoundError,
    WaitlistStateError,
)
from carepoints.scheduling.schemas import WaitlistJoin
from carepoints.scheduling.slots import usable_pools

_TOPIC = "appointment.waitlist"


def _doc(conn: Connection, row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    live = row["status"] in repo.WAITING
    return {"id": row["id"], "session_id": row["session_id"], "patient_id": row["patient_id"],
            "channel": row["channel"], "status": row["status"], "joined_at": booking.local(row["joined_at"]),
            "position": repo.position(conn, row) if live else None,  # type: ignore[arg-type]
            "offer_expires_at": booking.local(row["offer_expires_at"]) if row["offer_expires_at"] else None,
            "appointment_id": row["appointment_id"]}


def _entry(conn: Connection, entry_id: str) -> RowMapping:
    row = repo.get(conn, repo.waitlist, entry_id, lock=True) if is_id(entry_id) else None
    if row is None:
        raise WaitlistEntryNotFoundError()
    return row


def read(session: Session, entry_id: str) -> dict[str, Any]:
    conn = session.connection()
    row = repo.get(conn, repo.waitlist, entry_id) if is_id(entry_id) else None
    if row is None:
        raise WaitlistEntryNotFoundError()
    return _doc(conn, row)


def join(session: Session, session_id: str, data: WaitlistJoin, now: datetime) -> tuple[dict[str, Any], bool]:
    """Queue for a session that has no free slot for the channel. Idempotent on the key."""
    conn = session.connection()
    patient = patients.lock(session, data.patient_id)
    if patient is None:
        raise PatientNotFoundError()
    if patient.status != "active":
        raise PatientInactiveError()
    prior = repo.entry_by_key(conn, data.patient_id, data.idempotency_key)
    if prior is not None:
        if prior["session_id"] != session_id or prior["channel"] != data.channel:
            raise IdempotencyConflictError()
        return _doc(conn, prior), False
    sess = repo.get(conn, repo.sessions, session_id, lock=True) if is_id(session_id) else None
    if sess is None:
        raise SessionNotFoundError()
    if sess["status"] != "open":
        raise SessionCancelledError()
    if sess["release_at"] > now:
        raise NotOpenError(release_at=booking.local(sess["release_at"]))
    if sess["ends_at"] <= now:
        raise SessionStartedError()
    if repo.live_in_session(conn, session_id, data.patient_id):
        raise AlreadyBookedError()
    if repo.live_entry(conn, session_id, data.patient_id) is not None:
        raise AlreadyWaitingError()
    pools = usable_pools(data.channel, sess["day"], booking.local_day(now),
                         referral_released=sess["referral_release_at"] <= now)
    free = repo.free_counts(conn, [session_id], now)[session_id]
    if any(free[p] for p in pools):
        raise NotFullError()
    row = {"id": new_id(), "session_id": session_id, "patient_id": data.patient_id, "channel": data.channel,
           "referral_id": data.referral_id, "status": "waiting", "idempotency_key": data.idempotency_key,
           "joined_at": now, "offered_at": None, "offer_expires_at": None, "slot_id": None, "appointment_id": None,
           "closed_at": None}
    try:
        with savepoint(conn):
            repo.add(conn, repo.waitlist, row)
    except IntegrityError as exc:  # the live-entry index caught a race
        raise AlreadyWaitingError() from exc
    return _doc(conn, row), True


def lock_people(session: Session, now: datetime, patient_ids: set[str]) -> None:
    """Lock patients, then their wallets, each in key order, as every use case that
    touches two patients (a cancellation handing its slot to a waiting patient) must."""
    for pid in sorted(patient_ids):
        patients.lock(session, pid)
    Poster(session, now).lock_patients(patient_ids)


def pass_on(session: Session, sess: RowMapping, slot_id: str, now: datetime) -> str | None:
    """A slot of `sess` was freed: serve the waitlist with it. Returns the entry served
    (booked or offered), or None when nobody waits and the slot is back in the pool."""
    conn = session.connection()
    settings = get_settings()
    slot = repo.get(conn, repo.slots, slot_id)
    assert slot is not None  # noqa: S101 - the caller's slot
    if slot["starts_at"] <= now or sess["status"] != "open":
        return None
    while (entry := repo.first_waiting(conn, sess["id"])) is not None:
        if slot["starts_at"] - now >= timedelta(hours=settings.waitlist_confirm_hours):
            if _book_for(session, sess, slot, entry, now, held=False):
                return str(entry["id"])
            continue
        expires = min(now + timedelta(minutes=settings.waitlist_offer_minutes), slot["starts_at"])
        repo.hold(conn, slot_id, entry["id"])
        repo.set_entry(conn, entry["id"], status="offered", offered_at=now, offer_expires_at=expires,
                       slot_id=slot_id)
        enqueue_many(conn, [(_TOPIC, entry["patient_id"], {
            "patient_id": entry["patient_id"], "entry_id": entry["id"], "event": "offered"})], now)
        return str(entry["id"])
    return None


def _book_for(session: Session, sess: RowMapping, slot: RowMapping, entry: RowMapping, now: datetime,
              *, held: bool) -> bool:
    """Book `slot` for the waiting patient of `entry`; False (entry skipped) when their
    limits no longer admit it."""
    conn = session.connection()
    pid = entry["patient_id"]
    aid = new_id()
    try:
        with savepoint(conn):
            patient = patients.lock(session, pid)
            if patient is None or patient.status != "active":
                raise PatientInactiveError()
            guard, rank = booking.limits(conn, pid, sess)
            claimed = repo.take_held(conn, slot["id"], entry["id"], aid) if held else \
                repo.claim_slot(conn, slot["id"], sess["id"], aid, ("online", "onsite", "referral"))
            if claimed is None:
                raise WaitlistStateError()
            booking.record(session, sess, claimed, now, id=aid, patient_id=pid, clinician_guard=guard,
                           day_rank=rank, channel=entry["channel"], referral_id=entry["referral_id"],
                           booked_by="patient", idempotency_key=f"waitlist:{entry['id']}",
                           request_hash=f"waitlist:{entry['id']}")
    except AppError:
        repo.set_entry(conn, entry["id"], status="skipped", closed_at=now)
        if held:
            repo.hold(conn, slot["id"], None)
        enqueue_many(conn, [(_TOPIC, pid, {"patient_id": pid, "entry_id": entry["id"], "event": "skipped"})], now)
        return False
    repo.set_entry(conn, entry["id"], status="booked", appointment_id=aid, slot_id=slot["id"], closed_at=now)
    enqueue_many(conn, [(_TOPIC, pid, {"patient_id": pid, "entry_id": entry["id"], "event": "booked",
                                       "appointment_id": aid})], now)
    return True


def confirm(session: Session, entry_id: str, now: datetime) -> dict[str, Any]:
    """The patient takes the slot offered to them (before the offer lapses)."""
    conn = session.connection()
    entry = _entry(conn, entry_id)
    if entry["status"] == "booked":
        return _doc(conn, entry)
    if entry["status"] != "offered":
        raise WaitlistStateError()
    if now >= entry["offer_expires_at"]:
        raise OfferExpiredError()
    sess = repo.get(conn, repo.sessions, entry["session_id"])
    slot = repo.get(conn, repo.slots, entry["slot_id"])
    assert sess is not None  # noqa: S101 - foreign keys
    assert slot is not None  # noqa: S101
    if not _book_for(session, sess, slot, entry, now, held=True):
        pass_on(session, sess, slot["id"], now)  # their limits no longer admit it: the next one
    return read(session, entry_id)


def decline(session: Session, entry_id: str, now: datetime) -> dict[str, Any]:
    """The patient leaves the waitlist (or turns down an offer, which passes on)."""
    conn = session.connection()
    entry = _entry(conn, entry_id)
    if entry["status"] not in repo.WAITING:
        if entry["status"] in ("declined", "cancelled"):
            return _doc(conn, entry)
        raise WaitlistStateError()
    _close(session, entry, "declined", now)
    return read(session, entry_id)


def _close(session: Session, entry: RowMapping, status: str, now: datetime) -> None:
    conn = session.connection()
    repo.set_entry(conn, entry["id"], status=status, closed_at=now)
    if entry["status"] == "offered" and entry["slot_id"]:
        repo.hold(conn, entry["slot_id"], None)
        sess = repo.get(conn, repo.sessions, entry["session_id"])
        assert sess is not None  # noqa: S101
        pass_on(session, sess, entry["slot_id"], now)


def expire_offers(session: Session, now: datetime, limit: int = 200) -> int:
    """Offers not confirmed in time lapse (no penalty) and their slots pass on."""
    conn = session.connection()
    done = 0
    for entry_id in repo.lapsed_offers(conn, now, limit):
        entry = _entry(conn, entry_id)
        if entry["status"] != "offered":
            continue
        _close(session, entry, "lapsed", now)
        enqueue_many(conn, [(_TOPIC, entry["patient_id"], {
            "patient_id": entry["patient_id"], "entry_id": entry["id"], "event": "lapsed"})], now)
        done += 1
    return done


def close_session(session: Session, session_id: str, now: datetime) -> None:
    """停诊: everyone waiting for the session is told and the entries closed."""
    conn = session.connection()
    for entry in repo.live_entries_of_session(conn, session_id):
        repo.set_entry(conn, entry["id"], status="cancelled", closed_at=now)
        if entry["slot_id"] and entry["status"] == "offered":
            repo.hold(conn, entry["slot_id"], None)
        enqueue_many(conn, [(_TOPIC, entry["patient_id"], {
            "patient_id": entry["patient_id"], "entry_id": entry["id"], "event": "session_cancelled"})], now)
