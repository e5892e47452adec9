"""The plain-words describer of the programme's terms (pure, no database)."""

from __future__ import annotations

from datetime import date
from typing import Any

from carepoints.rules import terms
from carepoints.rules.programme import Programme, Rule
from carepoints.rules.service import default_programme_text, parse_programme

DEFAULT = parse_programme(default_programme_text())
DAY = date(2026, 12, 2)


def _rule(**fields: Any) -> Rule:
    return Rule.model_validate({"code": "x", "names": {"zh": "测试", "en": "Test"}, "event": "lecture.attended",
                                "points": 10, **fields})


def test_core_rules_come_first_in_order() -> None:
    doc = terms.describe(DEFAULT, "zh", DAY)
    assert [r["code"] for r in doc["core"]] == list(terms.CORE_RULES)
    assert doc["core"][0]["text"] == "提前预约:+30积分(至少提前3天预约;由本人(或家属)预约;每次预约限一次)"
    codes = [r["code"] for r in doc["rules"]]
    assert not set(codes) & set(terms.CORE_RULES)
    assert codes[-1] == "misconduct"  # penalties after the ways to earn
    assert len(codes) + len(doc["core"]) == len(DEFAULT.rules)


def test_english_wording() -> None:
    doc = terms.describe(DEFAULT, "en", DAY)
    by = {r["code"]: r for r in doc["core"] + doc["rules"]}
    assert by["no_show"]["text"] == "No-show: −50 points (once per appointment)"
    assert by["no_show"]["penalty"] is True
    assert by["cancel_early"]["conditions"] == ["cancelled by you (or your family)",
                                                "cancelled at least 24 hours ahead"]
    assert by["cancel_early"]["limits"] == ["once per appointment", "at most 2 times a month"]
    assert by["off_peak"]["points_text"] == "points ×2"
    assert by["off_peak"]["conditions"] == ["at off-peak times (Mon-Fri 10:00-11:00; Mon-Fri 14:00-15:00)"]
    assert by["checkin_streak_7"]["conditions"][0] == "7 days in a row"
    assert by["welcome"]["limits"] == ["once only"]


def test_limits_and_conditions_in_words() -> None:
    r = _rule(limits={"per_day": 2, "per_year": 5, "daily_points": 20, "lifetime": 3},
              conditions=[{"type": "text_length", "attr": "text", "min": 30},
                          {"type": "local_time", "start": "08:00", "end": "10:00"},
                          {"type": "patient", "field": "tier", "op": "in", "value": ["gold", "silver"]},
                          {"type": "attr", "attr": "something", "op": "eq", "value": "x"}])
    s = DEFAULT.settings
    zh = terms.rule(r, "zh", s)
    assert zh["limits"] == ["累计最多3次", "每天最多2次", "每年最多5次", "每天最多20积分"]
    assert zh["conditions"] == ["内容不少于30字", "在08:00至10:00之间", "限金卡、银卡会员", "需满足活动的附加条件"]
    assert terms.rule(_rule(points=-5), "zh", s)["points_text"] == "扣5积分"
    scoped = _rule(conditions=[{"type": "institution", "value": ["H1"]}])
    assert terms.rule(scoped, "zh", s)["conditions"] == ["限指定医疗机构"]
    hours = _rule(conditions=[{"type": "hours_between", "from": "a", "to": "b", "min": 6}])
    assert terms.rule(hours, "en", s)["conditions"] == ["at least 6 hours in between"]


def test_retired_and_out_of_window_rules_are_not_listed() -> None:
    doc = DEFAULT.model_dump(mode="json", by_alias=True)
    for r in doc["rules"]:
        if r["code"] == "lecture":
            r["status"] = "retired"
        if r["code"] == "survey":
            r["valid_to"] = "2026-12-01"
        if r["code"] == "review":
            r["valid_from"] = "2026-12-02"
    out = terms.describe(Programme.model_validate(doc), "zh", DAY)
    codes = {r["code"] for r in out["rules"]}
    assert "lecture" not in codes
    assert "survey" not in codes
    assert "review" in codes


def test_settings_in_words() -> None:
    zh = terms.settings_text(DEFAULT.settings, "zh")
    assert zh["annual_cap"]["text"] == "每年最多获得10000积分"
    assert zh["expiry"]["months"] == 24
    assert zh["point_value"]["text"] == "100积分可抵10元"
    assert [t["tier"] for t in zh["tiers"]] == ["silver", "gold"]
    assert zh["tiers"][1]["text"] == "金卡:近12个月累计获得5000积分及以上"
    assert zh["suspension"]["text"] == "90天内爽约3次,将暂停获得积分30天"
    doc = DEFAULT.model_dump(mode="json", by_alias=True)
    doc["settings"]["suspension"] = {"threshold": 2, "window_days": 30, "duration_hours": 36, "consecutive": True}
    doc["settings"]["point_value"] = {"points": 100, "cny": "12.50"}
    en = terms.settings_text(Programme.model_validate(doc).settings, "en")
    assert en["suspension"]["text"] == "Missing 2 appointments in a row within 30 days pauses earning for 36 hours"
    assert en["point_value"]["text"] == "100 points are worth 12.50 yuan"
