"""Merging a duplicate patient record into its survivor (档案合并), in one transaction.

Locks: both personal wallets (primary-key order, as every ledger use case takes them), then
both patient rows (primary-key order; ingest and closure also take a wallet first); everything is
re-read under those locks, so a concurrent ingest for the duplicate either committed before
(its points move with the rest) or runs after (the duplicate is `merged`: by id it answers
409 `patients.merged`, by external id it resolves to the survivor).

Refused with 409: the same record twice, a record not active, one already merged (into
another survivor: `merge.already_merged`), a duplicate with open holds (fee offsets not yet
settled — a hold names the duplicate's own lots, so it must be committed or voided first;
we never void a cashier's hold behind their back), and two records in different households
(each pools its earnings in its own household wallet; moving the duplicate's attributed lots
into a household the survivor is in would give points to the other family): one must leave
its household first. A duplicate in the survivor's household (or in one while the survivor
is in none) leaves it first (its attributed share comes back to its own wallet and then moves
with the rest); a duplicate heading a household with other members is refused by the
household rules (`households.head_must_stay`).

Moved: external ids, events, rule state (counters summed per key and clamped to the cap,
streak runs united and coalesced, no-shows, suspensions), tier history and the advisor (when
the survivor has none), the wallet's lots and debt (ledger.merges), and through `on_merge`
what the domains above keep (appointments, engagement records, redemptions…). The
duplicate's active consents end (`ended_by="merged"`); the survivor keeps its own.

The duplicate becomes `merged` with `merged_into`; the result (ids and counts only) is kept
in `patient_merges` (unique duplicate id): the same request again answers it. Audited
`patients:patient:merged`; the survivor is told (points.changed, variant merged) when
points or debt moved; the duplicate is told nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, delete, insert, select, text, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import PrimaryKeyConstraint, UniqueConstraint

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.enrolment import households as household_cases
from carepoints.enrolment import identity
from carepoints.enrolment.errors import (
    MergeAlreadyMergedError,
    MergeHouseholdsDifferError,
    MergeIdempotencyConflictError,
    MergeInactiveError,
    MergeOpenHoldsError,
    MergeSamePatientError,
)
from carepoints.enrolment.models import PatientMerge
from carepoints.events.models import Event
from carepoints.kit.bulk import as_date, insert_rows
from carepoints.kit.db import table
from carepoints.kit.ids import new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.ledger import merges as ledger_merges
from carepoints.ledger import service as ledger
from carepoints.ledger.errors import WalletNotFoundError
from carepoints.ledger.posting import Poster
from carepoints.patients import households as membership
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.patients.models import Consent, ExternalId
from carepoints.rules.models import Counter, NoShow, StreakRun, Suspension
from carepoints.security.models import WechatBinding
from carepoints.tiers.models import PatientAdvisor, TierChange

MERGED = "merged"

_merges = table(PatientMerge)
_counters = table(Counter)
_runs = table(StreakRun)

# --- the registry higher domains join ------------------------------------------------------

Mover = Callable[[Session, str, str, Actor, datetime], dict[str, int]]
_movers: dict[str, Mover] = {}


def on_merge(name: str, mover: Mover) -> None:
    """Run `mover(session, survivor_id, duplicate_id, actor, now)` inside every merge, before
    the duplicate's events and wallet move; it moves that domain's rows and answers counts
    (their keys go into the answer's `moved`, so name them uniquely). Registering a name
    again replaces it."""
    _movers[name] = mover


# --- moving rows that may clash with the survivor's ------------------------------------------

def _unique_keys(tbl: Table, column: str) -> list[tuple[list[str], Any]]:
    """The table's unique keys (primary key, unique constraints, partial unique indexes with
    their condition) that include `column`."""
    keys: list[tuple[list[str], Any]] = [
        ([col.name for col in c.columns], None) for c in tbl.constraints
        if isinstance(c, PrimaryKeyConstraint | UniqueConstraint) and column in c.columns]
    for ix in tbl.indexes:
        cols = [col.name for col in ix.columns]
        if ix.unique and column in cols:
            where = ix.dialect_options["postgresql"].get("where")
            if where is None:
                where = ix.dialect_options["sqlite"].get("where")
            keys.append((cols, text(where) if isinstance(where, str) else where))
    return keys


def clashing(session: Session, model: type | Table, survivor_id: str, duplicate_id: str, *,
             column: str = "patient_id") -> list[tuple[Any, ...]]:
    """Primary keys of the duplicate's rows that would break a unique key of the table if they
    named the survivor (e.g. both booked one clinician on the same day), in key order."""
    tbl = model if isinstance(model, Table) else table(model)
    conn = session.connection()
    pk = list(tbl.primary_key.columns)
    out: set[tuple[Any, ...]] = set()
    for cols, where in _unique_keys(tbl, column):
        others = [tbl.c[c] for c in cols if c != column]
        cond = [where] if where is not None else []
        taken = {tuple(r) for r in conn.execute(select(*others).where(tbl.c[column] == survivor_id, *cond))} \
            if others else set()
        has_any = bool(others) or conn.execute(
            select(tbl.c[column]).where(tbl.c[column] == survivor_id, *cond).limit(1)).first() is not None
        for row in conn.execute(select(*pk, *others).where(tbl.c[column] == duplicate_id, *cond)):
            key = tuple(row[len(pk):])
            if (not others and has_any) or (others and None not in key and key in taken):
                out.add(tuple(row[:len(pk)]))
    return sorted(out)


def move_rows(session: Session, model: type | Table, survivor_id: str, duplicate_id: str, *,
              column: str = "patient_id") -> tuple[int, int]:
    """Re-point the duplicate's rows at the survivor, except those that would clash with a
    unique key (see `clashing`): those stay with the duplicate. Returns (moved, kept)."""
    tbl = model if isinstance(model, Table) else table(model)
    conn = session.connection()
    kept = clashing(session, tbl, survivor_id, duplicate_id, column=column)
    where = [tbl.c[column] == duplicate_id]
    if kept:
        pk = list(tbl.primary_key.columns)
        where.append(tuple_(*pk).not_in(kept) if len(pk) > 1 else pk[0].not_in([k[0] for k in kept]))
    done = conn.execute(update(tbl).where(and_(*where)).values({column: survivor_id}))
    return int(done.rowcount or 0), len(kept)


# --- rule state ------------------------------------------------------------------------------

def _merge_counters(session: Session, survivor_id: str, duplicate_id: str) -> tuple[int, int]:
    """Sum `used` per key, clamped to the cap (the survivor's, else the duplicate's). Returns
    (keys merged, keys clamped)."""
    conn = session.connection()
    c = _counters
    mine = {r.key: r for r in conn.execute(select(c.c.key, c.c.used, c.c.cap).where(c.c.patient_id == survivor_id))}
    theirs = conn.execute(select(c.c.key, c.c.used, c.c.cap).where(c.c.patient_id == duplicate_id)
                          .order_by(c.c.key)).all()
    clamped = 0
    for r in theirs:
        own = mine.get(r.key)
        if own is None:
            conn.execute(update(c).where(c.c.patient_id == duplicate_id, c.c.key == r.key)
                         .values(patient_id=survivor_id))
            continue
        cap = own.cap if own.cap is not None else r.cap
        used = own.used + r.used
        if cap is not None and used > cap:
            used, clamped = cap, clamped + 1
        conn.execute(update(c).where(c.c.patient_id == survivor_id, c.c.key == r.key).values(used=used, cap=cap))
        conn.execute(delete(c).where(c.c.patient_id == duplicate_id, c.c.key == r.key))
    return len(theirs), clamped


def coalesce_runs(runs: list[tuple[date, date]]) -> list[tuple[date, date]]:
    """Day ranges united: overlapping or adjacent runs become one."""
    out: list[tuple[date, date]] = []
    for start, end in sorted(runs):
        if out and start <= out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _merge_streaks(session: Session, survivor_id: str, duplicate_id: str) -> int:
    """Union each streak group's runs of both records and coalesce them. Returns the
    survivor's runs in the groups touched."""
    conn = session.connection()
    r = _runs
    rows = conn.execute(select(r.c.patient_id, r.c.grp, r.c.start_day, r.c.end_day)
                        .where(r.c.patient_id.in_([survivor_id, duplicate_id]))).all()
    groups = sorted({row.grp for row in rows if row.patient_id == duplicate_id})
    if not groups:
        return 0
    new: list[dict[str, object]] = []
    for grp in groups:
        spans = [(as_date(x.start_day), as_date(x.end_day)) for x in rows if x.grp == grp]
        new.extend({"patient_id": survivor_id, "grp": grp, "start_day": a, "end_day": b}
                   for a, b in coalesce_runs(spans))
    conn.execute(delete(r).where(r.c.patient_id.in_([survivor_id, duplicate_id]), r.c.grp.in_(groups)))
    insert_rows(conn, r, new)
    return len(new)


# --- the use case ------------------------------------------------------------------------------

def _stored(session: Session, duplicate_id: str, idempotency_key: str | None) -> dict[str, Any] | None:
    m = _merges
    cond = m.c.duplicate_id == duplicate_id
    if idempotency_key is not None:
        cond = cond | (m.c.idempotency_key == idempotency_key)
    rows = session.connection().execute(select(m).where(cond)).mappings().all()
    by_key = next((dict(x) for x in rows if idempotency_key is not None and x["idempotency_key"] == idempotency_key),
                  None)
    return by_key or (dict(rows[0]) if rows else None)


def _replay(row: dict[str, Any], survivor_id: str, duplicate_id: str, idempotency_key: str | None) -> dict[str, Any]:
    same = (row["survivor_id"], row["duplicate_id"]) == (survivor_id, duplicate_id)
    if idempotency_key is not None and row["idempotency_key"] == idempotency_key and not same:
        raise MergeIdempotencyConflictError()
    if not same:
        raise MergeAlreadyMergedError(merged_into=row["survivor_id"])
    return dict(row["result"])


def _check(found: dict[str, patients.Resolved], ids: list[str]) -> None:
    for pid in ids:
        p = found.get(pid)
        if p is None:
            raise PatientNotFoundError()
        if p.merged_into is not None:
            raise MergeAlreadyMergedError(merged_into=p.merged_into)
        if p.status != "active":
            raise MergeInactiveError(patient_id=pid, status=p.status)


def _leave_household(session: Session, survivor_id: str, duplicate_id: str, actor: Actor, now: datetime) -> int:
    """The duplicate leaves its household (its attributed share back to its own wallet), unless
    the survivor pools elsewhere (refused). Returns 1 when it left."""
    theirs = membership.membership(session, duplicate_id)
    mine = membership.membership(session, survivor_id)
    if theirs is not None and mine is not None and theirs["household_id"] != mine["household_id"]:
        raise MergeHouseholdsDifferError()
    if theirs is None:
        return 0
    household_cases.leave(session, actor, theirs["household_id"], duplicate_id, now)
    return 1


def merge(session: Session, survivor_id: str, duplicate_id: str, actor: Actor, now: datetime, *,
          reason_code: str, note: str | None = None, idempotency_key: str | None = None
          ) -> tuple[dict[str, Any], bool]:
    """Merge `duplicate_id` into `survivor_id` (see the module docstring). Answers the result
    and whether this call merged (False: the same merge answered again)."""
    if survivor_id == duplicate_id:
        raise MergeSamePatientError()
    ids = sorted([survivor_id, duplicate_id])
    try:
        wallets = ledger.wallet_ids(session, ids)
    except WalletNotFoundError:
        raise PatientNotFoundError() from None
    # wallets first (primary-key order), then the patient rows: the order ingest (which may
    # update a patient's tier under its wallet lock) and closure take them, so none deadlock
    poster = Poster(session, now)
    poster.lock({wallets[survivor_id], wallets[duplicate_id]})
    for pid in ids:
        if patients.lock(session, pid) is None:
            raise PatientNotFoundError()
    stored = _stored(session, duplicate_id, idempotency_key)
    if stored is not None:
        return _replay(stored, survivor_id, duplicate_id, idempotency_key), False
    found, _refs = patients.resolve(session, ids, [])
    _check(found, [duplicate_id, survivor_id])
    if poster.wallets[wallets[duplicate_id]].held:
        raise MergeOpenHoldsError()
    moved: dict[str, int] = {"household_left": _leave_household(session, survivor_id, duplicate_id, actor, now)}
    for _name, mover in sorted(_movers.items()):
        moved.update(mover(session, survivor_id, duplicate_id, actor, now))
    moved.update(_move_own(session, survivor_id, duplicate_id, now))
    wallet = ledger_merges.merge_wallets(session, wallets[duplicate_id], wallets[survivor_id], now)
    moved.update(lots=wallet.lots, points=wallet.points, debt=wallet.debt)
    if not patients.mark_merged(session, duplicate_id, survivor_id):
        raise MergeAlreadyMergedError(merged_into=survivor_id)  # unreachable under the locks
    result = {"survivor_id": survivor_id, "duplicate_id": duplicate_id, "reason_code": reason_code,
              "merged_at": now.isoformat(), "moved": dict(sorted(moved.items()))}
    session.connection().execute(insert(_merges), [{
        "id": new_id(), "duplicate_id": duplicate_id, "survivor_id": survivor_id, "reason_code": reason_code,
        "note": note, "idempotency_key": idempotency_key, "actor_kind": actor.kind, "actor_id": actor.id,
        "result": result, "merged_at": now}])
    _mark_identity(session, survivor_id, duplicate_id, actor, now)
    audit.record(session, actor, "patients:patient:merged", now, subject_id=duplicate_id, patient_id=survivor_id,
                 survivor_id=survivor_id, duplicate_id=duplicate_id, reason_code=reason_code,
                 counts=result["moved"])
    if wallet.points or wallet.debt:
        enqueue_many(session.connection(), [("points.changed", survivor_id, {
            "patient_id": survivor_id, "variant": "merged", "moved": wallet.points, "balance": wallet.balance})], now)
    return result, True


def _move_own(session: Session, survivor_id: str, duplicate_id: str, now: datetime) -> dict[str, int]:
    """What this layer and those below keep per patient: external ids, events, rule state,
    tier history and advisor, consents."""
    conn = session.connection()
    out: dict[str, int] = {}
    out["external_ids"], _ = move_rows(session, ExternalId, survivor_id, duplicate_id)
    out["events"], _ = move_rows(session, Event, survivor_id, duplicate_id)
    out["rule_counters"], out["rule_counters_clamped"] = _merge_counters(session, survivor_id, duplicate_id)
    out["streak_runs"] = _merge_streaks(session, survivor_id, duplicate_id)
    out["no_shows"], _ = move_rows(session, NoShow, survivor_id, duplicate_id)
    out["suspensions"], _ = move_rows(session, Suspension, survivor_id, duplicate_id)
    out["tier_changes"], _ = move_rows(session, TierChange, survivor_id, duplicate_id)
    out["advisor"], _ = move_rows(session, PatientAdvisor, survivor_id, duplicate_id)
    c = table(Consent)
    ended = conn.execute(update(c).where(c.c.patient_id == duplicate_id, c.c.withdrawn_at.is_(None))
                         .values(withdrawn_at=now, ended_by=MERGED))
    out["consents_ended"] = int(ended.rowcount or 0)
    return out


def _mark_identity(session: Session, survivor_id: str, duplicate_id: str, actor: Actor, now: datetime) -> None:
    """The identity review list closes the pair's duplicate candidates."""
    identity.mark_merged(session, survivor_id, duplicate_id, actor, now)


def read(session: Session, duplicate_id: str) -> dict[str, Any] | None:
    """The stored result of the merge of this duplicate, or None."""
    row = session.connection().execute(select(_merges.c.result).where(_merges.c.duplicate_id == duplicate_id)).first()
    return dict(row[0]) if row is not None else None


def _move_wechat(session: Session, survivor_id: str, duplicate_id: str, _actor: Actor, _now: datetime
                 ) -> dict[str, int]:
    """(ops.wechat) the duplicate's WeChat binding follows it, unless the survivor has its own."""
    moved, kept = move_rows(session, WechatBinding, survivor_id, duplicate_id)
    return {"wechat_bindings": moved, "wechat_bindings_kept": kept}


on_merge("wechat", _move_wechat)
