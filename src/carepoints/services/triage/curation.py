"""The admin's care of the triage knowledge base: symptom terms (synonyms, department weights,
on / off), red flags (messages, combinations, on / off), which hospital departments a kind
stands for, and the daily counts. Every change is audited (ids and field names only) in the
same transaction.

Safety rules: a term an enabled red flag reads cannot be disabled, a synonym belongs to one
term only, weights name existing kinds, and red flags name existing terms."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.scheduling import service as scheduling
from carepoints.services.triage import repository as repo
from carepoints.services.triage import service
from carepoints.services.triage.errors import (
    DepartmentNotFoundError,
    InvalidPeriodError,
    KindNotFoundError,
    RedFlagNotFoundError,
    SynonymTakenError,
    TermExistsError,
    TermInRedFlagError,
    TermNotFoundError,
    UnknownKindError,
    UnknownTermError,
)
from carepoints.services.triage.schemas import (
    KindDepartments,
    RedFlagUpdate,
    TermCreate,
    TermUpdate,
    flag_terms,
)

MAX_PERIOD_DAYS = 366


# --- terms -------------------------------------------------------------------------------------

def _term_doc(row: RowMapping | dict[str, Any], flags: list[str]) -> dict[str, Any]:
    return {"id": row["id"], "name_zh": row["name_zh"], "name_en": row["name_en"], "synonyms": list(row["synonyms"]),
            "weights": dict(row["weights"]), "enabled": bool(row["enabled"]), "source": row["source"],
            "version": row["version"], "red_flags": flags, "updated_at": row["updated_at"].isoformat()}


def _flags_reading(session: Session) -> dict[str, list[str]]:
    """Term id → the enabled red flags that read it."""
    out: dict[str, list[str]] = {}
    for flag in repo.red_flags(session.connection()):
        if flag["enabled"]:
            for term in sorted(flag_terms(flag["when"])):
                out.setdefault(term, []).append(flag["id"])
    return out


def terms(session: Session, *, q: str | None = None, enabled: bool | None = None) -> list[dict[str, Any]]:
    """Every term, by id; `q` finds a word in the id, the names or the synonyms."""
    flags = _flags_reading(session)
    q = q.lower() if q else None
    out = []
    for row in repo.terms(session.connection()):
        if enabled is not None and bool(row["enabled"]) != enabled:
            continue
        if q and not any(q in str(v) for v in (row["id"], row["name_zh"], row["name_en"].lower(), *row["synonyms"])):
            continue
        out.append(_term_doc(row, flags.get(row["id"], [])))
    return out


def term(session: Session, term_id: str) -> dict[str, Any]:
    row = repo.term(session.connection(), term_id)
    if row is None:
        raise TermNotFoundError()
    return _term_doc(row, _flags_reading(session).get(term_id, []))


def _check_weights(session: Session, weights: dict[str, int]) -> None:
    unknown = sorted(set(weights) - repo.ids(session.connection(), repo.kinds_t, "code"))
    if unknown:
        raise UnknownKindError(kinds=", ".join(unknown))


def _check_synonyms(session: Session, term_id: str, synonyms: list[str]) -> None:
    owner = {syn: row["id"] for row in repo.terms(session.connection()) if row["id"] != term_id
             for syn in row["synonyms"]}
    for syn in synonyms:
        if syn in owner:
            raise SynonymTakenError(synonym=syn, term=owner[syn])


def create_term(session: Session, data: TermCreate, actor: Actor, now: datetime) -> dict[str, Any]:
    """Add a term (audited `triage:term:create`)."""
    conn = session.connection()
    if repo.term(conn, data.id) is not None:
        raise TermExistsError()
    _check_weights(session, data.weights)
    _check_synonyms(session, data.id, data.synonyms)
    row = {"id": data.id, "name_zh": data.name_zh, "name_en": data.name_en, "synonyms": data.synonyms,
           "weights": data.weights, "enabled": data.enabled, "source": "admin", "version": 1,
           "created_at": now, "updated_at": now}
    repo.add(conn, repo.terms_t, [row])
    audit.record(session, actor, "triage:term:create", now, subject_id=data.id, version=1)
    return _term_doc(row, [])


def update_term(session: Session, term_id: str, data: TermUpdate, actor: Actor, now: datetime) -> dict[str, Any]:
    """Change a term's names, synonyms, weights or state; its version rises by one (audited
    `triage:term:update` with the fields changed). Disabling a term an enabled red flag reads
    is refused (409 `triage.term_in_red_flag`)."""
    conn = session.connection()
    row = repo.term(conn, term_id, lock=True)
    if row is None:
        raise TermNotFoundError()
    values = {k: v for k, v in data.model_dump(exclude_none=True).items() if v != row[k]}
    if "weights" in values:
        _check_weights(session, values["weights"])
    if "synonyms" in values:
        _check_synonyms(session, term_id, values["synonyms"])
    if values.get("enabled") is False and (flags := _flags_reading(session).get(term_id)):
        raise TermInRedFlagError(flags=", ".join(flags))
    if values:
        values.update(version=row["version"] + 1, updated_at=now)
        repo.set_term(conn, term_id, **values)
        audit.record(session, actor, "triage:term:update", now, subject_id=term_id,
                     fields=sorted(k for k in values if k not in ("version", "updated_at")), version=values["version"])
    return term(session, term_id)


# --- red flags ----------------------------------------------------------------------------------

def _flag_doc(row: RowMapping) -> dict[str, Any]:
    return {"id": row["id"], "name_zh": row["name_zh"], "name_en": row["name_en"], "message_zh": row["message_zh"],
            "message_en": row["message_en"], "hotline_zh": row["hotline_zh"], "hotline_en": row["hotline_en"],
            "when": row["when"], "enabled": bool(row["enabled"]), "version": row["version"],
            "updated_at": row["updated_at"].isoformat()}


def red_flags(session: Session) -> list[dict[str, Any]]:
    return [_flag_doc(r) for r in repo.red_flags(session.connection())]


def red_flag(session: Session, flag_id: str) -> dict[str, Any]:
    row = repo.red_flag(session.connection(), flag_id)
    if row is None:
        raise RedFlagNotFoundError()
    return _flag_doc(row)


def update_red_flag(session: Session, flag_id: str, data: RedFlagUpdate, actor: Actor, now: datetime
                    ) -> dict[str, Any]:
    """Change a red flag's names, messages, term combinations or state (audited
    `triage:red_flag:update`); its combinations must name existing terms (422)."""
    conn = session.connection()
    row = repo.red_flag(conn, flag_id, lock=True)
    if row is None:
        raise RedFlagNotFoundError()
    values = {k: v for k, v in data.model_dump(exclude_none=True).items() if v != row[k]}
    if "when" in values and (unknown := sorted(flag_terms(values["when"]) - repo.ids(conn, repo.terms_t, "id"))):
        raise UnknownTermError(terms=", ".join(unknown))
    if values:
        values.update(version=row["version"] + 1, updated_at=now)
        repo.set_red_flag(conn, flag_id, **values)
        audit.record(session, actor, "triage:red_flag:update", now, subject_id=flag_id,
                     fields=sorted(k for k in values if k not in ("version", "updated_at")), version=values["version"])
    return red_flag(session, flag_id)


# --- kinds and hospital departments ----------------------------------------------------------

def kinds(session: Session) -> list[dict[str, Any]]:
    """Every kind with the departments it stands for now, and how each was mapped."""
    conn = session.connection()
    rows = repo.kinds(conn)
    sources = {(m["kind_code"], m["department_id"]): m["source"] for m in repo.mappings(conn) if m["enabled"]}
    mapped = service.departments_by_kind(session, rows)
    return [{"code": k["code"], "name_zh": k["name_zh"], "name_en": k["name_en"], "names": list(k["names"]),
             "sex": k["sex"], "enabled": bool(k["enabled"]),
             "departments": [{"id": d["id"], "institution_id": d["institution_id"], "name_zh": d["name_zh"],
                              "name_en": d["name_en"], "source": sources.get((k["code"], d["id"]), "name")}
                             for d in mapped[k["code"]]]} for k in rows]


def kind(session: Session, code: str) -> dict[str, Any]:
    for doc in kinds(session):
        if doc["code"] == code:
            return doc
    raise KindNotFoundError()


def set_kind_departments(session: Session, code: str, data: KindDepartments, actor: Actor, now: datetime
                         ) -> dict[str, Any]:
    """The departments a kind stands for, as the admin says: every department gets a row for
    the kind (enabled for the chosen, disabled for the others, so that name matching leaves
    them alone). Audited `triage:kind:map` with the department ids."""
    conn = session.connection()
    if repo.kind(conn, code) is None:
        raise KindNotFoundError()
    depts = {d["id"]: d for d in scheduling.departments(session)}
    chosen = list(dict.fromkeys(data.department_ids))
    if missing := [d for d in chosen if d not in depts]:
        raise DepartmentNotFoundError(ids=", ".join(missing))
    repo.replace_mappings(conn, code, [
        {"kind_code": code, "department_id": d["id"], "institution_id": d["institution_id"], "source": "admin",
         "enabled": d["id"] in chosen, "updated_at": now} for d in depts.values()])
    audit.record(session, actor, "triage:kind:map", now, subject_id=code, department_ids=sorted(chosen))
    return kind(session, code)


def match_by_name(session: Session, actor: Actor, now: datetime) -> dict[str, Any]:
    """Map the departments no row covers by name (as at start-up); audited `triage:kind:match`."""
    added = service.match_departments(session, now)
    audit.record(session, actor, "triage:kind:match", now, added=added)
    return {"added": added}


# --- counts -------------------------------------------------------------------------------------

def stats(session: Session, start: date, end: date) -> dict[str, Any]:
    """Triages per day and, over the period, per red flag, first kind suggested and unmatched."""
    if start > end or (end - start) > timedelta(days=MAX_PERIOD_DAYS):
        raise InvalidPeriodError()
    conn = session.connection()
    by: dict[str, list[dict[str, Any]]] = {"red_flag": [], "department": [], "unmatched": []}
    total = 0
    for row in repo.counts(conn, start, end):
        if row["dimension"] == "total":
            total = int(row["count"])
        elif row["dimension"] in by:
            by[row["dimension"]].append({"code": row["code"], "count": int(row["count"])})
    days = [{"day": r["day"].isoformat() if isinstance(r["day"], date) else str(r["day"]), "count": int(r["count"])}
            for r in repo.daily_totals(conn, start, end)]
    return {"start": start.isoformat(), "end": end.isoformat(), "total": total, "days": days,
            "red_flags": by["red_flag"], "departments": by["department"],
            "unmatched": sum(r["count"] for r in by["unmatched"])}
