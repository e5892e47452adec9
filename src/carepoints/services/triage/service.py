"""Triage guidance (智能导诊) use cases: answer a symptom description, and keep the knowledge
base in the database (loaded from the shipped file at start-up, never overwriting an edit).

An answer is urgent when a red flag fires: then it holds the red flags and the advice to go
to the emergency department or call 120, and nothing else. Otherwise it suggests department
kinds with the patient's own words as the reason, the hospital departments each kind stands
for (the mapping, or name matching for departments it does not cover), and clinicians of
those departments with upcoming open sessions (scheduling's read functions). It never
diagnoses, and always carries the disclaimer.

The symptom text is health data: it is analysed in memory and never logged, stored or put in
an audit row or an error. A triage leaves only +1 on counts of its local day (total, each red
flag raised, the first kind suggested, nothing recognised) — no text, no patient id."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.kit.db import serialise
from carepoints.kit.ids import is_id
from carepoints.kit.time import local_date
from carepoints.patients import service as patients
from carepoints.scheduling import service as scheduling
from carepoints.scheduling.slots import usable_pools
from carepoints.security import scope
from carepoints.services.triage import engine, knowledge
from carepoints.services.triage import repository as repo
from carepoints.services.triage.errors import InstitutionNotFoundError
from carepoints.services.triage.schemas import KnowledgeDoc, TriageAsk, flag_terms

CLINICIANS_PER_DEPARTMENT = 3
MAX_CLINICIANS = 8
CHANNEL = "online"

ADVICE = "请立即前往急诊 / 拨打120"
ADVICE_ZH = "请立即前往急诊或拨打120急救电话"
ADVICE_EN = "Go to the emergency department now, or call 120"
DISCLAIMER_ZH = "本建议仅供挂号参考,不能代替医生诊断"
DISCLAIMER_EN = "For choosing a department only, not a diagnosis"
DISCLAIMER = f"{DISCLAIMER_ZH} / {DISCLAIMER_EN}"
SAFETY_ZH = "如果症状严重、突然加重,或您觉得情况紧急,请立即拨打120"
SAFETY_EN = "If symptoms are severe, get worse suddenly, or feel urgent to you, call 120 now"
FRONT_DESK_ZH = "未能识别您描述的症状,建议先看全科/普通内科,或到医院导诊台咨询工作人员"
FRONT_DESK_EN = "We could not recognise the symptoms: start with general practice, or ask at the hospital's front desk"
KNOWLEDGE_LOCK = "triage:knowledge"
KNOWLEDGE_STATE = "shipped"
_NOT_IN_NAME = re.compile(r"[\s()()【】\[\]]|门诊|诊室|专科")


# --- the knowledge base in the database ---------------------------------------------------------

def fingerprint(doc: KnowledgeDoc) -> str:
    """The SHA-256 of a knowledge base's content: what start-up compares with the recorded one."""
    return hashlib.sha256(doc.model_dump_json().encode()).hexdigest()


def ensure_knowledge(session: Session, now: datetime, doc: KnowledgeDoc | None = None) -> int:
    """Bring the tables up to the shipped knowledge base (`doc`: the shipped file) when it is not
    the one they were last refreshed from (its fingerprint, recorded), then map departments by
    name. Answers the rows added or changed (bootstrap.seed runs this at every start).

    What is missing is added; a kind, term or red flag still exactly as shipped (a term of source
    shipped and a red flag never edited: version 1) is rewritten to the shipped content, so
    that shipped synonyms, weights and red-flag alternatives reach existing installations; one
    no longer shipped is disabled (a term only when no enabled red flag reads it). Every row an
    admin created or edited is left alone, and its synonyms stay its own. One start-up at a
    time (an advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite); the others, and every
    start-up with an unchanged file, find the fingerprint recorded and change nothing."""
    conn = session.connection()
    doc = doc or knowledge.shipped()
    mark = fingerprint(doc)
    serialise(conn, KNOWLEDGE_LOCK)
    changed = 0
    recorded = repo.fingerprint(conn, KNOWLEDGE_STATE)
    if recorded != mark:
        counts = _refresh(conn, doc, now)
        repo.set_fingerprint(conn, KNOWLEDGE_STATE, mark, now)
    if recorded is not None and recorded != mark:  # an installation's first load is not a change to audit
        audit.record(session, Actor.system("triage.knowledge"), "triage:knowledge:refresh", now,
                     fingerprint=mark[:16], added=counts["added"], refreshed=counts["refreshed"],
                     disabled=counts["disabled"])
    if recorded != mark:
        changed = sum(counts.values())
    return changed + match_departments(session, now)


def _refresh(conn: Connection, doc: KnowledgeDoc, now: datetime) -> dict[str, int]:
    counts = {"added": 0, "refreshed": 0, "disabled": 0}
    kinds = {k["code"]: k for k in repo.kinds(conn)}
    for k in doc.kinds:
        values = {"name_zh": k.zh, "name_en": k.en, "names": list(k.names), "sex": k.sex, "sort": k.sort}
        have = kinds.get(k.code)
        if have is None:
            repo.add(conn, repo.kinds_t, [{"code": k.code, **values, "enabled": True, "updated_at": now}])
            counts["added"] += 1
        elif any(have[f] != v for f, v in values.items()):
            repo.set_kind(conn, k.code, **values, updated_at=now)
            counts["refreshed"] += 1
    rows = {t["id"]: t for t in repo.terms(conn)}
    pristine = {i for i, r in rows.items() if r["source"] == "shipped" and r["version"] == 1}
    taken = {s for i, r in rows.items() if i not in pristine for s in r["synonyms"]}  # an admin's words
    for t in doc.terms:
        term = {"name_zh": t.zh, "name_en": t.en, "synonyms": [s for s in t.synonyms if s not in taken],
                "weights": dict(t.weights), "enabled": True}
        have = rows.get(t.id)
        if have is None:
            repo.add(conn, repo.terms_t, [{"id": t.id, **term, "source": "shipped", "version": 1, "created_at": now,
                                           "updated_at": now}])
            counts["added"] += 1
        elif t.id in pristine and any(have[f] != v for f, v in term.items()):
            counts["refreshed"] += repo.refresh_term(conn, t.id, **term, updated_at=now)
    flags = {f["id"]: f for f in repo.red_flags(conn)}
    for n, f in enumerate(doc.red_flags, start=1):
        flag = {"name_zh": f.zh, "name_en": f.en, "message_zh": f.message_zh, "message_en": f.message_en,
                "hotline_zh": f.hotline_zh, "hotline_en": f.hotline_en, "when": f.when, "sort": n, "enabled": True}
        have = flags.get(f.id)
        if have is None:
            repo.add(conn, repo.flags_t, [{"id": f.id, **flag, "version": 1, "updated_at": now}])
            counts["added"] += 1
        elif have["version"] == 1 and any(have[k] != v for k, v in flag.items()):
            counts["refreshed"] += repo.refresh_red_flag(conn, f.id, **flag, updated_at=now)
    shipped_flags = {f.id for f in doc.red_flags}
    for fid, have in flags.items():
        if fid not in shipped_flags and have["version"] == 1 and have["enabled"]:
            counts["disabled"] += repo.refresh_red_flag(conn, fid, enabled=False, updated_at=now)
    read = {t for f in repo.red_flags(conn) if f["enabled"] for t in flag_terms(f["when"])}
    shipped_terms = {t.id for t in doc.terms}
    for tid in sorted(pristine - shipped_terms - read):
        if rows[tid]["enabled"]:
            counts["disabled"] += repo.refresh_term(conn, tid, enabled=False, updated_at=now)
    return counts


def load(session: Session) -> engine.Knowledge:
    """The engine's knowledge from the tables: enabled kinds, terms and red flags."""
    conn = session.connection()
    return knowledge.from_rows(repo.kinds(conn), repo.terms(conn), repo.red_flags(conn))


def normal_name(name: str) -> str:
    """A department name as kinds match it: without spaces, brackets and 门诊 / 诊室 / 专科."""
    return _NOT_IN_NAME.sub("", name).strip()


def _matches(kind: Mapping[Any, Any], department: Mapping[Any, Any]) -> bool:
    names = {normal_name(n) for n in kind["names"]} | {normal_name(kind["name_zh"])}
    return normal_name(str(department["name_zh"])) in names


def match_departments(session: Session, now: datetime) -> int:
    """Map each department no row covers for a kind whose names it matches (source `name`);
    answers the rows added. An admin's rows, enabled or not, are left as they are."""
    conn = session.connection()
    covered = {(m["kind_code"], m["department_id"]) for m in repo.mappings(conn)}
    rows = [{"kind_code": k["code"], "department_id": d["id"], "institution_id": d["institution_id"],
             "source": "name", "enabled": True, "updated_at": now}
            for k in repo.kinds(conn) for d in scheduling.departments(session)
            if (k["code"], d["id"]) not in covered and _matches(k, d)]
    repo.add(conn, repo.map_t, rows)
    return len(rows)


def departments_by_kind(session: Session, kinds: Sequence[Mapping[Any, Any]] | None = None
                        ) -> dict[str, list[dict[str, Any]]]:
    """Kind code → the hospital departments it stands for: the enabled rows of the mapping, and
    by name the departments that have no row for the kind (created since the last match)."""
    conn = session.connection()
    chosen: Sequence[Mapping[Any, Any]] = kinds if kinds is not None else repo.kinds(conn)
    rows = {(m["kind_code"], m["department_id"]): bool(m["enabled"]) for m in repo.mappings(conn)}
    depts = scheduling.departments(session)
    out: dict[str, list[dict[str, Any]]] = {}
    for k in chosen:
        out[k["code"]] = [d for d in depts if rows.get((k["code"], d["id"]), _matches(k, d))]
    return out


# --- asking ------------------------------------------------------------------------------------------

def _age(birth: date | None, today: date) -> int | None:
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _profile(session: Session, data: TriageAsk, today: date) -> tuple[int | None, str | None]:
    """The age and sex to use: as sent, else the named patient's (a patient token names only
    patients in its reach: 404 otherwise)."""
    age: int | None = data.age
    sex: str | None = data.sex
    if data.patient_id is not None and (age is None or sex is None):
        pid = patients.id_for(session, data.patient_id)
        record = patients.read(session, pid, reveal_pii=False)
        birth = record["birth_date"]
        if age is None:
            age = _age(birth if isinstance(birth, date) else None, today)
        if sex is None and record["sex"] in ("male", "female"):
            sex = str(record["sex"])
    elif data.patient_id is not None:
        patients.id_for(session, data.patient_id)
    return age, sex


def profile_defaults(session: Session, patient_id: str, now: datetime) -> dict[str, Any]:
    """The age and sex a triage form starts with for a patient (their profile; None when unknown)."""
    record = patients.read(session, patients.id_for(session, patient_id), reveal_pii=False)
    birth = record["birth_date"]
    sex = record["sex"] if record["sex"] in ("male", "female") else None
    return {"age": _age(birth if isinstance(birth, date) else None, local_date(now, get_settings().tz)), "sex": sex}


def ask(session: Session, data: TriageAsk, now: datetime) -> dict[str, Any]:
    """Answer a symptom description (see the module's docstring); counts the answer for the day."""
    today = local_date(now, get_settings().tz)
    age, sex = _profile(session, data, today)
    kb = load(session)
    result = engine.analyse(kb, data.text, age=age, sex=sex, pregnant=data.pregnant)
    if result.urgent:
        doc = _urgent(kb, result)
        keys = [("total", "all"), *(("red_flag", f.id) for f in result.red_flags)]
    else:
        doc = _guidance(session, kb, result, now, today, data.institution_id)
        first = result.departments[0].kind
        keys = [("total", "all"), ("department", first)] + ([("unmatched", first)] if result.unmatched else [])
    repo.bump(session.connection(), today, keys)
    return doc


def _said(mentions: Iterable[engine.Mention], terms: set[str] | None = None) -> list[str]:
    return list(dict.fromkeys(m.said for m in mentions if terms is None or m.term in terms))


def _quoted(words: Sequence[str]) -> str:
    return "".join(f"“{w}”" for w in words)


def _mention_docs(kb: engine.Knowledge, mentions: Iterable[engine.Mention]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for m in mentions:
        term = kb.terms.get(m.term)
        if term is not None and m.term not in out:
            out[m.term] = {"term": m.term, "name_zh": term.name_zh, "name_en": term.name_en, "said": m.said}
    return list(out.values())


def _urgent(kb: engine.Knowledge, result: engine.Analysis) -> dict[str, Any]:
    flags = []
    for flag in result.red_flags:
        terms = {t for alternative in flag.when for group in alternative for t in group}
        said = _said(result.recognised, terms)
        flags.append({"id": flag.id, "name_zh": flag.name_zh, "name_en": flag.name_en,
                      "message_zh": flag.message_zh, "message_en": flag.message_en,
                      "hotline_zh": flag.hotline_zh, "hotline_en": flag.hotline_en,
                      "reason_zh": f"因为您提到{_quoted(said)}" if said else None,
                      "reason_en": f"Because you mentioned: {', '.join(said)}" if said else None})
    hotlines = [{"zh": f["hotline_zh"], "en": f["hotline_en"]} for f in flags if f["hotline_zh"]]
    return {"urgent": True, "advice": ADVICE, "advice_zh": ADVICE_ZH, "advice_en": ADVICE_EN, "call": "120",
            "red_flags": flags, "hotlines": hotlines, "departments": [], "clinicians": [],
            "recognised": _mention_docs(kb, result.recognised), "denied": _mention_docs(kb, result.denied),
            "disclaimer": DISCLAIMER, "disclaimer_zh": DISCLAIMER_ZH, "disclaimer_en": DISCLAIMER_EN}


def _reason(kb: engine.Knowledge, rec: engine.Recommendation, child_age: int) -> tuple[str, str]:
    said = list(rec.said)
    names_en = [kb.terms[t].name_en for t in rec.terms if t in kb.terms]
    because_zh = f"因为您提到{_quoted(said)}" if said else ""
    because_en = f"Because you mentioned: {', '.join(names_en)}" if names_en else ""
    if rec.modifier == "fallback":
        return FRONT_DESK_ZH, FRONT_DESK_EN
    lead = {"child": (f"{child_age}岁以下的孩子建议先看儿科", f"Children under {child_age}: paediatrics first"),
            "pregnancy": ("怀孕期间建议先看产科", "In pregnancy: obstetrics first")}.get(rec.modifier or "")
    if lead is None:
        return because_zh, because_en
    return (f"{lead[0]};{because_zh}" if said else lead[0]), (f"{lead[1]}. {because_en}" if said else lead[1])


def _guidance(session: Session, kb: engine.Knowledge, result: engine.Analysis, now: datetime, today: date,
              institution_id: str | None) -> dict[str, Any]:
    reach = scope.current_institutions()
    if institution_id is not None and (not is_id(institution_id) or (reach is not None and institution_id not in reach)
                                       or scheduling.catalogue_entry(session, "institution", institution_id) is None):
        raise InstitutionNotFoundError()
    kind_rows = [k for k in repo.kinds(session.connection()) if k["code"] in {r.kind for r in result.departments}]
    mapped = departments_by_kind(session, kind_rows)
    departments: list[dict[str, Any]] = []
    for rec in result.departments:
        kind = kb.kinds[rec.kind]
        depts = [{"id": d["id"], "institution_id": d["institution_id"], "name_zh": d["name_zh"],
                  "name_en": d["name_en"]} for d in mapped.get(rec.kind, [])
                 if (institution_id is None or d["institution_id"] == institution_id)
                 and (reach is None or d["institution_id"] in reach)]
        reason_zh, reason_en = _reason(kb, rec, kb.settings.child_age_below)
        departments.append({"kind": rec.kind, "name_zh": kind.name_zh, "name_en": kind.name_en, "score": rec.score,
                            "modifier": rec.modifier, "reason_zh": reason_zh, "reason_en": reason_en,
                            "said": list(rec.said), "departments": depts,
                            "department_ids": [d["id"] for d in depts]})
    doc: dict[str, Any] = {
        "urgent": False, "departments": departments, "clinicians": _clinicians(session, departments, now, today),
        "recognised": _mention_docs(kb, result.recognised), "denied": _mention_docs(kb, result.denied),
        "unmatched": result.unmatched, "safety_zh": SAFETY_ZH, "safety_en": SAFETY_EN,
        "disclaimer": DISCLAIMER, "disclaimer_zh": DISCLAIMER_ZH, "disclaimer_en": DISCLAIMER_EN}
    if result.unmatched:
        doc["front_desk_zh"], doc["front_desk_en"] = FRONT_DESK_ZH, FRONT_DESK_EN
    return doc


def _clinicians(session: Session, departments: Sequence[Mapping[str, Any]], now: datetime, today: date
                ) -> list[dict[str, Any]]:
    """Clinicians of the suggested departments with an upcoming session open for booking, each
    with the next session that still has a place for an online booking."""
    out: list[dict[str, Any]] = []
    for rec in departments:
        for dept in rec["departments"]:
            found: dict[str, dict[str, Any]] = {}
            for s in scheduling.list_sessions(session, now, department=dept["id"]):
                if not s["clinician"]:
                    continue
                day = date.fromisoformat(s["date"])
                free = sum(int(s["free"].get(p, 0)) for p in usable_pools(CHANNEL, day, today, referral_released=False))
                entry = found.get(s["clinician"])
                if entry is None:
                    if len(found) >= CLINICIANS_PER_DEPARTMENT:
                        continue
                    row = scheduling.catalogue_entry(session, "clinician", s["clinician"]) or {}
                    entry = found[s["clinician"]] = {
                        "id": s["clinician"], "name": s["clinician_name"], "title": row.get("title") or "",
                        "kind": rec["kind"], "department_id": dept["id"], "department_name_zh": dept["name_zh"],
                        "department_name_en": dept["name_en"], "next": None}
                if free and entry["next"] is None:
                    entry["next"] = {"session_id": s["id"], "date": s["date"], "start": s["start"], "end": s["end"],
                                     "free": free, "level": s["level"], "fee_cny": s["fee_cny"]}
            out.extend(found.values())
            if len(out) >= MAX_CLINICIANS:
                return out[:MAX_CLINICIANS]
    return out
