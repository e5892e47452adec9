"""The triage engine without a database: negation, history, gapped and combined synonyms,
temperatures, ages, blood pressure, the modifiers (children, pregnancy, sex), the fallback, and
the segmenter following the knowledge base's words as they change."""

from __future__ import annotations

import dataclasses

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
    assert kinds("去年晕倒过一次，现在头疼")[0] == "neurology"  # the fainting is history: no red flag
    assert kinds("去年做过心脏支架，来复查") == ["cardiology", "general"]


def test_standing_conditions_count_even_as_history() -> None:
    # settings.standing_terms: a stent or blood thinners told as history still count for red flags
    assert flags("去年做过心脏支架，心口疼") == {"chest_pain_alarm"}
    assert flags("以前一直吃华法林，今天大便全是血") >= {"severe_bleeding"}
    assert flags("以前吃过华法林，今天鼻子出了点血") == set()  # a little blood: not on its own
    plain = engine.Knowledge(KB.kinds.values(), KB.terms.values(), KB.red_flags,
                             dataclasses.replace(KB.settings, standing_terms=frozenset()))
    assert not engine.analyse(plain, "去年做过心脏支架，心口疼").urgent


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


def test_one_number_blood_pressures_and_a_crisis() -> None:
    assert engine.high_pressure_in("血压一直150左右") == ("血压一直150", 150, 0)
    assert engine.high_pressure_in("高压一百八") == ("高压一百八", 180, 0)
    assert engine.high_pressure_in("低压105") == ("低压105", 0, 105)
    assert engine.high_pressure_in("血压120，还好") is None
    assert engine.high_pressure_in("血压130/80") is None
    assert kinds("血压一直150左右，想调调药")[0] == "cardiology"
    assert flags("高压一百九，头疼") == {"hypertensive_crisis"}
    assert flags("血压150，有点头疼") == set()  # high, not a crisis


def test_ages_in_days_weeks_and_months_belong_to_the_baby() -> None:
    assert engine.age_in("孩子出生十几天") == (0, True)
    assert engine.age_in("宝宝才一个半月") == (0, True)
    assert engine.age_in("孩子六周大") == (0, True)
    assert engine.age_in("孩子两个月，发烧") == (0, True)
    assert engine.age_in("生完孩子两个月，老想哭") == (None, False)  # the mother speaks
    assert engine.age_in("发烧两个月了") == (None, False)
    assert engine.age_in("喝完酒第二天大脚趾肿") == (None, False)  # 第二天 is no age
    assert engine.temperature_in("烧到三十九度五") == pytest.approx(39.5)


def test_a_lone_character_gives_way_to_a_longer_pattern() -> None:
    assert flags("抽了三十年烟，早上老有痰") == set()  # 抽 … 烟 is smoking, not a seizure
    assert "smoking" in said("抽了三十年烟")
    assert flags("最近小腿晚上会抽") == set()  # 小腿 … 抽 is a cramp
    assert flags("孩子突然抽了") == {"seizure"}


def test_what_happened_next_ends_a_negation() -> None:
    assert said("没几分钟就喘不上气")["dyspnea"] is False
    assert "breathing_difficulty" in flags("吃完药没几分钟就喘不上气")
    assert said("没想过伤害自己")["self_harm"] is True


def test_fillers_and_modifiers_inside_a_gap() -> None:
    assert said("心口那儿一阵阵钻心地疼")["chest_pain"] is False  # fillers do not count towards the gap
    assert flags("心口那儿一阵阵钻心地疼，出了一身黏汗") == {"chest_pain_alarm"}
    assert "headache" not in said("头两天肚子疼")  # a symptom inside the gap still blocks


@pytest.mark.parametrize(("text", "flag"), [
    ("胸口闷痛往左胳膊上窜", "chest_pain_alarm"),  # radiation
    ("心口疼，含了救心丸也不管用", "chest_pain_alarm"),  # no relief
    ("我爸吃着饭突然右手拿不住筷子", "stroke_signs"),  # onset while busy
    ("家里烧炭，一家人都头晕想吐", "poisoning"),
    ("孩子把爷爷的降压药吃了好几片", "poisoning"),
    ("两天没放屁了，一直吐", "acute_abdomen"),
    ("求求你们快来，我爸不行了", "distress"),
    ("怀孕八个月，今天一直没感觉到胎动", "pregnancy_warning"),
])
def test_phrasing_families(text: str, flag: str) -> None:
    assert flag in flags(text)


@pytest.mark.parametrize("text", [
    "胸口偶尔针扎似的疼一下，几秒钟就好",
    "我妈年纪大了眼睛不行了，看报纸费劲",
    "我老公打呼噜，睡觉憋气停一下又接着打",
    "吃了海鲜以后肚子有点不舒服",
    "早上起来手指头有点麻，甩一甩就好了",
])
def test_ordinary_complaints_stay_calm(text: str) -> None:
    assert flags(text) == set()
