"""A rule scoped to institutions (condition `institution`) pays only for their events."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import yaml

from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.rules import service as rules
from tests.helpers import bp

if TYPE_CHECKING:
    from tests.alliance.conftest import Alliance
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def _scope_checkin(op: str, codes: list[str]) -> None:
    doc = yaml.safe_load(rules.default_programme_text())
    for rule in doc["rules"]:
        if rule["code"] == "health_checkin":
            rule["conditions"] = [*rule["conditions"], {"type": "institution", "op": op, "value": codes}]
    now = utc_now()
    with write_tx() as session:
        rules.install(session, yaml.safe_dump(doc, allow_unicode=True).encode(), effective_from=now, now=now)


def _reading(api: Api, pid: str, **attrs: Any) -> dict[str, Any]:
    return {"type": "health.measurement", "patient": {"id": pid}, "occurred_at": api.now().isoformat(),
            "source": "his", "source_event_id": uuid.uuid4().hex, "attributes": {**bp(), **attrs}}


def _rules(out: dict[str, Any]) -> list[str]:
    return sorted(a["rule"] for a in out["awards"])


def test_a_scoped_rule_pays_only_for_its_institutions_events(api: Api, alliance: Alliance) -> None:
    _scope_checkin("in", ["A"])
    a = api.send(_reading(api, alliance.pa), key=alliance.key_a)  # stamped institution A
    b = api.send(_reading(api, alliance.pb), key=alliance.key_b)  # stamped institution B
    assert _rules(a) == ["first_checkin", "health_checkin"]
    assert _rules(b) == ["first_checkin"], b
    # an unbound key's event names no institution unless it says so
    c = api.send(_reading(api, alliance.pb, institution="A"))
    assert _rules(c) == ["health_checkin"]
    d = api.send({**_reading(api, alliance.pb), "occurred_at": (api.now() + timedelta(minutes=1)).isoformat()})
    assert _rules(d) == []
    assert api.balance(alliance.pa) == 160
    assert api.balance(alliance.pb) == 160


def test_not_in_excludes_the_named_institutions(api: Api, alliance: Alliance) -> None:
    _scope_checkin("not_in", ["A"])
    assert _rules(api.send(_reading(api, alliance.pa), key=alliance.key_a)) == ["first_checkin"]
    assert _rules(api.send(_reading(api, alliance.pb), key=alliance.key_b)) == ["first_checkin", "health_checkin"]
