"""The triage engine without a database: negation, history, gapped and combined synonyms,
temperatures, ages, blood pressure, the modifiers (children, pregnancy, sex), the fallback, and
the segmenter following the knowledge base's words as they change."""

from __future__ import annotations

import pytest

from carepoints.services.triage import engine, knowledge
from carepoints.services.triage.schemas import KnowledgeDoc, clean_synonyms

KB = knowledge.shipped_knowledge()


def flags(text: str, **kw: object) -> set[str]:
    return {f.id for f in engine.analyse(KB, text, **kw).red_flags}  # type: ignore[arg-type]


def kinds(text: str, **kw: object) -> list[str]:
    result = engine.analyse(KB, text, **kw)  # type: ignore[arg-type]
    assert not result.urgent, [f.id for f in result.red_flags]
    return [d.kind for d in result.departments]


def said(text: str) -> dict[str, bool]:
    """term → negated, for every mention."""
    return {m.term: m.negated for m in engine.mentions_in(KB, text)}


def test_the_shipped_knowledge_base_is_coherent() -> None:
    doc = knowledge.shipped()
    assert len(doc.terms) >= 150
    assert len(doc.red_flags) >= 15
    assert {"pediatrics", "obstetrics", "general", "emergency", "cardiology"} <= {k.code for k in doc.kinds}
    for flag in doc.red_flags:
        assert flag.message_zh
        assert flag.message_en
    suicide = next(f for f in doc.red_flags if f.id == "suicidal_thoughts")
    assert suicide.hotline_zh
    assert "12356" in suicide.hotline_zh


@pytest.mark.parametrize(("text", "flag"), [
    ("胸痛，出了一身冷汗", "chest_pain_alarm"),
    ("突然右边手脚没劲", "stroke_signs"),
    ("喘不上气", "breathing_difficulty"),
    ("怀孕了，下面流血", "pregnancy_warning"),
    ("不想活了", "suicidal_thoughts"),
])
def test_red_flags_fire(text: str, flag: str) -> None:
    assert flag in flags(text)


def test_negation_keeps_a_red_flag_quiet() -> None:
    assert flags("没有胸痛，也不出汗") == set()
    assert said("没有胸痛，也不出汗") == {"chest_pain": True, "sweating": True}
    assert flags("胸痛，不出汗") == set()  # one half of the combination denied
    assert flags("没有发烧，但是胸口疼，一直冒冷汗") == {"chest_pain_alarm"}  # 但是 ends the negation
    assert said("没有发烧，但是胸口疼")["fever"] is True
    assert said("没有发烧，但是胸口疼")["chest_pain"] is False


def test_a_denial_after_the_term_and_words_that_contain_a_negation() -> None:
    assert said("发烧倒是没有")["fever"] is True
    assert said("发烧已经退了")["fever"] is True
    assert said("咳嗽没有好转")["cough"] is False  # "没有" followed by more: not a denial
    assert said("喘不上气") == {"dyspnea": False}  # a synonym with 不 in it is no negation
    assert said("没胃口") == {"poor_appetite": False}


def test_history_raises_no_red_flag_but_still_guides() -> None:
    assert flags("以前有过一次晕倒，这次是来看失眠的") == set()
    assert flags("之前好好的，突然胸口疼，出冷汗") == {"chest_pain_alarm"}  # 突然 brings it back to now
    assert kinds("去年做过心脏支架，心口疼") == ["cardiology"]


def test_gapped_synonyms_and_their_guards() -> None:
    assert said("胸口一阵一阵地疼")["chest_pain"] is False  # body part … sensation
    assert "headache" not in said("头两天肚子疼")  # 疼 belongs to 肚子疼
    assert "headache" not in said("低头看手机久了就疼")  # 头 of 低头 is no head
    assert "headache" not in said("头不疼")  # a negation in the gap
    assert said("嘴角往右边歪")["face_droop"] is False  # another mention inside the gap


def test_temperature_age_and_blood_pressure_are_read() -> None:
    assert engine.temperature_in("烧到39度5") == pytest.approx(39.5)
    assert engine.temperature_in("体温38.6") == pytest.approx(38.6)
    assert engine.temperature_in("吃了3片药") is None
    assert engine.age_in("我家孩子七岁") == (7, False)
    assert engine.age_in("两个月大的宝宝") == (0, True)
    assert engine.age_in("这一个月大便不成形") == (None, False)  # 一个月 here is how long, not an age
    assert engine.age_in("宝宝出生二十天") == (0, True)
    assert engine.blood_pressure_in("量了血压160/100") == (160, 100)
    assert kinds("血压160/100") == ["cardiology"]
    assert "hypertension" not in said("血压130/80还好")
    assert flags("刚满月的宝宝体温38.2") == {"infant_fever"}
    assert flags("小孩体温38.2") == set()


def test_children_see_paediatrics_first_and_pregnancy_obstetrics() -> None:
    assert kinds("咳嗽有痰", age=6)[:2] == ["pediatrics", "respiratory"]
    assert kinds("孩子牙疼")[:2] == ["pediatrics", "stomatology"]
    assert kinds("咳嗽有痰", age=30)[0] == "respiratory"
    assert kinds("最近老想吐", pregnant=True)[0] == "obstetrics"
    assert kinds("怀孕三个月，有点便秘")[0] == "obstetrics"
    result = engine.analyse(KB, "孩子发烧", age=4)
    assert result.departments[0].modifier == "child"


def test_sex_limits_gynaecology() -> None:
    assert "gynecology" in kinds("小肚子疼", sex="female")
    assert "gynecology" not in kinds("小肚子疼", sex="male")
    assert kinds("小肚子疼，小便也疼", sex="male")[0] == "urology"


def test_nothing_recognised_answers_the_fallback() -> None:
    result = engine.analyse(KB, "我想挂号，但不知道挂哪个科")
    assert not result.urgent
    assert result.unmatched
    assert [d.kind for d in result.departments] == ["general"]


def test_the_reason_is_the_patients_own_words_strongest_first() -> None:
    result = engine.analyse(KB, "嗓子疼，有点咳嗽，还发烧")
    first = result.departments[0]
    assert first.kind == "respiratory"
    assert first.said[0] == "咳嗽"
    assert set(first.said) >= {"咳嗽", "发烧"}


def _tiny(synonyms: list[str]) -> engine.Knowledge:
    doc = KnowledgeDoc.model_validate({
        "version": 1, "settings": {"child_kind": "kids", "pregnancy_kind": "kids", "fallback_kind": "gp"},
        "kinds": [{"code": "kids", "zh": "儿科", "en": "Kids"}, {"code": "gp", "zh": "全科", "en": "GP"},
                  {"code": "eye", "zh": "眼科", "en": "Eyes"}],
        "terms": [{"id": "eye", "zh": "眼", "en": "eye", "synonyms": synonyms, "weights": {"eye": 5}}],
        "red_flags": [{"id": "x", "zh": "x", "en": "x", "message_zh": "x", "message_en": "x", "when": [["eye"]]}]})
    term = doc.terms[0]
    return engine.Knowledge([engine.Kind(k.code, k.zh, k.en) for k in doc.kinds],
                            [engine.Term(term.id, term.zh, term.en, tuple(term.synonyms), dict(term.weights))], [],
                            knowledge.settings_of(doc.settings))


def test_alternatives_on_both_sides_of_a_gap() -> None:
    kb = _tiny(["左眼|右眼…疼|痒"])
    assert {m.term for m in engine.mentions_in(kb, "右眼有点痒")} == {"eye"}
    assert {m.term for m in engine.mentions_in(kb, "左眼有点酸")} == set()


def test_the_segmenter_follows_the_words_of_the_knowledge_base() -> None:
    """A new word is cut whole once the knowledge base has it; a removed one gets the base
    dictionary back (the same process keeps one tokenizer)."""
    word = "眼睛咕噜咕噜转"
    before = engine._segmenter.cut(KB.words, word)
    with_word = _tiny([word])
    assert engine._segmenter.cut(with_word.words, word) == [word]
    assert engine._segmenter.cut(KB.words, word) == before
    assert before != [word]


def test_synonyms_are_checked() -> None:
    assert clean_synonyms([" 头疼 ", "头疼", "胸|胸口...疼|痛"]) == ["头疼", "胸|胸口…疼|痛"]
    for bad in (["头 疼"], ["a" * 25], ["胸口…"], ["…疼"], ["胸|…疼"], ["头疼!"]):
        with pytest.raises(ValueError, match="同义词"):
            clean_synonyms(bad)
