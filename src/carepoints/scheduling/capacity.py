"""Changing how many slots a session or a weekly template has (号源数量), e.g. when the programme
admin applies a demand forecast's suggestion (services.forecast).

A session's capacity is the number of its slots. More: new slots are appended after its last
slot, as long as they fit before the session ends, each in its pool, and every new slot is
offered to the waitlist first (a patient waiting for the session is served before the slot
returns to the open pool). Fewer: free slots are removed from the end, never a slot holding a
booking or a waitlist offer; a session with more bookings than the new capacity is refused (409
`scheduling.capacity_below_booked`), and so is one whose free slots still carry the history of
cancelled bookings (409 `scheduling.capacity_slots_in_use`, with the least capacity possible).

Races: a change locks the session FOR UPDATE first, as 停诊 does (bookings hold it FOR SHARE:
those in flight finish first, later ones wait; on SQLite BEGIN IMMEDIATE serialises the writers),
then the waiting patients it serves, so changes of one session take turns; removing a slot is
moreover one guarded DELETE (only while it is free), of slots no booking row names. A template's
capacity applies to the sessions generate-sessions makes from then on. Both are audited (ids and numbers only)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor, record
from carepoints.kit.errors import ConflictError, ValidationFailedError
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.time import as_utc
from carepoints.scheduling import repository as repo
from carepoints.scheduling import slots as slotcalc
from carepoints.scheduling import waitlist
from carepoints.scheduling.errors import (
    SessionCancelledError,
    SessionNotFoundError,
    TemplateNotFoundError,
)

MAX_CAPACITY = 2000  # as SessionCreate allows


class CapacityBelowBookedError(ConflictError):
    code = "scheduling.capacity_below_booked"
    message = ("该出诊已有 {booked} 个号源被预约或候补占用,不能减少到 {capacity} 个 / {booked} slots of this "
               "session are booked or offered to the waitlist: its capacity cannot go down to {capacity}")


class CapacitySessionStartedError(ConflictError):
    code = "scheduling.capacity_session_started"
    message = "该出诊已开始或已结束,不能再修改号源数量 / The session has started or ended: its capacity cannot change"


class SlotsInUseError(ConflictError):
    code = "scheduling.capacity_slots_in_use"
    message = ("部分空号源保留着已取消预约的记录,该出诊最少只能减少到 {least} 个号源 / Some free slots keep the "
               "history of cancelled bookings: this session's capacity can go down to {least} at least")


def _invalid(msg: str) -> ValidationFailedError:
    return ValidationFailedError(fields=[{"loc": ["body", "capacity"], "msg": msg}])


def _check_range(capacity: int) -> None:
    if not 1 <= capacity <= MAX_CAPACITY:
        raise _invalid(f"号源数量应在 1 到 {MAX_CAPACITY} 之间 / capacity must be 1 to {MAX_CAPACITY}")


def _slot_rows(conn: Connection, session_id: str) -> list[Any]:
    s = repo.slots
    return list(conn.execute(select(s.c.id, s.c.seq, s.c.starts_at, s.c.ends_at, s.c.pool, s.c.appointment_id,
                                    s.c.held_for).where(s.c.session_id == session_id).order_by(s.c.seq)).mappings())


def taken_counts(conn: Connection, session_ids: list[str]) -> dict[str, int]:
    """Per session, its slots holding a booking or a waitlist offer (what a capacity cannot go below)."""
    if not session_ids:
        return {}
    s = repo.slots
    rows = conn.execute(select(s.c.session_id, func.count()).where(
        s.c.session_id.in_(session_ids), (s.c.appointment_id.is_not(None)) | (s.c.held_for.is_not(None)))
        .group_by(s.c.session_id))
    return dict.fromkeys(session_ids, 0) | {str(sid): int(n) for sid, n in rows}


def set_session_capacity(session: Session, session_id: str, capacity: int, actor: Actor,
                         now: datetime) -> dict[str, Any]:
    """Give an open session that has not started `capacity` slots (see the module). Answers
    {id, capacity, previous, added, removed, waitlist_served}; the same capacity again changes
    nothing."""
    conn = session.connection()
    _check_range(capacity)
    if not is_id(session_id):
        raise SessionNotFoundError()
    sess = repo.get(conn, repo.sessions, session_id, lock=True)  # bookings in flight finish first, later ones wait
    if sess is None:
        raise SessionNotFoundError()
    if sess["status"] != "open":
        raise SessionCancelledError()
    if as_utc(sess["starts_at"]) <= now:
        raise CapacitySessionStartedError()
    slots = _slot_rows(conn, session_id)
    previous = len(slots)
    out: dict[str, Any] = {"id": session_id, "capacity": capacity, "previous": previous, "added": 0, "removed": 0,
                           "waitlist_served": 0}
    if capacity > previous:
        out["added"], out["waitlist_served"] = _grow(session, sess, slots, capacity, now)
    elif capacity < previous:
        out["removed"] = _shrink(conn, session_id, slots, capacity)
    else:
        return out
    repo.set_session(conn, session_id, capacity=capacity)
    record(session, actor, "scheduling:session:capacity", now, subject_id=session_id, previous=previous,
           capacity=capacity)
    return out


def _grow(session: Session, sess: Any, slots: list[Any], capacity: int, now: datetime) -> tuple[int, int]:
    conn = session.connection()
    step = timedelta(minutes=int(sess["slot_minutes"]))
    last_end = max((as_utc(s["ends_at"]) for s in slots), default=as_utc(sess["starts_at"]))
    room = slotcalc.fits(last_end, as_utc(sess["ends_at"]), int(sess["slot_minutes"]))
    more = capacity - len(slots)
    if more > room:
        raise _invalid(f"该出诊最多还能增加 {room} 个 {sess['slot_minutes']} 分钟的号源 / at most {room} more "
                       f"slots of {sess['slot_minutes']} minutes fit in this session (capacity {len(slots) + room})")
    pattern = list(sess["pattern"] or slotcalc.DEFAULT_PATTERN)
    if as_utc(sess["referral_release_at"]) <= now:  # referral slots are open to all by now: the pattern only
        pools = [pattern[i % len(pattern)] for i in range(capacity)]
    else:
        pools = slotcalc.pools(capacity, pattern, Decimal(sess["referral_share"]))
    top = max((int(s["seq"]) for s in slots), default=0)
    new = [{"id": new_id(), "session_id": sess["id"], "seq": top + 1 + i, "starts_at": last_end + i * step,
            "ends_at": last_end + (i + 1) * step, "pool": pools[len(slots) + i], "appointment_id": None}
           for i in range(more)]
    conn.execute(repo.slots.insert(), new)
    served = 0
    for slot in new:  # the waitlist first: a new slot never skips a patient waiting for this session
        waiter = repo.first_waiting_patient(conn, sess["id"])
        if waiter is None:
            break
        waitlist.lock_people(session, now, {waiter})
        if waitlist.pass_on(session, sess, slot["id"], now) is not None:
            served += 1
    return more, served


def _shrink(conn: Connection, session_id: str, slots: list[Any], capacity: int) -> int:
    s, a = repo.slots, repo.appointments
    removed = 0
    for _attempt in range(5):  # a booking may claim a chosen slot meanwhile: look again
        taken = sum(1 for r in slots if r["appointment_id"] is not None or r["held_for"] is not None)
        if taken > capacity:
            raise CapacityBelowBookedError(booked=taken, capacity=capacity)
        free = [r["id"] for r in sorted(slots, key=lambda r: r["seq"], reverse=True)
                if r["appointment_id"] is None and r["held_for"] is None]
        history = set(conn.execute(select(a.c.slot_id).where(a.c.slot_id.in_(free))).scalars()) if free else set()
        removable = [sid for sid in free if sid not in history]
        need = len(slots) - capacity
        if len(removable) < need:
            raise SlotsInUseError(least=len(slots) - len(removable))
        # guarded: a slot claimed (or offered) meanwhile stays (a booking row only ever names a slot it claimed)
        removed += int(conn.execute(delete(s).where(
            s.c.id.in_(removable[:need]), s.c.appointment_id.is_(None), s.c.held_for.is_(None))).rowcount)
        slots = _slot_rows(conn, session_id)
        if len(slots) == capacity:
            return removed
    raise CapacityBelowBookedError(booked=len(slots), capacity=capacity)  # bookings kept taking the slots


def session_fit(starts: list[datetime], ends_at: datetime, slot_minutes: int) -> int:
    """How many slots a session can have: those it has and those that fit after its last one."""
    if not starts:
        return 0
    last_end = max(as_utc(s) for s in starts) + timedelta(minutes=slot_minutes)
    return len(starts) + slotcalc.fits(last_end, as_utc(ends_at), slot_minutes)


def template_fit(start: str, end: str, slot_minutes: int) -> int:
    """How many slots of a weekly template fit between its local start and end."""
    day = datetime(2026, 1, 5)  # noqa: DTZ001 - a wall-clock difference, no instant
    return slotcalc.fits(datetime.combine(day, time.fromisoformat(start)),
                         datetime.combine(day, time.fromisoformat(end)), slot_minutes)


def set_template_capacity(session: Session, template_id: str, capacity: int, actor: Actor,
                          now: datetime) -> dict[str, Any]:
    """Give an active weekly template `capacity` slots (at most what fits): the sessions
    generate-sessions makes from now on have that many; sessions already made keep theirs.
    Answers {id, capacity, previous}."""
    conn = session.connection()
    _check_range(capacity)
    t = repo.templates
    row = repo.get(conn, t, template_id, lock=True) if is_id(template_id) else None
    if row is None or not row["active"]:
        raise TemplateNotFoundError()
    fit = template_fit(row["start"], row["end"], int(row["slot_minutes"]))
    if capacity > fit:
        raise _invalid(f"该模板最多容纳 {fit} 个号源 / at most {fit} slots fit in this template")
    previous = int(row["capacity"] or fit)
    if capacity != previous:
        conn.execute(update(t).where(t.c.id == template_id, t.c.active.is_(True)).values(capacity=capacity))
        record(session, actor, "scheduling:template:capacity", now, subject_id=template_id, previous=previous,
               capacity=capacity)
    return {"id": template_id, "capacity": capacity, "previous": previous}

