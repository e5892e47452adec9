"""Real-name verification (实名认证) and duplicate records (疑似重复档案).

- Verification: staff saw an ID document at the desk (its kind is kept, never its number),
  or an external check behind an adapter (`Checker`: `none` refuses, `http` asks a configured
  service) answered verified or mismatch. Each step is a row of `patient_verifications`; the
  newest is the patient's status (none: unverified). The external call runs outside any
  transaction (`subject` reads, `run_check` asks, `record` writes), so no lock waits on it.
- Duplicates: two active records sharing a national id (equal blind index) or a name, birth
  date and phone (equal phone index and birth date, then the decrypted names compared) become
  one `duplicate_candidates` row, the pair ordered and unique, whoever finds it first
  (enrolment, in its transaction, or the `detect-duplicates` job). Staff dismiss one or merge
  the records (enrolment.merge calls `mark_merged`).
- Every write is audited with ids and codes only; services flush, never commit."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.enrolment.errors import (
    CandidateClosedError,
    CandidateNotFoundError,
    CheckerFailedError,
    CheckerUnavailableError,
    DocumentKindRequiredError,
    NoIdNumberError,
    PatientErasedError,
    PatientInactiveError,
)
from carepoints.enrolment.models import DuplicateCandidate, PatientVerification
from carepoints.kit.bulk import insert_new
from carepoints.kit.db import table, write_tx
from carepoints.kit.ids import is_id, new_id
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.patients.models import Patient

log = logging.getLogger("carepoints.identity")

VERIFIED, MISMATCH, UNVERIFIED = "verified", "mismatch", "unverified"
DESK, EXTERNAL = "desk_document", "external"
DOCUMENT_KINDS = ("resident_id", "passport", "hk_macao_permit", "taiwan_permit", "other")
NATIONAL_ID, NAME_BIRTH_PHONE = "national_id", "name_birth_phone"
OPEN, DISMISSED, MERGED = "open", "dismissed", "merged"
MAX_GROUP = 20  # records sharing one key that the job pairs up (more is a data problem, not duplicates)
JOB = Actor.system("detect-duplicates")

_ver = table(PatientVerification)
_cand = table(DuplicateCandidate)
_pat = table(Patient)


# --- the external check --------------------------------------------------------------------

class Checker(Protocol):
    """An external real-name check: answers "verified" or "mismatch", or raises
    CheckerUnavailableError / CheckerFailedError (409)."""

    @property
    def name(self) -> str: ...

    def check(self, name: str, id_number: str) -> str: ...


class NoChecker:
    name = "none"

    def check(self, name: str, id_number: str) -> str:
        raise CheckerUnavailableError()


@dataclass(frozen=True, slots=True)
class HttpChecker:
    """POSTs {"name", "id_number"} as JSON to `url` with a bearer token and reads
    {"result": "verified" | "mismatch"}; anything else (timeout, status, body) fails."""

    url: str
    token: str
    timeout: float
    name: str = "http"

    def check(self, name: str, id_number: str) -> str:
        try:
            r = httpx.post(self.url, json={"name": name, "id_number": id_number}, timeout=self.timeout,
                           headers={"Authorization": f"Bearer {self.token}"})
        except httpx.HTTPError as exc:
            log.warning("identity check failed: %s", type(exc).__name__)  # never the values sent
            raise CheckerFailedError() from None
        result: Any = None
        if r.status_code == 200:
            try:
                body = r.json()
                result = body.get("result") if isinstance(body, dict) else None
            except ValueError:
                result = None
        if result not in (VERIFIED, MISMATCH):
            log.warning("identity check answered status %s without a result", r.status_code)
            raise CheckerFailedError()
        return str(result)


def configured_checker() -> Checker:
    s = get_settings()
    if s.identity_checker == "http" and s.identity_checker_url:
        return HttpChecker(s.identity_checker_url, s.identity_checker_token, s.identity_checker_timeout_seconds)
    return NoChecker()


# --- verification --------------------------------------------------------------------------

def _active(session: Session, patient_id: str, *, lock: bool = False) -> patients.Resolved:
    found = patients.lock(session, patient_id) if lock else (
        patients.resolve(session, [patient_id], [])[0].get(patient_id) if is_id(patient_id) else None)
    if found is None:
        raise PatientNotFoundError()
    if found.status == "erased":
        raise PatientErasedError()
    if found.status != "active":
        raise PatientInactiveError(status=found.status)
    return found


def _ver_doc(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "method": row["method"], "document_kind": row["document_kind"],
            "outcome": row["outcome"], "checker": row["checker"], "verified_at": row["verified_at"],
            "actor": {"kind": row["actor_kind"], "id": row["actor_id"]}}


def verification(session: Session, patient_id: str) -> dict[str, Any]:
    """The patient's status (the newest step's outcome, or unverified) and every step, newest first."""
    if not patients.exists(session, patient_id):
        raise PatientNotFoundError()
    rows = session.connection().execute(select(_ver).where(_ver.c.patient_id == patient_id)
                                        .order_by(_ver.c.verified_at.desc(), _ver.c.id.desc())).mappings().all()
    history = [_ver_doc(r) for r in rows]
    return {"patient_id": patient_id, "status": history[0]["outcome"] if history else UNVERIFIED,
            "current": history[0] if history else None, "history": history}


def status_of(session: Session, patient_ids: Iterable[str]) -> dict[str, str]:
    """Patient id → verified | mismatch | unverified (their newest step)."""
    ids = sorted({p for p in patient_ids if is_id(p)})
    out = dict.fromkeys(ids, UNVERIFIED)
    if not ids:
        return out
    rows = session.connection().execute(select(_ver.c.patient_id, _ver.c.outcome).where(_ver.c.patient_id.in_(ids))
                                        .order_by(_ver.c.verified_at, _ver.c.id))
    for pid, outcome in rows:
        out[pid] = outcome  # the newest wins
    return out


def record(session: Session, patient_id: str, method: str, actor: Actor, now: datetime, *,
           document_kind: str | None = None, outcome: str = VERIFIED, checker: str | None = None
           ) -> dict[str, Any]:
    """Store one verification step of an active patient (under their row lock) and audit it."""
    if method == DESK and document_kind not in DOCUMENT_KINDS:
        raise DocumentKindRequiredError()
    _active(session, patient_id, lock=True)
    vid = new_id()
    row = {"id": vid, "patient_id": patient_id, "method": method,
           "document_kind": document_kind if method == DESK else None, "outcome": outcome, "checker": checker,
           "actor_kind": actor.kind, "actor_id": actor.id, "verified_at": now}
    session.connection().execute(_ver.insert(), [row])
    audit.record(session, actor, "patients:identity:verify", now, subject_id=vid, patient_id=patient_id,
                 method=method, document_kind=row["document_kind"], outcome=outcome, checker=checker)
    return verification(session, patient_id)


def subject(session: Session, patient_id: str) -> tuple[str, str]:
    """(name, national id) to send to the external check; 409 when there is no id number."""
    _active(session, patient_id)
    name, id_number = patients.pii_of(session, [patient_id]).get(patient_id, ("", None))
    if not id_number:
        raise NoIdNumberError()
    return name, id_number


def run_check(checker: Checker, person: tuple[str, str]) -> str:
    """Ask the external check (outside any transaction): verified | mismatch."""
    return checker.check(*person)


def record_failure(session: Session, patient_id: str, checker: str, code: str, actor: Actor, now: datetime) -> None:
    """Audit an external check that did not answer (the error code only); no status changes."""
    audit.record(session, actor, "patients:identity:check_failed", now, subject_id=patient_id, patient_id=patient_id,
                 checker=checker, error=code)


# --- duplicate detection -------------------------------------------------------------------

def _norm(name: str) -> str:
    return "".join(name.split()).casefold()


def _add(session: Session, a: str, b: str, reason: str, now: datetime, actor: Actor) -> bool:
    low, high = (a, b) if a < b else (b, a)
    cid = new_id()
    if not insert_new(session.connection(), _cand, {
            "id": cid, "patient_a": low, "patient_b": high, "reason": reason, "status": OPEN, "detected_at": now,
            "reviewed_by": None, "reviewed_at": None, "note": None}, ("patient_a", "patient_b")):
        return False
    audit.record(session, actor, "patients:duplicate:detect", now, subject_id=cid, patient_id=low, other=high,
                 reason=reason)
    return True


def _same_names(session: Session, ids: list[str]) -> list[tuple[str, str]]:
    """The pairs among these records whose decrypted names are equal (spaces and case aside)."""
    names = {pid: _norm(n) for pid, (n, _idn) in patients.pii_of(session, ids).items()}
    return [(a, b) for a, b in itertools.combinations(sorted(names), 2) if names[a] and names[a] == names[b]]


def detect_for(session: Session, patient_id: str, now: datetime, actor: Actor | None = None) -> int:
    """Candidates pairing this (active) patient with other active records: equal national-id
    index, or equal phone index and birth date with the same name. Two indexed queries and
    one decryption per phone match; idempotent. Returns how many candidates are new."""
    conn = session.connection()
    me = conn.execute(select(_pat.c.id_number_index, _pat.c.phone_index, _pat.c.birth_date, _pat.c.status)
                      .where(_pat.c.id == patient_id)).first()
    if me is None or me.status != "active":
        return 0
    who = actor or JOB
    added = 0
    by_id: set[str] = set()
    if me.id_number_index:
        by_id = {r[0] for r in conn.execute(select(_pat.c.id).where(
            _pat.c.id_number_index == me.id_number_index, _pat.c.id != patient_id, _pat.c.status == "active")
            .limit(MAX_GROUP))}
        added += sum(_add(session, patient_id, other, NATIONAL_ID, now, who) for other in sorted(by_id))
    if me.phone_index and me.birth_date is not None:
        same = [r[0] for r in conn.execute(select(_pat.c.id).where(
            _pat.c.phone_index == me.phone_index, _pat.c.birth_date == me.birth_date, _pat.c.id != patient_id,
            _pat.c.status == "active").order_by(_pat.c.id).limit(MAX_GROUP))]
        others = [p for p in same if p not in by_id]
        if others:
            pairs = _same_names(session, [patient_id, *others])
            added += sum(_add(session, a, b, NAME_BIRTH_PHONE, now, who) for a, b in pairs if patient_id in (a, b))
    return added


def _groups(session: Session, column: str, after: str, limit: int) -> list[str]:
    col = _pat.c[column]
    cond = [col.is_not(None), col > after, _pat.c.status == "active"]
    if column == "phone_index":
        cond.append(_pat.c.birth_date.is_not(None))
    return [r[0] for r in session.connection().execute(
        select(col).where(*cond).group_by(col).having(func.count() > 1).order_by(col).limit(limit))]


def _pairs_in(session: Session, column: str, key: str, now: datetime) -> int:
    conn = session.connection()
    rows = conn.execute(select(_pat.c.id, _pat.c.birth_date).where(_pat.c[column] == key, _pat.c.status == "active")
                        .order_by(_pat.c.id).limit(MAX_GROUP)).all()
    if column == "id_number_index":
        ids = [r[0] for r in rows]
        return sum(_add(session, a, b, NATIONAL_ID, now, JOB) for a, b in itertools.combinations(ids, 2))
    added = 0
    by_birth: dict[Any, list[str]] = {}
    for pid, birth in rows:
        if birth is not None:
            by_birth.setdefault(birth, []).append(pid)
    for ids in by_birth.values():
        if len(ids) > 1:
            added += sum(_add(session, a, b, NAME_BIRTH_PHONE, now, JOB) for a, b in _same_names(session, ids))
    return added


def detect_batch(session: Session, column: str, after: str, now: datetime, limit: int) -> tuple[int, int, str | None]:
    """One batch of the job: up to `limit` shared keys after `after`. Returns (groups, new
    candidates, the cursor to continue from, or None when done)."""
    keys = _groups(session, column, after, limit)
    added = sum(_pairs_in(session, column, k, now) for k in keys)
    return len(keys), added, (keys[-1] if len(keys) == limit else None)


def detect_duplicates(now: datetime) -> dict[str, Any]:
    """`detect-duplicates` (daily): every active record sharing a national id, or a phone and
    birth date with the same name, in batches of shared keys per transaction; idempotent
    (a pair already found, dismissed or merged is left as it is)."""
    limit = get_settings().duplicate_batch_size
    groups = added = 0
    for column in ("id_number_index", "phone_index"):
        cursor: str | None = ""
        while cursor is not None:
            with write_tx() as session:
                g, a, cursor = detect_batch(session, column, cursor, now, limit)
            groups, added = groups + g, added + a
    return {"groups": groups, "candidates": added}


# --- review --------------------------------------------------------------------------------

def _person(session: Session, patient_id: str, verified: dict[str, str]) -> dict[str, Any]:
    p = patients.read(session, patient_id, reveal_pii=False)  # masked name, phone and id number
    return {"id": p["id"], "name": p["name"], "phone": p["phone"], "id_number": p["id_number"],
            "birth_date": p["birth_date"], "sex": p["sex"], "status": p["status"],
            "verification": verified.get(patient_id, UNVERIFIED), "created_at": p["created_at"]}


def _cand_doc(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "patient_ids": [row["patient_a"], row["patient_b"]], "reason": row["reason"],
            "status": row["status"], "detected_at": row["detected_at"], "reviewed_by": row["reviewed_by"],
            "reviewed_at": row["reviewed_at"]}


def duplicates(session: Session, *, status: str, limit: int, before: str | None) -> dict[str, Any]:
    """The review list, newest first, with both records masked (name, phone, id number) and
    their verification status; `next` continues it."""
    stmt = select(_cand).where(_cand.c.status == status)
    if before:
        stmt = stmt.where(_cand.c.id < before)
    rows = session.connection().execute(stmt.order_by(_cand.c.id.desc()).limit(limit + 1)).mappings().all()
    page = rows[:limit]
    verified = status_of(session, [p for r in page for p in (r["patient_a"], r["patient_b"])])
    items = [{**_cand_doc(r), "patients": [_person(session, r["patient_a"], verified),
                                           _person(session, r["patient_b"], verified)]} for r in page]
    return {"items": items, "next": page[-1]["id"] if len(rows) > limit else None}



def candidate(session: Session, candidate_id: str) -> dict[str, Any]:
    """(pages.queues) One candidate of the review list, with both records masked as in
    `duplicates` (the merge confirmation step)."""
    row = session.connection().execute(select(_cand).where(_cand.c.id == candidate_id)).mappings().first() \
        if is_id(candidate_id) else None
    if row is None:
        raise CandidateNotFoundError()
    verified = status_of(session, [row["patient_a"], row["patient_b"]])
    return {**_cand_doc(row), "patients": [_person(session, row["patient_a"], verified),
                                           _person(session, row["patient_b"], verified)]}

def dismiss(session: Session, candidate_id: str, actor: Actor, now: datetime, *, note: str | None = None
            ) -> dict[str, Any]:
    """Staff judged the pair two people: the candidate is dismissed (one guarded update, so two
    reviewers dismiss it once; the second is told it is closed). The note is not audited."""
    conn = session.connection()
    row = conn.execute(select(_cand).where(_cand.c.id == candidate_id)).mappings().first() \
        if is_id(candidate_id) else None
    if row is None:
        raise CandidateNotFoundError()
    done = conn.execute(update(_cand).where(_cand.c.id == candidate_id, _cand.c.status == OPEN)
                        .values(status=DISMISSED, reviewed_by=actor.id, reviewed_at=now, note=note))
    if not done.rowcount:
        current = conn.execute(select(_cand.c.status).where(_cand.c.id == candidate_id)).scalar()
        raise CandidateClosedError(status=current)
    audit.record(session, actor, "patients:duplicate:dismiss", now, subject_id=candidate_id,
                 patient_id=row["patient_a"], other=row["patient_b"], reason=row["reason"])
    return _cand_doc(conn.execute(select(_cand).where(_cand.c.id == candidate_id)).mappings().one())


def mark_merged(session: Session, survivor_id: str, duplicate_id: str, actor: Actor, now: datetime) -> bool:
    """The merge (enrolment.merge) joined these two records: their candidate, if any and
    whatever its status, becomes merged. True when one changed; audited."""
    low, high = (survivor_id, duplicate_id) if survivor_id < duplicate_id else (duplicate_id, survivor_id)
    conn = session.connection()
    cid = conn.execute(select(_cand.c.id).where(_cand.c.patient_a == low, _cand.c.patient_b == high,
                                                _cand.c.status != MERGED)).scalar()
    if cid is None:
        return False
    done = conn.execute(update(_cand).where(_cand.c.id == cid, _cand.c.status != MERGED)
                        .values(status=MERGED, reviewed_by=actor.id, reviewed_at=now))
    if not done.rowcount:
        return False
    audit.record(session, actor, "patients:duplicate:merged", now, subject_id=cid, patient_id=survivor_id,
                 other=duplicate_id)
    return True
