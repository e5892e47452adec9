"""Health-profile items on SQLite and PostgreSQL: the first value of each item earns
30 once, forever; values never reach audit rows or the outbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import pytest
from sqlalchemy import select

from carepoints.audit.models import AuditEntry
from carepoints.kit.db import read_tx
from carepoints.kit.outbox import OutboxMessage
from tests.helpers import error

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"
CONTACT = {"name": "李四", "phone": "13900001111", "relation": "儿子"}


def put(api: Api, pid: str, item: str, value: Any) -> Any:
    return api.request("PUT", f"/patients/{pid}/profile/{item}", {"value": value})


def test_each_item_earns_once_forever(api: Api) -> None:
    pid = api.enrol()
    r = put(api, pid, "allergies", "青霉素过敏")
    assert r.status_code == 200, r.text
    assert [(a["rule"], a["points"]) for a in r.json()["outcome"]["awards"]] == [("profile_item", 30)]
    assert (r.json()["completed"], r.json()["value"]) == (True, "青霉素过敏")
    assert put(api, pid, "allergies", "青霉素、头孢过敏").json()["outcome"] is None
    assert put(api, pid, "allergies", None).json()["value"] is None  # cleared
    refilled = put(api, pid, "allergies", "青霉素过敏")
    assert (refilled.json()["outcome"], refilled.json()["completed"]) == (None, True)
    assert api.balance(pid) == 130
    assert put(api, pid, "emergency_contact", CONTACT).json()["outcome"]["awards"][0]["points"] == 30
    assert api.balance(pid) == 160
    doc = api.get(f"/patients/{pid}/profile").json()
    assert (doc["completed"], doc["total"]) == (2, 5)
    values = {i["item"]: i["value"] for i in doc["items"]}
    assert values["emergency_contact"] == CONTACT
    assert values["past_history"] is None


def test_an_empty_value_earns_nothing(api: Api) -> None:
    pid = api.enrol()
    for value in ("", "   ", None):
        r = put(api, pid, "past_history", value)
        assert (r.status_code, r.json()["outcome"], r.json()["completed"]) == (200, None, False)
    assert api.balance(pid) == 100
    assert put(api, pid, "past_history", "2019年阑尾切除").json()["outcome"]["awards"][0]["points"] == 30


def test_values_never_reach_the_audit_log_or_the_outbox(api: Api) -> None:
    pid = api.enrol()
    put(api, pid, "current_medicines", "氨氯地平 5mg 每日一次")
    put(api, pid, "emergency_contact", CONTACT)
    with read_tx() as s:
        audit_rows = [dict(r) for r in s.connection().execute(select(AuditEntry.__table__).where(
            AuditEntry.__table__.c.patient_id == pid)).mappings()]
        outbox = [r[0] for r in s.connection().execute(select(OutboxMessage.__table__.c.payload))]
    assert {r["details"]["item"] for r in audit_rows if r["action"] == "engagement:profile:update"} == {
        "current_medicines", "emergency_contact"}
    dumped = orjson.dumps([audit_rows, outbox], default=str).decode()
    for secret in ("氨氯地平", "13900001111", "李四"):
        assert secret not in dumped


@pytest.mark.parametrize(("item", "value"), [("allergies", CONTACT), ("emergency_contact", "李四 139")])
def test_a_value_of_the_wrong_shape_is_422_with_a_code(api: Api, item: str, value: Any) -> None:
    error(put(api, api.enrol(), item, value), 422, "engagement.profile_value_invalid")


@pytest.mark.parametrize("body", [{"value": "x" * 2001}, {"value": {**CONTACT, "phone": "call me"}},
                                  {"value": {**CONTACT, "name": ""}}, {"value": {"name": "a"}},
                                  {"value": "x", "extra": 1}, {"value": 5}])
def test_bad_values_are_422(api: Api, body: dict[str, Any]) -> None:
    error(api.request("PUT", f"/patients/{api.enrol()}/profile/allergies", body), 422, "request.invalid")


def test_unknown_item_and_patient(api: Api) -> None:
    error(put(api, api.enrol(), "blood_type", "A"), 422, "request.invalid")
    error(put(api, UNKNOWN, "allergies", "x"), 404, "patients.not_found")
    error(api.get(f"/patients/{UNKNOWN}/profile"), 404, "patients.not_found")
