"""Start-up brings the triage tables up to a new shipped knowledge base on SQLite and
PostgreSQL: rows still as shipped get the new synonyms, weights and red-flag content (a removed
synonym leaves them, a term no longer shipped is disabled), every row an admin edited or
created stays as it is, an unchanged file changes nothing, and several processes starting at
once neither fail nor add a row twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from carepoints.audit.models import AuditEntry
from carepoints.audit.service import Actor
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.services.triage import curation, engine, knowledge, service
from carepoints.services.triage import repository as repo
from carepoints.services.triage.schemas import KnowledgeDoc, RedFlagUpdate, TermCreate, TermUpdate
from tests.conftest import Db
from tests.locks import errors, oks, race

ADMIN = Actor.system("triage-admin-test")


def shipped_with(change: Callable[[dict[str, Any]], None]) -> KnowledgeDoc:
    """The shipped knowledge base as a later release would ship it: `change` edits its document."""
    doc = knowledge.shipped().model_dump()
    change(doc)
    return KnowledgeDoc.model_validate(doc)


def term_of(doc: dict[str, Any], term_id: str) -> dict[str, Any]:
    return next(t for t in doc["terms"] if t["id"] == term_id)


def flag_of(doc: dict[str, Any], flag_id: str) -> dict[str, Any]:
    return next(f for f in doc["red_flags"] if f["id"] == flag_id)


def rows() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    with read_tx() as s:
        conn = s.connection()
        return ({t["id"]: dict(t) for t in repo.terms(conn)}, {f["id"]: dict(f) for f in repo.red_flags(conn)})


def refresh(doc: KnowledgeDoc | None = None, now: datetime | None = None) -> int:
    with write_tx() as s:
        return service.ensure_knowledge(s, now or utc_now(), doc)


def refresh_audits() -> int:
    with read_tx() as s:
        return int(s.execute(select(func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "triage:knowledge:refresh")).scalar_one())


def test_a_new_release_reaches_unedited_rows_and_leaves_edited_ones(db: Db) -> None:
    assert refresh() == 0  # the seed recorded the shipped file: an unchanged start-up changes nothing
    audited = refresh_audits()
    shipped = knowledge.shipped().model_dump()
    cough, fever = term_of(shipped, "cough")["synonyms"], term_of(shipped, "fever")["synonyms"]
    dropped_cough, dropped_fever = cough[0], fever[1]
    with write_tx() as s:  # the admin's edits: a synonym on cough, a message on the stroke flag, a term
        curation.update_term(s, "cough", TermUpdate(synonyms=[*cough, "咳得像拉风箱"]), ADMIN, utc_now())
        curation.update_red_flag(s, "stroke_signs", RedFlagUpdate(message_zh="本院卒中中心:请立即拨打120"), ADMIN,
                                 utc_now())
        curation.create_term(s, TermCreate(id="hospital_word", name_zh="院内说法", name_en="In-house word",
                                           synonyms=["脑壳发胀"], weights={"neurology": 3}), ADMIN, utc_now())
    before_terms, before_flags = rows()

    def release(doc: dict[str, Any]) -> None:
        term_of(doc, "cough")["synonyms"] = [s for s in cough if s != dropped_cough] + ["咳得停不下来了"]
        term_of(doc, "fever")["synonyms"] = [s for s in fever if s != dropped_fever]
        headache = term_of(doc, "headache")
        headache["synonyms"] = [*headache["synonyms"], "脑壳疼得慌", "脑壳发胀"]  # the admin's word stays theirs
        headache["weights"] = {**headache["weights"], "neurology": 7}
        flag_of(doc, "stroke_signs")["message_zh"] = "新版:疑似卒中,请立即拨打120"
        flag_of(doc, "chest_pain_alarm")["message_zh"] = "新版:胸痛危险,请立即拨打120"
        doc["terms"] = [t for t in doc["terms"] if t["id"] != "restless_legs"]
        doc["terms"].append({"id": "new_term", "zh": "新症状", "en": "A new symptom", "synonyms": ["新说法的症状"],
                             "weights": {"general": 2}})

    later = shipped_with(release)
    assert refresh(later) == 5  # headache, fever, the chest-pain flag refreshed; new_term added; restless_legs off
    terms, flags = rows()
    assert terms["cough"] == before_terms["cough"]  # edited: the admin's synonyms, the dropped one included
    assert dropped_cough in terms["cough"]["synonyms"]
    assert "咳得停不下来了" not in terms["cough"]["synonyms"]
    assert dropped_fever not in terms["fever"]["synonyms"]  # unedited: the removed synonym is gone
    assert terms["fever"]["version"] == 1
    assert terms["fever"]["source"] == "shipped"
    assert terms["headache"]["synonyms"][-1] == "脑壳疼得慌"
    assert "脑壳发胀" not in terms["headache"]["synonyms"]
    assert terms["headache"]["weights"]["neurology"] == 7
    assert terms["hospital_word"] == before_terms["hospital_word"]
    assert terms["new_term"]["synonyms"] == ["新说法的症状"]
    assert terms["new_term"]["enabled"]
    assert terms["restless_legs"]["enabled"] is False
    assert before_terms["restless_legs"]["enabled"] is True
    assert flags["stroke_signs"] == before_flags["stroke_signs"]
    assert flags["chest_pain_alarm"]["message_zh"] == "新版:胸痛危险,请立即拨打120"
    assert flags["chest_pain_alarm"]["version"] == 1
    untouched = set(terms) - {"headache", "fever", "new_term", "restless_legs"}
    assert {i: terms[i] for i in untouched} == {i: before_terms[i] for i in untouched}

    with read_tx() as s:  # what the next triage answers with
        kb = service.load(s)
    said = engine.analyse(kb, "脑壳疼得慌").departments[0]
    assert said.kind == "neurology"
    assert said.said == ("脑壳疼得慌",)
    assert engine.analyse(kb, "咳得像拉风箱").departments[0].kind == "respiratory"

    assert refresh(later) == 0  # the same release again: nothing changes
    assert rows() == (terms, flags)
    assert refresh_audits() == audited + 1


def test_processes_starting_at_once_refresh_once(racing: Db) -> None:
    def release(doc: dict[str, Any]) -> None:
        term_of(doc, "headache")["synonyms"].append("脑壳疼得慌")
        doc["terms"].append({"id": "new_term", "zh": "新症状", "en": "A new symptom", "synonyms": ["新说法的症状"],
                             "weights": {"general": 2}})

    later = shipped_with(release)
    before, _ = rows()
    audited = refresh_audits()
    results = race(racing, [lambda: refresh(later)] * 6)
    assert errors(results) == []
    assert sorted(oks(results)) == [0] * 5 + [2]  # one start-up added new_term and refreshed headache
    terms, _ = rows()
    assert set(terms) == set(before) | {"new_term"}
    assert terms["headache"]["synonyms"][-1] == "脑壳疼得慌"
    assert refresh_audits() == audited + 1
