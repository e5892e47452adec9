"""Tamper evidence for the audit log: rows sealed in blocks, verification and
the retention purge.

Writers never read or lock anything to append a row. Sealing runs later (the
`seal-audit` and `seal-checkpoint` jobs): it takes the unsealed rows whose
ids (UUIDv7, time-ordered) are older than a safety margin, in id order, up to
N per block, and writes one `audit_seals` row:

    row hash   = sha256(canonical(row))      canonical = sorted-key JSON of every column,
                                             datetimes as YYYY-MM-DDTHH:MM:SS.ffffffZ
    digest     = sha256(prev_digest ‖ row hash 1 ‖ … ‖ row hash n)
    signature  = HMAC-SHA256(checkpoint key, block|first_id|last_id|row_count|last_at|prev_digest|digest)

A block's members are the rows with first_id <= id <= last_id. The margin is
what makes this sound without locks: a transaction that generated an id
before the horizon must have committed by the time the horizon passes it
(audit writes are short). `purge_before` deletes whole old blocks with their
seals and records the anchor (the last purged digest), so the chain stays
verifiable from the first remaining seal."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from carepoints.audit.models import AuditEntry, AuditPurgeGate, AuditSeal
from carepoints.kit.db import is_postgres, serialise, table
from carepoints.kit.ids import new_id
from carepoints.kit.time import iso_z, utc_now

_log = table(AuditEntry)
_seals = table(AuditSeal)
_gate = table(AuditPurgeGate)

MIN_RETENTION = timedelta(days=183)  # audit rows are kept at least six months (issue 6)
PURGE_ACTION = "audit:log:purge"
_SEAL_LOCK = 0x6361_7564_6974  # pg_advisory_xact_lock key: one sealer at a time
_PREFIX = 16  # hex digits of each row hash kept in the seal to name a broken row


def canonical(row: Mapping[str, Any]) -> bytes:
    """Sorted-key compact JSON of every column; datetimes in canonical UTC."""
    return orjson.dumps({k: iso_z(v) if isinstance(v, datetime) else v for k, v in row.items()},
                        option=orjson.OPT_SORT_KEYS)


def row_hash(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


def block_digest(prev_digest: str, hashes: list[str]) -> str:
    h = hashlib.sha256(prev_digest.encode())
    for rh in hashes:
        h.update(bytes.fromhex(rh))
    return h.hexdigest()


def _signed(seal: Mapping[str, Any]) -> bytes:
    return "|".join((str(seal["block"]), seal["first_id"], seal["last_id"], str(seal["row_count"]),
                     iso_z(seal["last_at"]), seal["prev_digest"], seal["digest"])).encode()


def sign(key: str, seal: Mapping[str, Any]) -> str:
    return hmac.new(key.encode(), _signed(seal), hashlib.sha256).hexdigest()


def id_horizon(instant: datetime) -> str:
    """The smallest id string of the UUIDv7 millisecond `instant`: every id generated
    before it compares lower (ids are lower-case hex with fixed dashes)."""
    ms = int(instant.timestamp() * 1000)
    return f"{ms >> 16:08x}-{ms & 0xFFFF:04x}"


def _last_seal(session: Session) -> Any:
    return session.connection().execute(
        select(_seals.c.block, _seals.c.last_id, _seals.c.digest).order_by(_seals.c.block.desc()).limit(1)).first()


def seal(session: Session, key: str, now: datetime, *, margin: timedelta = timedelta(minutes=2),
         block_rows: int = 1000) -> int:
    """Seal the next block of unsealed rows older than `margin` (by their id's time;
    never ahead of the real clock); answers the rows sealed, 0 when none is due.
    One sealer at a time: an advisory lock on PostgreSQL, the write lock on SQLite."""
    conn = session.connection()
    serialise(conn, _SEAL_LOCK)
    last = _last_seal(session)
    horizon = id_horizon(min(now, utc_now()) - margin)
    stmt = select(_log).where(_log.c.id < horizon).order_by(_log.c.id).limit(block_rows)
    if last is not None:
        stmt = stmt.where(_log.c.id > last.last_id)
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    if not rows:
        return 0
    hashes = [row_hash(r) for r in rows]
    prev = last.digest if last is not None else ""
    doc: dict[str, Any] = {
        "block": (last.block if last is not None else 0) + 1, "first_id": rows[0]["id"], "last_id": rows[-1]["id"],
        "row_count": len(rows), "last_at": max(r["at"] for r in rows), "prev_digest": prev,
        "digest": block_digest(prev, hashes), "row_digests": [[r["id"], h[:_PREFIX]] for r, h in zip(rows, hashes,
                                                                                                  strict=True)],
        "sealed_at": now}
    doc["signature"] = sign(key, doc)
    conn.execute(insert(_seals), [doc])
    return len(rows)


def pending(session: Session) -> int:
    """Rows not yet in any sealed block."""
    last = _last_seal(session)
    stmt = select(func.count()).select_from(_log)
    if last is not None:
        stmt = stmt.where(_log.c.id > last.last_id)
    return int(session.connection().execute(stmt).scalar() or 0)


@dataclass
class Report:
    blocks: int = 0
    rows: int = 0
    pending: int = 0
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _locate(block: int, members: list[dict[str, Any]], hashes: list[str], sealed: list[list[str]]) -> str:
    """The first row (in id order) where a block's rows and its seal part ways."""
    have = {r["id"]: h[:_PREFIX] for r, h in zip(members, hashes, strict=True)}
    want = dict(sealed)
    for rid in sorted(have.keys() | want.keys()):
        if rid not in want:
            return f"row {rid}: inserted into sealed block {block}"
        if rid not in have:
            return f"row {rid}: deleted from sealed block {block} ({len(members)} rows, sealed {len(sealed)})"
        if have[rid] != want[rid]:
            return f"row {rid}: altered after it was sealed in block {block}"
    return f"block {block}: its rows do not match the sealed digest (seal altered)"


def verify(session: Session, key: str) -> Report:
    """Recompute every sealed block in order: chain, signature, membership, digests;
    stop at the first break, naming the row or block. Unsealed rows are counted."""
    conn = session.connection()
    report = Report()
    seals = [dict(s) for s in conn.execute(select(*(c for c in _seals.c if c.name != "row_digests"))
                                           .order_by(_seals.c.block)).mappings()]
    rows: Iterator[Any] = iter(conn.execute(select(_log).order_by(_log.c.id)
                                            .execution_options(yield_per=2000)).mappings())
    peek = next(rows, None)
    purges: list[dict[str, Any]] = []
    prev: Any = None
    for s in seals:
        b = s["block"]
        if prev is None and b == 1 and s["prev_digest"] != "":
            report.problem = "block 1: does not start the chain"
            return report
        if prev is not None and b != prev["block"] + 1:
            report.problem = f"block {prev['block'] + 1}: its seal is missing (next seal is block {b})"
            return report
        if prev is not None and s["prev_digest"] != prev["digest"]:
            report.problem = f"block {b}: chain broken (previous digest does not match block {prev['block']})"
            return report
        if not hmac.compare_digest(sign(key, s), s["signature"]):
            report.problem = f"block {b}: seal signature invalid (seal altered or another key)"
            return report
        if s["first_id"] > s["last_id"] or (prev is not None and s["first_id"] <= prev["last_id"]):
            report.problem = f"block {b}: its id range overlaps the previous block"
            return report
        if peek is not None and peek["id"] < s["first_id"]:
            report.problem = f"row {peek['id']}: inserted outside the sealed blocks (before block {b})"
            return report
        members: list[dict[str, Any]] = []
        while peek is not None and peek["id"] <= s["last_id"]:
            members.append(dict(peek))
            peek = next(rows, None)
        hashes = [row_hash(r) for r in members]
        if len(members) != s["row_count"] or block_digest(s["prev_digest"], hashes) != s["digest"]:
            sealed = conn.execute(select(_seals.c.row_digests).where(_seals.c.block == b)).scalar_one()
            report.problem = _locate(b, members, hashes, sealed)
            return report
        purges.extend(r for r in members if r["action"] == PURGE_ACTION)
        report.blocks += 1
        report.rows += len(members)
        prev = s
    while peek is not None:
        if peek["action"] == PURGE_ACTION:
            purges.append(dict(peek))
        report.pending += 1
        peek = next(rows, None)
    if seals and seals[0]["block"] != 1:
        first = seals[0]
        if not any(p["details"].get("through_block") == first["block"] - 1
                   and p["details"].get("anchor") == first["prev_digest"] for p in purges):
            report.problem = (f"blocks 1-{first['block'] - 1}: missing, and no retention purge of them "
                              f"is recorded")
    return report


def purge_before(session: Session, cutoff: datetime, *, max_blocks: int = 500) -> int:
    """Retention: delete whole sealed blocks whose rows are all older than `cutoff`
    (clamped to at least six months ago), oldest first, with their seals; the newest
    seal always stays so that sealing continues the chain. Records the anchor (the
    last purged digest) in an audit row. Answers the rows deleted (call again until 0)."""
    cutoff = min(cutoff, utc_now() - MIN_RETENTION)
    conn = session.connection()
    serialise(conn, _SEAL_LOCK)
    newest = conn.execute(select(func.max(_seals.c.block))).scalar()
    if newest is None:
        return 0
    candidates = conn.execute(select(_seals.c.block, _seals.c.first_id, _seals.c.last_id, _seals.c.last_at,
                                     _seals.c.digest)
                              .where(_seals.c.block < newest).order_by(_seals.c.block).limit(max_blocks)).all()
    blocks = []
    for c in candidates:
        if c.last_at >= cutoff:
            break
        blocks.append(c)
    if not blocks:
        return 0
    postgres = is_postgres(session)
    if postgres:
        conn.execute(text("SELECT set_config('carepoints.audit_purge', 'on', true)"))
    else:
        conn.execute(insert(_gate), [{"id": 1}])
    # on failure the whole transaction rolls back, the gate with it
    deleted = 0
    for c in blocks:
        deleted += conn.execute(delete(_log).where(_log.c.id >= c.first_id, _log.c.id <= c.last_id)).rowcount
    conn.execute(delete(_seals).where(_seals.c.block <= blocks[-1].block))
    if postgres:
        conn.execute(text("SELECT set_config('carepoints.audit_purge', 'off', true)"))
    else:
        conn.execute(delete(_gate))
    now = utc_now()
    conn.execute(insert(_log), [{
        "id": new_id(), "at": now, "actor_kind": "system", "actor_id": "apply-retention", "actor_role": None,
        "action": PURGE_ACTION, "subject_id": None, "patient_id": None, "on_behalf_of": None,
        "details": {"blocks": len(blocks), "rows": deleted, "through_block": blocks[-1].block,
                    "anchor": blocks[-1].digest, "cutoff": iso_z(cutoff)}}])
    return deleted
