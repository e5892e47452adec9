"""The pure recommendation engine with the shipped rules, no database: hypertension → the BP task
first, diabetes → glucose, a patient who never used online services → the online-services lecture
(or the booking page when there is none), switched off → nothing, every suggestion explained in
both languages, one suggestion per target, and a stable order."""

from __future__ import annotations

import re

import pytest

from carepoints.services.recommend import rules
from carepoints.services.recommend.engine import ContentItem, LectureItem, Recommendation, Snapshot, recommend
from carepoints.services.recommend.rules import RulesDoc

BP_ITEM = ContentItem("e3", "高血压患者的日常饮食", "Everyday eating with hypertension", frozenset({"hypertension"}))
GLU_ITEM = ContentItem("e2", "血糖记录小窍门", None, frozenset({"diabetes"}))
ANY_ITEM = ContentItem("e1", "洗手的正确方法", "Washing hands")
BP_TALK = LectureItem("l1", "健康讲座:高血压的自我管理", "Living with hypertension", seats_left=20)
ONLINE_TALK = LectureItem("l2", "教您用手机预约挂号和查报告", "Booking on your phone", seats_left=5)
ACTIVE = {"online_bookings": 3, "readings_7d": 4, "education_completed": 2, "lectures_attended": 1}


@pytest.fixture(scope="module")
def doc() -> RulesDoc:
    return rules.parse(rules.shipped_text())


def run(doc: RulesDoc, limit: int = 20, **kw: object) -> list[Recommendation]:
    return recommend(Snapshot(**kw), doc, limit=limit)  # type: ignore[arg-type]


def codes(recs: list[Recommendation]) -> list[str]:
    return [r.code for r in recs]


def test_hypertension_sees_the_bp_task_first(doc: RulesDoc) -> None:
    recs = run(doc, conditions=frozenset({"hypertension"}), open_tasks=frozenset({"measure_bp"}), signals=ACTIVE,
               content=(BP_ITEM, ANY_ITEM), lectures=(BP_TALK,))
    assert codes(recs)[:3] == ["hypertension_bp", "hypertension_content", "hypertension_lecture"]
    first = recs[0]
    assert (first.kind, first.target, first.title_zh) == ("task", "/me/health#h-bp", "今天测量并记录血压")
    assert first.reason_zh.startswith("因为您登记了高血压")
    assert first.basis == ("condition:hypertension", "task_open:measure_bp")
    assert (recs[1].target, recs[1].target_id, recs[1].title_zh) == ("/me/learn/e3", "e3", "高血压患者的日常饮食")
    assert recs[1].reason_zh.startswith("因为您登记了高血压,这篇健康知识")
    assert "hypertension is registered" in recs[1].reason_en
    assert (recs[2].kind, recs[2].target_id) == ("lecture", "l1")


def test_diabetes_sees_glucose_and_both_conditions_keep_bp_first(doc: RulesDoc) -> None:
    recs = run(doc, conditions=frozenset({"diabetes"}), open_tasks=frozenset({"measure_glucose"}), signals=ACTIVE,
               content=(BP_ITEM, GLU_ITEM))
    assert codes(recs)[:2] == ["diabetes_glucose", "diabetes_content"]
    assert recs[0].title_zh == "今天测量并记录血糖"
    assert recs[0].reason_zh.startswith("因为您登记了糖尿病")
    assert recs[1].target_id == "e2"  # the diabetes item, never the hypertension one
    assert recs[1].title_en == "血糖记录小窍门"  # no English title: the Chinese one
    both = run(doc, conditions=frozenset({"diabetes", "hypertension"}),
               open_tasks=frozenset({"measure_bp", "measure_glucose"}), signals=ACTIVE)
    assert codes(both)[:2] == ["hypertension_bp", "diabetes_glucose"]


def test_a_done_task_is_not_suggested(doc: RulesDoc) -> None:
    recs = run(doc, conditions=frozenset({"hypertension"}), open_tasks=frozenset(), signals=ACTIVE,
               content=(BP_ITEM,))
    assert "hypertension_bp" not in codes(recs)
    assert codes(recs)[0] == "hypertension_content"


def test_never_used_online_services_is_offered_the_lecture_on_them(doc: RulesDoc) -> None:
    signals = {**ACTIVE, "online_bookings": 0, "onsite_bookings": 4}
    recs = run(doc, signals=signals, lectures=(BP_TALK, ONLINE_TALK))
    [online] = [r for r in recs if r.code == "online_services_lecture"]
    assert (online.kind, online.target, online.target_id) == ("lecture", "/me/lectures", "l2")
    assert online.reason_zh.startswith("因为您近一年还没有用过手机预约挂号等线上服务")
    assert online.basis == ("signal:online_bookings=0",)
    # no such lecture: learn to book on the phone instead
    fallback = [r for r in run(doc, signals=signals, lectures=(BP_TALK,)) if r.code == "online_services_lecture"]
    assert [(r.kind, r.target, r.title_zh) for r in fallback] == [("service", "/me/book", "学用手机预约挂号")]
    # one who books online is not
    assert "online_services_lecture" not in codes(run(doc, signals=ACTIVE, lectures=(ONLINE_TALK,)))


def test_a_registered_or_full_lecture_and_a_passed_item_are_not_suggested(doc: RulesDoc) -> None:
    snap = {"conditions": frozenset({"hypertension"}), "signals": ACTIVE}
    taken = LectureItem("l1", BP_TALK.title_zh, None, seats_left=20, registered=True)
    full = LectureItem("l3", "高血压讲座(第二场)", None, seats_left=0)
    passed = ContentItem("e3", BP_ITEM.title_zh, None, frozenset({"hypertension"}), completed=True)
    recs = run(doc, **snap, content=(passed,), lectures=(taken, full))
    assert "hypertension_lecture" not in codes(recs)
    assert "hypertension_content" not in codes(recs)


def test_switched_off_is_nothing(doc: RulesDoc) -> None:
    assert run(doc, enabled=False, conditions=frozenset({"hypertension"}), open_tasks=frozenset({"measure_bp"}),
               content=(BP_ITEM,), lectures=(BP_TALK, ONLINE_TALK)) == []


def test_one_suggestion_per_target_and_the_limit(doc: RulesDoc) -> None:
    # first_learning would pick the same item the hypertension rule already suggests: once, the higher
    recs = run(doc, conditions=frozenset({"hypertension"}), open_tasks=frozenset({"measure_bp"}),
               signals={**ACTIVE, "readings_7d": 0, "education_completed": 0}, content=(BP_ITEM,))
    assert [(r.code, r.target_id) for r in recs if r.target_id == "e3"] == [("hypertension_content", "e3")]
    assert "checkin_start" not in codes(recs)  # the BP task already asks for a reading
    assert "checkin_start" in codes(run(doc, signals={**ACTIVE, "readings_7d": 0}))
    # two rules leading to the same page: one suggestion
    same = rules.parse(rules.shipped_text().replace("{link: /me/health#doses}", "{link: /me/health#h-bp}"))
    both = run(same, conditions=frozenset({"hypertension"}), open_tasks=frozenset({"measure_bp", "medication"}))
    assert [r.code for r in both if r.target == "/me/health#h-bp"] == ["hypertension_bp"]
    assert len(run(doc, limit=2, conditions=frozenset({"hypertension"}), content=(BP_ITEM,),
                   lectures=(BP_TALK, ONLINE_TALK))) == 2
    assert len(recommend(Snapshot(lectures=(BP_TALK, ONLINE_TALK), content=(ANY_ITEM,)), doc)) <= doc.items


def test_every_suggestion_is_explained_in_both_languages(doc: RulesDoc) -> None:
    snaps = [
        Snapshot(conditions=frozenset({"copd", "hypertension", "diabetes"}),
                 open_tasks=frozenset({"measure_bp", "measure_glucose", "medication", "followup"}),
                 content=(ContentItem("e9", "慢阻肺的呼吸练习", None, frozenset({"copd"})), BP_ITEM, GLU_ITEM,
                          ANY_ITEM),
                 lectures=(BP_TALK, ONLINE_TALK)),
        Snapshot(content=(ANY_ITEM,), lectures=(ONLINE_TALK,)),
    ]
    seen = set()
    for snap in snaps:
        for r in recommend(snap, doc, limit=20):
            seen.add(r.code)
            assert r.reason_code, r
            assert r.reason_zh.startswith("因为"), r
            assert r.reason_en.startswith("Because"), r
            assert not re.search(r"[{}]", r.reason_zh + r.reason_en), r
            assert r.title_zh
            assert r.title_en
            assert r.target.startswith("/me")
            assert r.basis, r
    assert {"hypertension_bp", "medication_checkin", "followup_due", "chronic_content",
            "online_services_lecture", "first_learning"} <= seen
    copd = next(r for r in recommend(snaps[0], doc, limit=20) if r.code == "chronic_content")
    assert copd.reason_zh.startswith("因为您登记了慢性阻塞性肺疾病")
    assert "COPD is registered" in copd.reason_en


def test_the_order_is_stable(doc: RulesDoc) -> None:
    snap = Snapshot(conditions=frozenset({"hypertension", "diabetes"}), open_tasks=frozenset({"measure_bp"}),
                    content=(BP_ITEM, GLU_ITEM, ANY_ITEM), lectures=(BP_TALK, ONLINE_TALK))
    first = recommend(snap, doc, limit=20)
    assert all(recommend(snap, doc, limit=20) == first for _ in range(5))
    assert [r.score for r in first] == sorted((r.score for r in first), reverse=True)
    # equal scores: the rules' order in the file decides, whatever the order of the patient's conditions
    text = rules.shipped_text().replace("score: 65", "score: 70")
    tied = rules.parse(text)
    recs = recommend(snap, tied, limit=20)
    assert codes(recs)[codes(recs).index("hypertension_content") + 1] == "diabetes_content"
    again = Snapshot(conditions=frozenset({"diabetes", "hypertension"}), open_tasks=frozenset({"measure_bp"}),
                     content=(BP_ITEM, GLU_ITEM, ANY_ITEM), lectures=(BP_TALK, ONLINE_TALK))
    assert recommend(again, tied, limit=20) == recs


def test_without_health_data_a_health_signal_is_unknown_not_zero(doc: RulesDoc) -> None:
    assert "checkin_start" in codes(run(doc, signals=ACTIVE | {"readings_7d": 0}))
    assert "checkin_start" not in codes(run(doc, health_data=False, signals=ACTIVE | {"readings_7d": 0}))
    # behaviour alone still counts
    assert "online_services_lecture" in codes(run(doc, health_data=False, signals={**ACTIVE, "online_bookings": 0}))
