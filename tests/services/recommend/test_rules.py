"""The rules file, no database: the shipped one validates and is careful (no diagnosis or treatment
wording, every reason explains), a broken or careless file is refused naming its problem, and a
hospital's own file replaces the shipped one (CAREPOINTS_RECOMMEND_RULES)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from carepoints.config import get_settings
from carepoints.services.recommend import rules
from carepoints.services.recommend.errors import RulesInvalidError


def shipped() -> dict[str, object]:
    raw: dict[str, object] = yaml.safe_load(rules.shipped_text())
    return raw


def with_rule(**change: object) -> str:
    doc = shipped()
    first = dict(doc["rules"][0])  # type: ignore[index]
    first.update(change)
    doc["rules"] = [first, *doc["rules"][1:]]  # type: ignore[index]
    return yaml.safe_dump(doc, allow_unicode=True)


def test_the_shipped_rules_validate_and_explain_every_suggestion() -> None:
    doc = rules.parse(rules.shipped_text())
    assert doc.elderly_items < doc.items
    assert {r.code for r in doc.rules} >= {"hypertension_bp", "diabetes_glucose", "online_services_lecture"}
    for r in doc.rules:
        assert r.reason.zh.startswith("因为"), r.code
        assert r.reason.en.startswith("Because"), r.code
    assert "不能代替医生" in doc.disclaimer.zh


@pytest.mark.parametrize(("change", "problem"), [
    ({"reason": {"code": "x_y", "zh": "因为您被诊断为高血压", "en": "Because"}}, "诊断"),
    ({"reason": {"code": "x_y", "zh": "因为", "en": "Because your treatment needs it"}}, "treat"),
    ({"title": {"zh": "按处方服药", "en": "Take it"}}, "处方"),
    ({"reason": {"code": "x_y", "zh": "因为{name}", "en": "Because"}}, "placeholder"),
    ({"target": {"link": "https://example.com/"}}, "target.link"),
    ({"target": {"link": "/me/health", "lecture": {}}}, "exactly one"),
    ({"when": {"signals": {"logins": {"max": 0}}}}, "signals"),
    ({"when": {"signals": {"visits": {"min": 3, "max": 1}}}}, "min is above max"),
    ({"when": {"conditions_any": ["flu"]}}, "conditions_any"),
    ({"score": 0}, "score"),
    ({"surprise": 1}, "surprise"),
])
def test_a_careless_or_broken_rule_is_refused(change: dict[str, object], problem: str) -> None:
    with pytest.raises(RulesInvalidError) as err:
        rules.parse(with_rule(**change))
    assert err.value.code == "recommend.rules_invalid"
    assert problem in err.value.detail, err.value.detail


def test_whole_file_problems_are_refused() -> None:
    doc = shipped()
    with pytest.raises(RulesInvalidError, match="unique"):
        rules.parse(yaml.safe_dump({**doc, "rules": [doc["rules"][0], doc["rules"][0]]}, allow_unicode=True))  # type: ignore[index]
    with pytest.raises(RulesInvalidError, match="elderly_items"):
        rules.parse(yaml.safe_dump({**doc, "elderly_items": 9, "items": 3}, allow_unicode=True))
    with pytest.raises(RulesInvalidError, match="not YAML"):
        rules.parse("rules: [")
    with pytest.raises(RulesInvalidError, match="condition"):  # {condition} without a condition to name
        rules.parse(with_rule(when={}, reason={"code": "x_y", "zh": "因为{condition}", "en": "Because"}))


def test_a_hospitals_own_file_replaces_the_shipped_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = shipped()
    own["version"] = 7
    own["rules"] = [r for r in own["rules"] if r["code"] != "online_services_lecture"]  # type: ignore[union-attr,index]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(own, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("CAREPOINTS_RECOMMEND_RULES", str(path))
    get_settings.cache_clear()
    try:
        doc = rules.current()
        assert doc.version == 7
        assert "online_services_lecture" not in {r.code for r in doc.rules}
    finally:
        monkeypatch.delenv("CAREPOINTS_RECOMMEND_RULES")
        get_settings.cache_clear()
    assert rules.current().version == 1
