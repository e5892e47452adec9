"""Event ingest: validate, resolve patients, dedupe, evaluate, post, all
committed before the answer.

Requests reach the database through `writer` (group commit): concurrent
requests in one process share a transaction, each keeping its own outcomes.
A batch locks all its wallets in primary-key order up front, evaluates every
item against in-memory state that each item updates for the next, and writes
the whole batch with a few multi-row statements inside one savepoint. If that
write fails (a concurrent request took the same source key), the savepoint is
rolled back and the items are redone one by one, each in its own savepoint, so
one bad item fails alone with its own error."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.events.booking import Item, book, decide, load_state, points_changed, replay_group
from carepoints.events.errors import BatchTooLargeError, EventConflictError, EventNotFoundError
from carepoints.events.models import Event
from carepoints.events.schemas import EventIn, parse_event
from carepoints.kit.batching import GroupCommitter
from carepoints.kit.bulk import fetch, insert_rows, marks, savepoint
from carepoints.kit.db import is_postgres, table, write_tx
from carepoints.kit.errors import AppError
from carepoints.kit.ids import is_id
from carepoints.kit.metrics import count_events
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import add_months, utc_now
from carepoints.ledger import service as ledger
from carepoints.ledger.posting import Poster
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientMergedError, PatientNotFoundError
from carepoints.rules import service as rules
from carepoints.rules.engine import (
    EventView,
    PatientState,
    ProgrammeSet,
    SuspensionRec,
    evaluate,
)
from carepoints.rules.state import StateStore, candidate_keys, earned_bounds, undo
from carepoints.tiers import service as tiers

MAX_BATCH = 1000
log = logging.getLogger("carepoints.events")
_events = table(Event)

# Higher domains react to accepted events in the same transaction without the spine
# importing them (engagement stores readings and raises care alerts): an observer gets
# the newly accepted event rows of its type (dicts with id, type, patient_id, source,
# occurred_at, attributes), never replays or rejected items.
Observer = Callable[[Session, list[dict[str, Any]], datetime], None]
_observers: dict[str, list[Observer]] = {}


def observe(event_type: str, observer: Observer) -> None:
    """Register `observer` for accepted events of `event_type` (idempotent)."""
    bucket = _observers.setdefault(event_type, [])
    if observer not in bucket:
        bucket.append(observer)


def unobserve(event_type: str, observer: Observer) -> None:
    bucket = _observers.get(event_type, [])
    if observer in bucket:
        bucket.remove(observer)
    if not bucket:
        _observers.pop(event_type, None)


def _notify(session: Session, rows: list[dict[str, Any]], now: datetime) -> None:
    if not _observers:
        return
    by_type: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["type"] in _observers:
            by_type.setdefault(row["type"], []).append(row)
    for type_, group in by_type.items():
        for observer in _observers[type_]:
            observer(session, group, now)


def error_item(err: AppError) -> dict[str, Any]:
    return {**err.to_dict(), "status": err.status_code}


def payload_hash(event: EventIn, patient_id: str) -> str:
    doc = {"type": event.type, "patient": patient_id, "occurred_at": event.occurred_at.timestamp(),
           "attributes": event.attributes}
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


Result = dict[str, Any] | AppError


def _ingest_group(jobs: Sequence[Sequence[Any]]) -> list[list[Result]]:
    """One group of requests. On PostgreSQL the first transaction takes only the
    items whose wallets no other transaction holds (SKIP LOCKED) and commits;
    the rest follow in a second one that waits for those wallets in key order.
    Concurrent groups (`serve --workers N`) thus share out contended patients
    instead of queueing whole groups behind each other, and since a transaction
    that skips never waits for a wallet, the two cannot deadlock."""
    flat = [item for job in jobs for item in job]
    with write_tx() as session:  # the clock is read once the write lock is ours: commit order
        first = _ingest(session, flat, utc_now(), skip_locked=is_postgres(session))
    waiting = [i for i, r in enumerate(first) if r is None]
    if waiting:
        # The first transaction has committed: from here on nothing may fail the group
        # (its jobs would be run again), so a failure answers only the waiting items.
        try:
            with write_tx() as session:
                later = ingest(session, [flat[i] for i in waiting], utc_now(), counted=False)
        except Exception:
            log.error("deferred events failed; each runs alone", exc_info=False)
            later = [_ingest_alone(flat[i]) for i in waiting]
        for i, result in zip(waiting, later, strict=True):
            first[i] = result
    results = [r for r in first if r is not None]
    count_events(results)  # metrics: once per group, after its commits
    out: list[list[Result]] = []
    start = 0
    for job in jobs:
        out.append(results[start:start + len(job)])
        start += len(job)
    return out


def _ingest_alone(raw: Any) -> Result:
    try:
        with write_tx() as session:
            return ingest(session, [raw], utc_now(), counted=False)[0]
    except Exception:
        log.error("an event failed unexpectedly", exc_info=False)
        return _IngestFailedError()


class _IngestFailedError(AppError):
    code = "events.failed"
    status_code = 500
    message = "事件处理失败,请稍后重试 / The event could not be processed; retry later"


# Every request's events go through this process's writer, which commits
# concurrent requests together (kit.batching): one transaction per group.
writer: GroupCommitter[Sequence[Any], list[Result]] = GroupCommitter(
    _ingest_group, size=len, max_size=MAX_BATCH, name="carepoints-events-writer")


def ingest(session: Session, raw_items: Sequence[Any], now: datetime, *, counted: bool = True) -> list[Result]:
    """Ingest events; each result is an outcome dict or the item's error. Counted in the
    metrics when processed (the caller's transaction commits later, or rolls back) unless
    not `counted` (the writer counts its groups itself, after their commits)."""
    results = [r for r in _ingest(session, raw_items, now) if r is not None]
    if counted:
        count_events(results)
    return results


def _ingest(session: Session, raw_items: Sequence[Any], now: datetime,
            skip_locked: bool = False) -> list[Result | None]:
    """With `skip_locked` (PostgreSQL), the items of patients whose wallet another
    transaction holds are left out, answered None, for the caller to run later."""
    if len(raw_items) > MAX_BATCH:
        raise BatchTooLargeError(limit=MAX_BATCH)
    items = [Item(i) for i in range(len(raw_items))]
    for item, raw in zip(items, raw_items, strict=True):
        try:
            item.event = parse_event(raw)
            if item.event.occurred_at - now > timedelta(minutes=10):
                raise _InFutureError()
        except AppError as exc:
            item.error = exc
    live = [i for i in items if i.error is None]
    if live and skip_locked:
        live = _take_free(session, live, now)
    if live:
        programmes = rules.programmes(session)
        bulk, in_order = _split(programmes, live)
        if in_order or (not skip_locked and is_postgres(session)):
            # Every wallet of the batch, in key order, before any is written; on PostgreSQL also before
            # the patients are read (`_take_free` did so when skipping), so that the tier the rules
            # judge with and the tiers service starts from is the one whoever held them committed.
            _lock_wallets(session, live, now)
        if bulk:
            _run_bulk(session, bulk, now, programmes)
        if in_order:
            _run_in_order(session, in_order, now, programmes)
    return [None if item.deferred else item.error if item.error is not None else item.outcome or {}
            for item in items]


def _take_free(session: Session, items: list[Item], now: datetime) -> list[Item]:
    """Lock the wallets of these items that no other transaction holds; the items of
    the others are marked deferred. Returns the items to run now."""
    refs = [i.event.patient for i in items if i.event]
    found, by_ref = patients.resolve(session, [r.id for r in refs if r.id],
                                     [(r.system or "", r.value or "") for r in refs if r.id is None])
    if not found:
        return items
    locked = Poster(session, now).lock_patients(set(found), skip_locked=True)
    for item in items:
        ref = item.event.patient  # type: ignore[union-attr]
        pid = ref.id if ref.id is not None else by_ref.get((ref.system or "", ref.value or ""))
        item.deferred = pid is not None and pid in found and pid not in locked
    # A repeated source key stays with its first item, wherever that goes.
    held = {(i.event.source, i.event.source_event_id) for i in items if i.deferred}  # type: ignore[union-attr]
    for item in items:
        item.deferred = item.deferred or (item.event.source, item.event.source_event_id) in held  # type: ignore[union-attr]
    return [i for i in items if not i.deferred]


def _split(programmes: ProgrammeSet, items: list[Item]) -> tuple[list[Item], list[Item]]:
    """The items for the bulk path, and those to run one by one in time order (order-
    sensitive rules). A repeat of a source key within the batch goes where its first
    occurrence goes, right after it, so that the first one wins as everywhere else."""
    def key(item: Item) -> tuple[str, str]:
        return item.event.source, item.event.source_event_id  # type: ignore[union-attr]

    # a key any of whose occurrences is order sensitive runs in order (the first may be rejected)
    ordered = {key(i) for i in items if replay_group(programmes, i.event) is not None}  # type: ignore[arg-type]
    bulk = [i for i in items if key(i) not in ordered]
    in_order: list[Item] = []
    repeats: dict[tuple[str, str], list[Item]] = {}
    for item in items:
        if key(item) not in ordered:
            continue
        if key(item) in repeats:
            repeats[key(item)].append(item)
        else:
            repeats[key(item)] = []
            in_order.append(item)
    out: list[Item] = []
    for item in sorted(in_order, key=_time_order):
        out.append(item)
        out.extend(repeats[(item.event.source, item.event.source_event_id)])  # type: ignore[union-attr]
    return bulk, out


def _run_bulk(session: Session, items: list[Item], now: datetime, programmes: ProgrammeSet) -> None:
    earners: dict[str, str] = {}
    try:
        with savepoint(session.connection()):
            _run(session, items, now, programmes, earners)
    except IntegrityError as exc:
        if not _source_key_clash(exc):
            raise  # any other constraint failing is a bug, not a client's conflict
        # Item by item, holding all the batch's wallets first (primary-key order, as
        # every writer takes them) so that retries cannot deadlock each other.
        _lock_wallets(session, items, now)
        earners.clear()
        for item in items:
            _run_alone(session, item, now, lambda s, i, n: _run(s, [i], n, programmes, earners))
    _upgrade_tiers(session, programmes, earners, now)


def _upgrade_tiers(session: Session, programmes: ProgrammeSet, earners: dict[str, str], now: datetime) -> None:
    """Tiers rise at once on earning, in the ingest's transaction (tiers.service): a
    primary-key lookup of the earners' annual counters, and the ledger's grouped query only
    for those the counters put within reach of their next tier."""
    if not earners:
        return
    prog = programmes.at(now)
    settings = prog.settings
    # Only patients whose annual counters could reach their next tier need the ledger query.
    bounds = earned_bounds(session.connection(), list(earners), now.astimezone(prog.tz).year)
    near = {pid: tier for pid, tier in earners.items()
            if (nxt := tiers.next_tier(tier, 0, settings.tiers)) is not None and bounds[pid] >= nxt["points_needed"]}
    if near:
        tiers.upgrade_after_earning(session, near, now, settings, known=near)


def _run_alone(session: Session, item: Item, now: datetime,
               runner: Callable[[Session, Item, datetime], None]) -> None:
    """One item in its own savepoint, so that it fails alone."""
    item.outcome, item.row, item.error = None, None, None
    item.messages.clear()
    try:
        with savepoint(session.connection()):
            runner(session, item, now)
            if item.error is not None:
                raise item.error  # undo whatever the runner did before it found the problem
    except IntegrityError as exc:
        if not _source_key_clash(exc):
            raise
        item.outcome, item.error = None, EventConflictError()
    except AppError as exc:
        item.outcome, item.error = None, exc


def _time_order(item: Item) -> tuple[datetime, str, str]:
    ev = item.event
    assert ev is not None  # noqa: S101
    return ev.occurred_at, ev.source, ev.source_event_id


def _source_key_clash(exc: IntegrityError) -> bool:
    """The unique (source, source_event_id) of accepted events, taken by a concurrent request."""
    return "source_event_id" in str(exc.orig)


def _lock_wallets(session: Session, items: list[Item], now: datetime) -> None:
    refs = [i.event.patient for i in items if i.event]
    found, _refs = patients.resolve(session, [r.id for r in refs if r.id],
                                     [(r.system, r.value) for r in refs if r.id is None])  # type: ignore[misc]
    if found:
        Poster(session, now).lock_patients(set(found))


class _InFutureError(AppError):
    code = "events.in_future"
    status_code = 422
    message = "事件时间不能晚于当前时间 / occurred_at lies in the future"


def _run(session: Session, items: list[Item], now: datetime, programmes: ProgrammeSet,
         earners: dict[str, str] | None = None) -> None:
    """The bulk path, with the programme versions read once for the transaction. Patients
    whose items earned points go into `earners` (patient → tier as read), for the tiers."""
    conn = session.connection()
    ids = [i.event.patient.id for i in items if i.event and i.event.patient.id]
    refs = [(i.event.patient.system, i.event.patient.value) for i in items
            if i.event and i.event.patient.id is None]
    found, by_ref = patients.resolve(session, ids, refs)  # type: ignore[arg-type]
    for item in items:
        assert item.event is not None  # noqa: S101
        ref = item.event.patient
        pid = ref.id if ref.id is not None else by_ref.get((ref.system or "", ref.value or ""))
        if pid is None or pid not in found:
            item.error = PatientNotFoundError()
            continue
        if found[pid].merged_into is not None:  # (ops.merge) the record lives on as another
            item.error = PatientMergedError(merged_into=found[pid].merged_into)
            continue
        item.patient_id = pid
        item.payload_hash = payload_hash(item.event, pid)
    items = [i for i in items if i.error is None]
    if not items:
        return
    poster = Poster(session, now)
    wallets = poster.lock_patients({i.patient_id for i in items})
    for item in items:
        item.wallet_id = wallets[item.patient_id]

    stored = _stored(session, items)
    store = StateStore(conn)
    load_state(store, programmes, items, found)

    seen: dict[tuple[str, str], Item] = {}
    rows: list[dict[str, Any]] = []
    messages: list[tuple[str, str | None, dict[str, Any]]] = []
    for item in items:
        ev = item.event
        assert ev is not None  # noqa: S101
        key = (ev.source, ev.source_event_id)
        prior: tuple[Any, str, dict[str, Any] | None] | None = stored.get(key)
        if prior is None and key in seen:
            first = seen[key]
            prior = (first.row or {}).get("id"), first.payload_hash, first.outcome
        if prior is not None:
            if prior[1] != item.payload_hash:
                item.error = EventConflictError()
            else:
                item.outcome = {**(prior[2] or {}), "duplicate": True}
            continue
        seen[key] = item
        item.outcome, item.row = decide(poster, store, programmes, item, now)
        rows.append(item.row)
        messages.extend(item.messages)
        if earners is not None and any(a["points"] > 0 for a in item.outcome["awards"]):
            earners[item.patient_id] = found[item.patient_id].tier
    insert_rows(conn, _events, rows)
    poster.flush()
    store.flush(now)
    enqueue_many(conn, messages, now)
    _notify(session, rows, now)


def _stored(session: Session, items: list[Item]) -> dict[tuple[str, str], tuple[str, str, dict[str, Any]]]:
    """Accepted events with the batch's source keys (read under the wallet locks)."""
    conn = session.connection()
    sources = sorted({i.event.source for i in items if i.event})
    keys = sorted({i.event.source_event_id for i in items if i.event})
    sql = ("SELECT source, source_event_id, id, payload_hash, outcome FROM events "  # noqa: S608
           f"WHERE source IN ({marks(conn, len(sources))}) AND source_event_id IN ({marks(conn, len(keys))})")
    rows = fetch(conn, sql, (*sources, *keys))
    return {(r[0], r[1]): (r[2], r[3], r[4] if isinstance(r[4], dict) else orjson.loads(r[4])) for r in rows}


# --- order-sensitive rules: evaluated in time order -----------------------------------

def _run_in_order(session: Session, items: list[Item], now: datetime, programmes: ProgrammeSet) -> None:
    """Events of order-sensitive rules (rules.engine.order_sensitive), in time order,
    each in its own savepoint. Each is judged as if the patient's events of its
    replay group had arrived in time order (occurred_at, then source key): the
    later ones already accepted give back their rule state once, and are then
    evaluated again, interleaved in time order with this batch's items, each as
    it was first judged (its programme version, the suspension and tier it was
    judged with, its own clock; consent it had). The ledger changes only for an
    event whose awards change: its entries are reversed and the new awards
    posted under its own event id, and its stored outcome replaced (a replay
    answers the new one). Events turned away before any rule ran (no consent,
    too old) hold no room and are left as they are."""
    conn = session.connection()
    refs = [i.event.patient for i in items if i.event]
    found, by_ref = patients.resolve(session, [r.id for r in refs if r.id],
                                     [(r.system or "", r.value or "") for r in refs if r.id is None])
    pending: dict[tuple[str, str], list[Any]] = {}  # (patient, group) -> later rows not yet re-evaluated
    earners: dict[str, str] = {}  # patients who earned here (tiers)
    last: dict[str, Item] = {}  # per patient, the last item accepted here
    keys: set[tuple[str, str]] = set()
    for item in items:
        ev = item.event
        assert ev is not None  # noqa: S101
        ref = ev.patient
        pid = ref.id if ref.id is not None else by_ref.get((ref.system or "", ref.value or ""))
        group = replay_group(programmes, ev)
        bucket = (pid, group) if pid is not None and pid in found and group is not None else None
        # a key an earlier item of the batch took (_split puts repeats right after it): a replay or conflict
        repeat = (ev.source, ev.source_event_id) in keys
        if bucket is not None and bucket not in pending and (repeat or _stored(session, [item])):
            bucket = None  # a replay or a conflict changes nothing: nothing to re-evaluate
        if bucket is not None and bucket not in pending:
            later = _later_events(conn, pid, group, ev)  # type: ignore[arg-type]
            for row in reversed(later):  # they give back their rule state, once
                undo(conn, pid, row["effects"] or {}, programmes.at(row["occurred_at"]))  # type: ignore[arg-type]
            pending[bucket] = later
        if bucket is not None and not repeat:
            rows = pending[bucket]
            while rows and _row_order(rows[0]) < _time_order(item):
                if _reevaluate(session, programmes, rows.pop(0), now):
                    earners[pid] = found[pid].tier  # type: ignore[index]
        _run_alone(session, item, now, lambda s, i, n: _run(s, [i], n, programmes, earners))
        if item.outcome is not None or isinstance(item.error, EventConflictError):
            keys.add((ev.source, ev.source_event_id))
        if item.outcome is not None and not item.outcome.get("duplicate"):
            last[item.patient_id] = item
    for (pid, _group), rows in pending.items():
        for row in rows:
            if _reevaluate(session, programmes, row, now):
                earners[pid] = found[pid].tier
    _upgrade_tiers(session, programmes, earners, now)
    # Each answer carries the running balance, as in the bulk path; the patient's last one
    # (and what its replay returns) the balance after every re-evaluation.
    for item in last.values():
        assert item.outcome is not None  # noqa: S101
        balance = Poster(session, now).wallet(item.wallet_id).balance
        if balance != item.outcome["balance"]:
            item.outcome["balance"] = balance
            conn.execute(update(_events).where(_events.c.id == item.outcome["event_id"]).values(outcome=item.outcome))


# judged before any rule: no room held
_GATES = frozenset({"patients.inactive", "consent.missing", "rules.event_too_old"})


def _row_order(row: Any) -> tuple[datetime, str, str]:
    return row["occurred_at"], row["source"], row["source_event_id"]


def _later_events(conn: Any, patient_id: str, group: str, ev: EventIn) -> list[Any]:
    """Accepted events of this patient and replay group after `ev` in time order,
    but those turned away before any rule ran."""
    rows = conn.execute(select(_events).where(
        _events.c.patient_id == patient_id, _events.c.replay_group == group, _events.c.status == "accepted",
        _events.c.occurred_at >= ev.occurred_at)).mappings().all()
    key = (ev.occurred_at, ev.source, ev.source_event_id)
    later = [r for r in rows if _row_order(r) > key
             and not _GATES & {n["code"] for n in (r["outcome"] or {}).get("notices", [])}]
    return sorted(later, key=_row_order)


def _reevaluate(session: Session, programmes: ProgrammeSet, row: Any, now: datetime) -> bool:
    """Evaluate an accepted event again on the current rule state, as it was first
    judged (see _run_in_order); post only what changed. True when it posted new earnings."""
    conn = session.connection()
    pid = row["patient_id"]
    old = row["effects"] or {}
    outcome0 = row["outcome"] or {}
    version = next((v for v in programmes.versions if v.version == old.get("version")), None)
    own = ProgrammeSet([version]) if version is not None else programmes
    view = EventView(row["id"], row["type"], row["occurred_at"], row["attributes"])
    poster = Poster(session, now)
    wallet_id = poster.lock_patients({pid})[pid]
    found, _refs = patients.resolve(session, [pid], [])
    judged = old.get("judged") or {
        "suspended": any(n["code"] == "rules.suspended" for n in outcome0.get("notices", [])),
        "tier": found[pid].tier}
    store = StateStore(conn)
    keys, groups = candidate_keys(own, view)
    day = view.occurred_at.astimezone(own.latest.tz).date()
    store.load({pid: PatientState(pid, True, judged["tier"], found[pid].birth_date, frozen=found[pid].earning_frozen)},
               {(pid, k) for k in keys}, {pid: (day, day)} if groups else {}, groups, False)
    state = store.states[pid]
    covering = [x for x in state.suspensions if x.starts_at <= view.occurred_at < x.ends_at]
    if not judged["suspended"]:
        state.suspensions = []  # not suspended then: a later or longer suspension changes nothing
    elif not covering:  # suspended then (since revoked or shortened): still withheld
        state.suspensions = [SuspensionRec("", view.occurred_at, view.occurred_at + timedelta(microseconds=1),
                                           "")]
    else:
        state.suspensions = covering
    decision = evaluate(own, view, state, row["received_at"])
    if judged["suspended"] and not covering:  # say what was said then, not the stand-in's end
        said = {n["code"]: n["message"] for n in outcome0.get("notices", [])}
        for notice in decision.notices:
            notice.message = said.get(notice.code, notice.message)
    before = [(a["rule"], a["points"]) for a in outcome0.get("awards", [])]
    same = before == [(a.rule, a.points) for a in decision.awards]
    reversed_: list[tuple[str, int]] = []
    if not same:
        prog = own.at(view.occurred_at)
        reversed_ = ledger.reverse_transfers(poster, view.id, old.get("transfers") or [], now,
                                             expires_at=add_months(now.astimezone(prog.tz),
                                                                   prog.settings.expiry_months))
    outcome, effects = book(poster, store, own, pid, wallet_id, view, decision,
                             transfers=list(old.get("transfers") or []) if same else None)
    effects["judged"] = judged
    effects["reevaluated"] = int(old.get("reevaluated", 0)) + (0 if same else 1)
    poster.flush()
    store.flush(now)
    conn.execute(update(_events).where(_events.c.id == view.id).values(outcome=outcome, effects=effects))
    change = sum(p for _r, p in reversed_) + sum(a["points"] for a in outcome["awards"])
    if not same and change:
        enqueue_many(conn, [points_changed(pid, view.id, change, outcome["balance"])], now)
    return not same and any(a["points"] > 0 for a in outcome["awards"])


def revoke(session: Session, *, now: datetime, reason: str, event_id: str | None = None,
           source: str | None = None, source_event_id: str | None = None) -> dict[str, Any]:
    """Reverse exactly the entries an event produced and free the room they used.
    Revoking again answers the same result."""
    conn = session.connection()
    stmt = select(_events)
    if event_id is not None:
        if not is_id(event_id):
            raise EventNotFoundError()
        stmt = stmt.where(_events.c.id == event_id)
    else:
        stmt = stmt.where(_events.c.source == source, _events.c.source_event_id == source_event_id)
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise EventNotFoundError()
    poster = Poster(session, now)
    wallet_id = poster.lock_patients({row["patient_id"]})[row["patient_id"]]  # their own first, then a household's
    row = conn.execute(select(_events).where(_events.c.id == row["id"])).mappings().one()  # re-read under lock
    if row["status"] == "revoked":
        return dict((row["effects"] or {}).get("revocation") or {})
    prog = rules.programmes(session).at(row["occurred_at"])
    reversed_ = ledger.reverse_transfers(poster, row["id"], (row["effects"] or {}).get("transfers") or [], now,
                                         expires_at=add_months(now.astimezone(prog.tz), prog.settings.expiry_months))
    poster.flush()
    undo(conn, row["patient_id"], row["effects"] or {}, prog)
    result = {"event_id": row["id"], "revoked": True,
              "reversed": [{"rule": r, "points": p} for r, p in reversed_],
              "balance": poster.wallets[wallet_id].balance}
    effects = dict(row["effects"] or {})
    effects["revocation"] = result
    conn.execute(update(_events).where(_events.c.id == row["id"]).values(
        status="revoked", revoked_at=now, revoke_reason=reason[:500], effects=effects))
    if reversed_:
        enqueue_many(conn, [("points.changed", row["patient_id"], {
            "patient_id": row["patient_id"], "event_id": row["id"], "points": sum(p for _, p in reversed_),
            "balance": result["balance"]})], now)
    return result



def attributes_of(session: Session, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Event id → its type, source and attributes (ids and codes only)."""
    if not event_ids:
        return {}
    ev = Event.__table__
    rows = session.connection().execute(select(ev.c.id, ev.c.type, ev.c.source, ev.c.attributes)
                                        .where(ev.c.id.in_(list(event_ids))))
    return {r[0]: {"type": r[1], "source": r[2], **(r[3] or {})} for r in rows}
