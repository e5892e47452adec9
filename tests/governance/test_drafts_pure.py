"""Drafts' pure core: patching the base document, the change kinds and the diff."""

from __future__ import annotations

from typing import Any

import pytest

from carepoints.rules import governance
from carepoints.rules.errors import DraftInvalidError
from carepoints.rules.programme import Programme
from carepoints.rules.service import default_programme_text, parse_programme

DEFAULT = parse_programme(default_programme_text())
BASE: dict[str, Any] = DEFAULT.model_dump(mode="json", by_alias=True)


def _patched(changes: dict[str, Any]) -> Programme:
    return governance.validate(governance.apply_changes(BASE, changes))


def test_partial_rule_changes_only_what_it_names() -> None:
    new = _patched({"rules": [{"code": "lecture", "points": 40}]})
    old_rule = next(r for r in DEFAULT.rules if r.code == "lecture")
    new_rule = next(r for r in new.rules if r.code == "lecture")
    assert new_rule.points == 40
    assert new_rule.names == old_rule.names
    assert new_rule.limits == old_rule.limits
    assert governance.change_kinds(DEFAULT, new) == ["rules"]
    d = governance.diff(DEFAULT, new)
    assert d["rules"] == [{"code": "lecture", "change": "changed",
                           "fields": [{"field": "points", "old": 30, "new": 40}]}]
    assert d["settings"] == []
    assert d["name"] is None


def test_settings_merge_and_kinds() -> None:
    new = _patched({"settings": {"point_value": {"cny": "12.00"}, "tiers": {"silver": 1500, "gold": 5000},
                                 "budget": {"hard_stop": True}, "annual_cap": 8000}})
    assert new.settings.point_value.points == 100
    assert str(new.settings.point_value.cny) == "12.00"
    assert new.settings.expiry_months == DEFAULT.settings.expiry_months
    assert governance.change_kinds(DEFAULT, new) == ["point_value", "tiers", "budget", "settings"]
    fields = {c["field"]: (c["old"], c["new"]) for c in governance.diff(DEFAULT, new)["settings"]}
    assert fields == {"point_value.cny": ("10.00", "12.00"), "tiers.silver": (2000, 1500),
                      "budget.hard_stop": (False, True), "annual_cap": (10000, 8000)}


def test_new_rule_is_appended_and_must_be_whole() -> None:
    whole = {"code": "walk", "names": {"zh": "步行", "en": "Walk"}, "event": "photo.checkin", "points": 5}
    new = _patched({"rules": [whole]})
    assert new.rules[-1].code == "walk"
    added = governance.diff(DEFAULT, new)["rules"]
    assert added[0]["code"] == "walk"
    assert added[0]["change"] == "added"
    with pytest.raises(DraftInvalidError) as err:
        _patched({"rules": [{"code": "walk2", "points": 5}]})
    assert err.value.code == "programme.invalid"
    assert err.value.fields
    assert all(f["loc"][0] == "document" for f in err.value.fields)


def test_invalid_values_and_missing_codes() -> None:
    with pytest.raises(DraftInvalidError):
        _patched({"settings": {"annual_cap": 0}})
    with pytest.raises(DraftInvalidError) as err:
        governance.apply_changes(BASE, {"rules": [{"points": 5}]})
    assert err.value.fields == [{"loc": ["changes", "rules", 0, "code"], "msg": "a code is required"}]


def test_retiring_a_rule_and_rewards_kind() -> None:
    new = _patched({"rules": [{"code": "survey", "status": "retired"}],
                    "rewards": [{"code": "fee_offset", "points": 120}]})
    assert governance.change_kinds(DEFAULT, new) == ["rules", "rewards"]
    assert governance.change_kinds(DEFAULT, DEFAULT) == []
