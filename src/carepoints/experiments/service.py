"""Experiments (A/B tests of rules): create, start, stop, read, and the arms the rules
engine applies.

- Creating needs an ethics approval reference (伦理审批号) and overrides of rules the
  programme has; the same code with the same body answers the first experiment again,
  with another body 409. Every write is audited with ids and codes only.
- Start and stop are guarded UPDATEs (`WHERE status = 'draft'` / `'running'`), so of two
  racing starts one wins and the other is 409. Starts also queue one behind the other, so
  that two running experiments never override the same rule.
- Only patients with a research consent are in an experiment (`arms`); the others get the
  programme as it is.

Experiments sit below `rules`, so they cannot ask the programme which rules exist: the
rules domain installs that answer at import (`use_rule_catalogue`), as higher domains join
ingest through `events.service.observe`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.experiments import assign
from carepoints.experiments import repository as repo
from carepoints.experiments.errors import (
    BadOverrideError,
    EthicsRefRequiredError,
    ExperimentCodeTakenError,
    ExperimentNotFoundError,
    NotDraftError,
    NotRunningError,
    OverlappingExperimentError,
    UnknownRuleError,
)
from carepoints.experiments.schemas import ExperimentCreate, RuleOverride
from carepoints.kit.bulk import savepoint
from carepoints.kit.ids import is_id, new_id, request_digest
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError

# --- the programme's rules, as the rules domain describes them ---------------------------

@dataclass(frozen=True, slots=True)
class RuleShape:
    """What an override may change of an active rule."""

    points: int
    multiplier: bool
    daily_cap: bool


RuleCatalogue = Callable[[Session], Mapping[str, RuleShape]]
_catalogue: list[RuleCatalogue] = []


def use_rule_catalogue(catalogue: RuleCatalogue) -> None:
    """Install the answer to "which active rules does the programme have" (rules.service)."""
    _catalogue[:] = [catalogue]


def _check_overrides(session: Session, body: ExperimentCreate) -> None:
    if not _catalogue:
        raise RuntimeError("the rules domain has not installed its rule catalogue")
    shapes = _catalogue[0](session)
    for variant in body.variants:
        for o in variant.overrides:
            shape = shapes.get(o.rule)
            if shape is None:
                raise UnknownRuleError(rule=o.rule)
            problem = _problem(o, shape)
            if problem is not None:
                raise BadOverrideError(rule=o.rule, reason_zh=problem[0], reason_en=problem[1])


def _problem(o: RuleOverride, shape: RuleShape) -> tuple[str, str] | None:
    if shape.multiplier and (o.points is not None or o.daily_points is not None):
        return "倍数规则只能启用或停用", "a multiplier rule can only be enabled or disabled"
    if o.points is not None and (o.points > 0) != (shape.points > 0):
        return "积分的正负不能改变", "points cannot change sign"
    if o.daily_points is not None and not shape.daily_cap:
        return "该规则没有每日积分上限", "the rule has no daily points cap"
    return None


# --- documents ------------------------------------------------------------------------

def _doc(row: RowMapping) -> dict[str, Any]:
    total = sum(int(v["weight"]) for v in row["variants"])
    return {
        "id": row["id"], "code": row["code"], "names": {"zh": row["name_zh"], "en": row["name_en"]},
        "ethics_ref": row["ethics_ref"], "status": row["status"],
        "variants": [{"code": v["code"], "weight": v["weight"], "share": round(int(v["weight"]) / total, 4),
                      "control": i == 0, "overrides": v.get("overrides") or []}
                     for i, v in enumerate(row["variants"])],
        "created_at": row["created_at"], "started_at": row["started_at"], "stopped_at": row["stopped_at"],
    }


def _require(conn: Connection, experiment_id: str) -> RowMapping:
    row = repo.get(conn, experiment_id) if is_id(experiment_id) else None
    if row is None:
        raise ExperimentNotFoundError()
    return row


def get(session: Session, experiment_id: str) -> dict[str, Any]:
    return _doc(_require(session.connection(), experiment_id))


def listing(session: Session, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first."""
    return [_doc(r) for r in repo.listing(session.connection(), status, limit)]


# --- writes ---------------------------------------------------------------------------

def create(session: Session, body: ExperimentCreate, actor: Actor, now: datetime) -> tuple[dict[str, Any], bool]:
    """A draft experiment (created True), or the one already stored under this code with the
    same body (created False); another body under the code is 409. Audited."""
    if body.ethics_ref is None or not body.ethics_ref.strip():
        raise EthicsRefRequiredError()
    doc = body.model_dump(mode="json", exclude_none=True)
    digest = request_digest({**doc, "ethics_ref": body.ethics_ref.strip()})
    conn = session.connection()
    found = repo.by_code(conn, body.code)
    if found is not None:
        return _same(found, digest, body.code), False
    _check_overrides(session, body)
    eid = new_id()
    try:
        with savepoint(conn, "cp_experiment"):
            repo.add(conn, {
                "id": eid, "code": body.code, "name_zh": body.names.zh, "name_en": body.names.en,
                "ethics_ref": body.ethics_ref.strip(), "variants": doc["variants"], "request_hash": digest,
                "status": "draft", "created_at": now, "created_by_kind": actor.kind, "created_by_id": actor.id,
                "started_at": None, "stopped_at": None})
    except IntegrityError:  # a concurrent create of the code committed first
        found = repo.by_code(conn, body.code)
        if found is None:
            raise
        return _same(found, digest, body.code), False
    audit.record(session, actor, "experiments:experiment:create", now, subject_id=eid, code=body.code,
                 variants=[v.code for v in body.variants], rules=sorted(body.covered_rules()))
    return _doc(_require(conn, eid)), True


def _same(found: RowMapping, digest: str, code: str) -> dict[str, Any]:
    if found["request_hash"] != digest:
        raise ExperimentCodeTakenError(code=code)
    return _doc(found)


def _covers(row: RowMapping) -> set[str]:
    return {o["rule"] for v in row["variants"] for o in v.get("overrides") or ()}


def start(session: Session, experiment_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """draft → running (409 `experiments.not_draft` otherwise, 409 `experiments.overlap` when a
    running experiment overrides one of the same rules). Audited."""
    conn = session.connection()
    row = _require(conn, experiment_id)
    repo.serialise_starts(conn)
    if not repo.move(conn, experiment_id, "draft", "running", started_at=now):
        raise NotDraftError(status=_require(conn, experiment_id)["status"])
    mine = _covers(row)
    for other in repo.running(conn):
        shared = mine & _covers(other) if other["id"] != experiment_id else set()
        if shared:
            raise OverlappingExperimentError(other=other["code"], rules=", ".join(sorted(shared)))
    audit.record(session, actor, "experiments:experiment:start", now, subject_id=experiment_id, code=row["code"])
    forget()
    return _doc(_require(conn, experiment_id))


def stop(session: Session, experiment_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """running → stopped (409 `experiments.not_running` otherwise). Events that occurred while
    it ran keep their variant, even when they arrive later. Audited."""
    conn = session.connection()
    row = _require(conn, experiment_id)
    if not repo.move(conn, experiment_id, "running", "stopped", stopped_at=now):
        raise NotRunningError(status=_require(conn, experiment_id)["status"])
    audit.record(session, actor, "experiments:experiment:stop", now, subject_id=experiment_id, code=row["code"])
    forget()
    return _doc(_require(conn, experiment_id))


# --- assignment -----------------------------------------------------------------------

def assignment(session: Session, experiment_id: str, patient_id: str, now: datetime) -> dict[str, Any]:
    """The patient's variant now, or `variant: null` with the reason (`not_running`,
    `no_research_consent`)."""
    conn = session.connection()
    row = _require(conn, experiment_id)
    if not is_id(patient_id) or not patients.exists(session, patient_id):
        raise PatientNotFoundError()
    base = {"experiment_id": row["id"], "code": row["code"], "patient_id": patient_id}
    if row["status"] != "running":
        return {**base, "variant": None, "reason": "not_running"}
    spans = repo.research_consents(conn, [patient_id]).get(patient_id, [])
    if not any(a <= now and (w is None or now < w) for a, w in spans):
        return {**base, "variant": None, "reason": "no_research_consent"}
    exp = compiled(row)
    variant = exp.variant_of(patient_id)
    return {**base, "variant": variant.code, "control": variant is exp.variants[0],
            "overrides": [o.model_dump(exclude_none=True) for o in variant.overrides.values()]}


def compiled(row: RowMapping) -> assign.Compiled:
    return assign.Compiled.of(row["id"], row["code"], row["started_at"], row["stopped_at"], row["variants"])


# --- what the rules engine applies ----------------------------------------------------

_cache: dict[str, tuple[tuple[int, str | None], tuple[assign.Compiled, ...]]] = {}
_cache_lock = threading.Lock()


_TX_KEY = "carepoints.experiments"  # conn.info: (transaction, generation, experiments) last read on it
_generation = [0]  # bumped by `forget`, so a transaction that starts or stops one reads again


def forget() -> None:
    """Drop this process's compiled experiments (after a start or stop here)."""
    with _cache_lock:
        _cache.clear()
        _generation[0] += 1


def started(conn: Connection) -> tuple[assign.Compiled, ...]:
    """Every started (running or stopped) experiment, compiled; cached per database and
    revalidated by one cheap query per transaction (an ingest batch sees one set, as it
    sees one set of programme versions), so a start in another process is seen by the
    next transaction."""
    tx = conn.get_transaction()
    memo = conn.info.get(_TX_KEY)
    if memo is not None and tx is not None and memo[0] is tx and memo[1] == _generation[0]:
        return memo[2]  # type: ignore[no-any-return]
    found = _started(conn)
    conn.info[_TX_KEY] = (tx, _generation[0], found)
    return found


def _started(conn: Connection) -> tuple[assign.Compiled, ...]:
    stamp = repo.stamp(conn)
    if stamp[0] == 0:
        return ()
    url = str(conn.engine.url)
    hit = _cache.get(url)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    found = tuple(compiled(r) for r in repo.started(conn))
    with _cache_lock:
        _cache[url] = (stamp, found)
    return found


def arms(conn: Connection, patient_ids: Iterable[str]) -> dict[str, list[assign.Arm]]:
    """The arms of these patients (only those in some experiment): one query when no
    experiment was ever started, two when one was (the research consents of the batch)."""
    experiments = started(conn)
    ids = list(patient_ids)
    if not experiments or not ids:
        return {}
    since = min(e.started_at for e in experiments)
    out: dict[str, list[assign.Arm]] = {}
    for pid, spans in repo.research_consents(conn, ids, since).items():
        found = assign.arms(experiments, pid, spans)
        if found:
            out[pid] = found
    return out
