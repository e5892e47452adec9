"""Triage guidance over HTTP on SQLite and PostgreSQL: the urgent answer first and alone, the
departments with their reason, the hospital's departments and clinicians with open sessions,
the disclaimer; bad input refused with a code and nothing stored; patients ask only for
themselves; the per-caller rate limit; the admin's edits (audited) used by the next triage;
the department mapping; the seed keeping edits; the daily counts, which are all that stays."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from carepoints import bootstrap
from carepoints.audit.models import AuditEntry
from carepoints.config import get_settings, reset_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import local_date, utc_now
from carepoints.security import otp
from carepoints.services.triage import service
from carepoints.services.triage.models import TriageDailyCount, TriageTerm
from tests.conftest import Db
from tests.helpers import dump_database, error
from tests.locks import oks, race
from tests.services.triage.world import TriageHospital

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


def ask(api: Api, text: str, status: int = 200, key: str | None = None, **extra: Any) -> dict[str, Any]:
    r = api.post("/triage", {"text": text, **extra}, key=key)
    assert r.status_code == status, r.text
    return dict(r.json())


def put(api: Api, path: str, body: Any, **kw: Any) -> Any:
    return api.request("PUT", path, body, **kw)


def counts() -> dict[tuple[str, str], int]:
    t = TriageDailyCount.__table__
    with read_tx() as session:
        rows = session.connection().execute(select(t.c.dimension, t.c.code, t.c.count)).all()
    return {(d, c): n for d, c, n in rows}


def audits(action: str) -> list[dict[str, Any]]:
    t = AuditEntry.__table__
    with read_tx() as session:
        rows = session.connection().execute(select(t).where(t.c.action == action)).mappings().all()
    return [dict(r) for r in rows]


def patient_token(pid: str) -> str:
    token, _ = otp.patient_token(pid, utc_now(), get_settings())
    return token


# --- asking --------------------------------------------------------------------------------------

def test_a_red_flag_answers_urgent_first_and_nothing_else(api: Api) -> None:
    TriageHospital(("急诊科", "Emergency"))
    doc = ask(api, "胸口疼了半个小时，一直冒冷汗")
    assert doc["urgent"] is True
    assert doc["advice"] == "请立即前往急诊 / 拨打120"
    assert doc["call"] == "120"
    assert [f["id"] for f in doc["red_flags"]] == ["chest_pain_alarm"]
    flag = doc["red_flags"][0]
    assert flag["message_zh"]
    assert flag["message_en"]
    assert "胸口疼" in flag["reason_zh"]
    assert "冒冷汗" in flag["reason_zh"]
    assert doc["departments"] == []
    assert doc["clinicians"] == []
    assert doc["disclaimer"] == "本建议仅供挂号参考,不能代替医生诊断 / For choosing a department only, not a diagnosis"
    assert counts() == {("total", "all"): 1, ("red_flag", "chest_pain_alarm"): 1}


def test_the_suicide_red_flag_carries_a_hotline(api: Api) -> None:
    doc = ask(api, "最近觉得活着没意思")
    assert doc["urgent"] is True
    assert doc["hotlines"]
    assert "12356" in doc["hotlines"][0]["zh"]


def test_departments_with_the_reason_the_hospitals_department_and_clinicians(api: Api) -> None:
    h = TriageHospital(("呼吸内科", "Respiratory medicine"), ("儿科", "Paediatrics"))
    sess = h.open_session("呼吸内科")
    doc = ask(api, "咳嗽发热三天了")
    assert doc["urgent"] is False
    first = doc["departments"][0]
    assert first["kind"] == "respiratory"
    assert first["name_zh"] == "呼吸内科"
    assert first["reason_zh"] == "因为您提到“咳嗽”“发热”"
    assert first["reason_en"] == "Because you mentioned: cough, fever"
    assert first["department_ids"] == [h.departments["呼吸内科"]]
    assert h.department not in first["department_ids"]  # 心内科 is not a respiratory department
    doctor = doc["clinicians"][0]
    assert doctor["id"] == h.clinicians[h.doctors["呼吸内科"]]
    assert doctor["department_id"] == h.departments["呼吸内科"]
    assert doctor["next"]["session_id"] == sess["id"]
    assert doctor["next"]["free"] == 2
    assert doc["disclaimer_zh"] == "本建议仅供挂号参考,不能代替医生诊断"
    assert doc["safety_zh"]
    assert [d["term"] for d in doc["recognised"]] == ["cough", "fever"]
    assert counts() == {("total", "all"): 1, ("department", "respiratory"): 1}


def test_nothing_recognised_suggests_general_practice_and_the_front_desk(api: Api) -> None:
    doc = ask(api, "我想挂个号，不知道挂哪个")
    assert doc["urgent"] is False
    assert doc["unmatched"] is True
    assert [d["kind"] for d in doc["departments"]] == ["general"]
    assert "导诊台" in doc["front_desk_zh"]
    assert counts()[("unmatched", "general")] == 1


def test_bad_input_is_refused_with_a_code_and_nothing_is_kept(api: Api, db: Db) -> None:
    secret = "我的邻居王某某左耳后面长了个奇怪的包块"
    for body, where in (({"text": ""}, "text"), ({"text": "   "}, "text"), ({"text": "痛" * 501}, "text"),
                        ({"text": "头疼", "age": -1}, "age"), ({"text": "头疼", "age": 131}, "age"),
                        ({"text": "头疼", "sex": "x"}, "sex"),
                        ({"text": "头疼", "sex": "male", "pregnant": True}, None),
                        ({"text": "头疼", "mood": "bad"}, "mood"), ({}, "text"), ({"text": 5}, "text")):
        r = api.post("/triage", body)
        err = error(r, 422, "request.invalid")
        if where is not None:
            assert any(f["loc"][-1] == where for f in err["fields"]), (body, err)
    error(api.post("/triage", {"text": "头疼", "patient_id": UNKNOWN}), 404, "patients.not_found")
    error(api.post("/triage", {"text": "头疼", "institution_id": UNKNOWN}), 404, "triage.institution_not_found")
    assert counts() == {}
    ask(api, secret)
    assert counts()[("total", "all")] == 1
    dump = dump_database(db)
    assert "奇怪的包块" not in dump
    assert "王某某" not in dump


def test_a_patient_asks_for_themself_with_their_profile(api: Api) -> None:
    born = (utc_now() - timedelta(days=365 * 6 + 30)).date().isoformat()
    consent = {"version": "1.0", "accepted_at": (utc_now() - timedelta(days=1)).isoformat(), "source": "guardian",
               "guardian": {"relation": "parent", "name": "李妈妈"}}
    child = api.enrol(birth_date=born, sex="female", consent=consent)
    other = api.enrol()
    token = patient_token(child)
    doc = ask(api, "咳嗽有痰", patient_id=child, key=token)
    assert [d["kind"] for d in doc["departments"]][:2] == ["pediatrics", "respiratory"]
    assert doc["departments"][0]["modifier"] == "child"
    assert "14岁以下" in doc["departments"][0]["reason_zh"]
    error(api.post("/triage", {"text": "咳嗽", "patient_id": other}, key=token), 404, "patients.not_found")
    assert ask(api, "咳嗽有痰", key=token)["departments"][0]["kind"] == "respiratory"  # no profile named


def test_a_kiosk_names_a_patient_whose_sex_rules_out_gynaecology(api: Api) -> None:
    man = api.enrol(sex="male", birth_date="1970-01-01")
    kiosk = api.make_key("integration", "kiosk")
    kinds = [d["kind"] for d in ask(api, "小肚子疼", patient_id=man, key=kiosk)["departments"]]
    assert "gynecology" not in kinds
    woman = api.enrol(sex="female", birth_date="1990-01-01")
    assert "gynecology" in [d["kind"] for d in ask(api, "小肚子疼", patient_id=woman, key=kiosk)["departments"]]


def test_each_caller_is_rate_limited(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_RATE_LIMIT_TRIAGE_PER_MINUTE", "4")
    reset_settings()
    try:
        key, other = api.make_key("integration", "busy kiosk"), api.make_key("integration", "quiet kiosk")
        statuses = [api.post("/triage", {"text": "头疼"}, key=key) for _ in range(7)]
        assert [r.status_code for r in statuses] == [200] * 4 + [429] * 3  # the setting, per caller
        assert api.post("/triage", {"text": "头疼"}, key=other).status_code == 200
    finally:
        monkeypatch.delenv("CAREPOINTS_RATE_LIMIT_TRIAGE_PER_MINUTE")
        reset_settings()
    limited = statuses[-1]
    error(limited, 429, "rate.limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert api.post("/triage", {"text": "头疼"}).status_code == 200  # another caller is not held back


def test_concurrent_triages_all_count(api: Api, db: Db) -> None:
    keys = [api.make_key("integration", f"kiosk {i}") for i in range(6)]

    def one(key: str) -> int:
        return api.request("POST", "/triage", {"text": "牙疼"}, key=key, client=api.new_client()).status_code

    results = race(db, [lambda k=k: one(k) for k in keys])
    assert oks(results) == [200] * len(keys)
    assert counts() == {("total", "all"): len(keys), ("department", "stomatology"): len(keys)}


# --- the admin's knowledge base ------------------------------------------------------------------

def test_an_edited_term_is_used_by_the_next_triage_and_audited(api: Api) -> None:
    text = "眼珠子咕噜咕噜的"
    assert ask(api, text)["unmatched"] is True
    before = api.get("/triage/terms/red_eye").json()
    r = put(api, "/triage/terms/red_eye", {"synonyms": [*before["synonyms"], "眼珠子…咕噜"]})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == before["version"] + 1
    doc = ask(api, text)
    assert doc["departments"][0]["kind"] == "ophthalmology"
    assert "眼珠子咕噜" in doc["departments"][0]["reason_zh"]
    rows = audits("triage:term:update")
    assert len(rows) == 1
    assert rows[0]["subject_id"] == "red_eye"
    assert rows[0]["details"] == {"fields": ["synonyms"], "version": before["version"] + 1}
    r = put(api, "/triage/terms/red_eye", {"weights": {"ophthalmology": 2, "dermatology": 9}})
    assert r.status_code == 200, r.text
    assert ask(api, "眼睛红")["departments"][0]["kind"] == "dermatology"


def test_term_edits_are_refused_with_a_reason_and_change_nothing(api: Api) -> None:
    error(put(api, "/triage/terms/red_eye", {"synonyms": ["咳嗽"]}), 409, "triage.synonym_taken")
    error(put(api, "/triage/terms/red_eye", {"weights": {"astrology": 3}}), 422, "triage.unknown_kind")
    error(put(api, "/triage/terms/red_eye", {"weights": {"ophthalmology": 11}}), 422, "request.invalid")
    error(put(api, "/triage/terms/red_eye", {"synonyms": ["眼 红"]}), 422, "request.invalid")
    error(put(api, "/triage/terms/red_eye", {"synonyms": []}), 422, "request.invalid")
    error(put(api, "/triage/terms/chest_pain", {"enabled": False}), 409, "triage.term_in_red_flag")
    error(put(api, "/triage/terms/no_such_term", {"enabled": False}), 404, "triage.term_not_found")
    t = TriageTerm.__table__
    with read_tx() as session:
        versions = set(session.connection().execute(select(t.c.version)).scalars())
    assert versions == {1}
    assert audits("triage:term:update") == []
    assert ask(api, "胸口疼，一直冒冷汗")["urgent"] is True


def test_a_new_term_and_a_disabled_term(api: Api) -> None:
    body = {"id": "hiccup_storm", "name_zh": "打嗝不止", "name_en": "endless hiccups",
            "synonyms": ["嗝打个没完"], "weights": {"gastroenterology": 4}}
    r = api.post("/triage/terms", body)
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "admin"
    error(api.post("/triage/terms", body), 409, "triage.term_exists")
    error(api.post("/triage/terms", {**body, "id": "other", "synonyms": ["胃疼"]}), 409, "triage.synonym_taken")
    assert ask(api, "这两天嗝打个没完")["departments"][0]["kind"] == "gastroenterology"
    assert put(api, "/triage/terms/hiccup_storm", {"enabled": False}).status_code == 200
    assert ask(api, "这两天嗝打个没完")["unmatched"] is True
    assert [a["subject_id"] for a in audits("triage:term:create")] == ["hiccup_storm"]
    assert {t["id"] for t in api.get("/triage/terms", params={"enabled": "false"}).json()["items"]} == {"hiccup_storm"}
    assert [t["id"] for t in api.get("/triage/terms", params={"q": "嗝打个"}).json()["items"]] == ["hiccup_storm"]


def test_a_red_flag_can_be_turned_off_and_its_combinations_edited(api: Api) -> None:
    assert ask(api, "喘不上气")["urgent"] is True
    r = put(api, "/triage/red-flags/breathing_difficulty", {"enabled": False})
    assert r.status_code == 200, r.text
    assert ask(api, "喘不上气")["urgent"] is False
    assert put(api, "/triage/terms/dyspnea", {"enabled": False}).status_code == 200  # no enabled flag reads it now
    error(put(api, "/triage/red-flags/seizure", {"when": [["seizure", "no_such_term"]]}), 422, "triage.unknown_term")
    error(put(api, "/triage/red-flags/seizure", {"when": []}), 422, "request.invalid")
    error(put(api, "/triage/red-flags/nope", {"enabled": True}), 404, "triage.red_flag_not_found")
    r = put(api, "/triage/red-flags/seizure", {"when": [["seizure", "fever"]], "message_zh": "抽搐加发热,请拨打120"})
    assert r.status_code == 200, r.text
    assert ask(api, "抽搐")["urgent"] is False
    doc = ask(api, "抽搐，发烧")
    assert doc["urgent"] is True
    assert doc["red_flags"][0]["message_zh"] == "抽搐加发热,请拨打120"
    assert [a["subject_id"] for a in audits("triage:red_flag:update")] == ["breathing_difficulty", "seizure"]
    flags = {f["id"]: f for f in api.get("/triage/red-flags").json()["items"]}
    assert flags["breathing_difficulty"]["enabled"] is False
    assert flags["seizure"]["version"] == 2


def test_kinds_map_to_departments_by_name_and_by_the_admin(api: Api) -> None:
    h = TriageHospital(("呼吸内科", "Respiratory medicine"))
    kinds = {k["code"]: k for k in api.get("/triage/kinds").json()["items"]}
    assert [d["id"] for d in kinds["cardiology"]["departments"]] == [h.department]
    assert [d["id"] for d in kinds["respiratory"]["departments"]] == [h.departments["呼吸内科"]]
    r = put(api, "/triage/kinds/respiratory/departments", {"department_ids": [h.department]})
    assert r.status_code == 200, r.text
    assert [(d["id"], d["source"]) for d in r.json()["departments"]] == [(h.department, "admin")]
    assert ask(api, "咳嗽有痰")["departments"][0]["department_ids"] == [h.department]
    later = h.add("呼吸科门诊", "Chest clinic")  # created after the mapping: matched by name
    assert ask(api, "咳嗽有痰")["departments"][0]["department_ids"] == [h.department, later]
    r = api.post("/triage/kinds/match")  # rows for what name matching found: 心内科 and the new clinic
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 2
    assert api.post("/triage/kinds/match").json()["added"] == 0
    error(put(api, "/triage/kinds/respiratory/departments", {"department_ids": [UNKNOWN]}), 404,
          "triage.department_not_found")
    error(put(api, "/triage/kinds/astrology/departments", {"department_ids": []}), 404, "triage.kind_not_found")
    assert [a["subject_id"] for a in audits("triage:kind:map")] == ["respiratory"]


def test_the_seed_adds_only_what_is_missing(api: Api) -> None:
    assert put(api, "/triage/terms/cough", {"weights": {"respiratory": 2}}).status_code == 200
    bootstrap.seed()
    cough = api.get("/triage/terms/cough").json()
    assert cough["weights"] == {"respiratory": 2}
    assert cough["version"] == 2
    with write_tx() as session:
        assert service.ensure_knowledge(session, utc_now()) == 0
    assert len(api.get("/triage/terms").json()["items"]) >= 150


def test_daily_counts_are_all_that_stays(api: Api) -> None:
    for text in ("胸口疼，出冷汗", "咳嗽有痰", "咳嗽", "我想挂号"):
        ask(api, text)
    today = local_date(utc_now(), get_settings().tz)
    doc = api.get("/triage/stats").json()
    assert doc["total"] == 4
    assert doc["days"] == [{"day": today.isoformat(), "count": 4}]
    assert doc["red_flags"] == [{"code": "chest_pain_alarm", "count": 1}]
    assert doc["departments"] == [{"code": "respiratory", "count": 2}, {"code": "general", "count": 1}]
    assert doc["unmatched"] == 1
    yesterday = (today - timedelta(days=1)).isoformat()
    assert api.get("/triage/stats", params={"end": yesterday}).json()["total"] == 0
    error(api.get("/triage/stats", params={"start": today.isoformat(), "end": yesterday}), 422,
          "triage.invalid_period")
    error(api.get("/triage/stats", params={"start": date(2020, 1, 1).isoformat(), "end": today.isoformat()}), 422,
          "triage.invalid_period")


def test_patients_ask_but_never_edit(api: Api) -> None:
    token = patient_token(api.enrol())
    assert ask(api, "头疼", key=token)["urgent"] is False
    error(put(api, "/triage/terms/cough", {"enabled": False}, key=token), 403, "auth.forbidden")
    error(api.get("/triage/terms", key=token), 403, "auth.forbidden")
