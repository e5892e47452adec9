"""Manual adjustments over HTTP (both databases): under the threshold they post at once, above
it another staff member approves or rejects; the maker never decides their own (also refused
by the database's CHECK); idempotency; the operator's daily cap; a debit may create debt;
every step audited; who may do what."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from carepoints.audit.models import AuditEntry
from carepoints.audit.service import Actor
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.time import utc_now
from carepoints.operations import adjustments
from carepoints.operations.models import Adjustment, AdjustmentOperatorDay
from tests.helpers import error, staff_token

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"




def adjust(api: Api, key: str, pid: str, points: int, status: int = 201, **body: Any) -> dict[str, Any]:
    body.setdefault("reason_code", "goodwill")
    body.setdefault("note", "窗口核实后补偿")
    r = api.post("/adjustments", {"patient": {"id": pid}, "points": points, **body}, key=key)
    assert r.status_code == status, r.text
    return dict(r.json())


def actions(adjustment_id: str) -> list[str]:
    with read_tx() as s:
        return list(s.execute(select(AuditEntry.action).where(
            AuditEntry.subject_id == adjustment_id, AuditEntry.action.like("operations:%"))
            .order_by(AuditEntry.id)).scalars())


def test_under_the_threshold_posts_at_once_with_the_reason_as_message(api: Api) -> None:
    pid = api.enrol()
    assert api.balance(pid) == 100
    desk = staff_token(api, "desk.maker")
    doc = adjust(api, desk, pid, 150)
    assert (doc["status"], doc["points"], doc["balance"], doc["approved_by"]) == ("posted", 150, 250, None)
    assert doc["created_by"]["kind"] == "staff"
    assert api.balance(pid) == 250
    [entry] = [e for e in api.entries(pid) if e["kind"] == "adjust"]
    assert (entry["points"], entry["message"]) == (150, "关怀补偿")
    assert actions(doc["id"]) == ["operations:adjustment:created", "operations:adjustment:posted"]
    r = api.get(f"/adjustments/{doc['id']}", key=desk)
    assert (r.status_code, r.json()["status"]) == (200, "posted")


def test_above_the_threshold_waits_for_another_staff_member(api: Api) -> None:
    pid = api.enrol()
    maker, checker = staff_token(api, "desk.maker"), staff_token(api, "desk.checker")
    doc = adjust(api, maker, pid, 300, reason_code="missed_award")
    assert (doc["status"], doc["balance"], doc["approved_by"]) == ("pending", None, None)
    assert api.balance(pid) == 100
    r = api.get("/adjustments", params={"status": "pending"}, key=checker)
    assert [d["id"] for d in r.json()["items"]] == [doc["id"]]

    error(api.post(f"/adjustments/{doc['id']}/approve", {}, key=maker), 409, "adjustments.approver_is_maker")
    error(api.post(f"/adjustments/{doc['id']}/reject", {"note": "撤回"}, key=maker), 409,
          "adjustments.approver_is_maker")
    r = api.post(f"/adjustments/{doc['id']}/approve", {"note": "已核实"}, key=checker)
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["status"], done["balance"], done["approved_by"]["kind"]) == ("posted", 400, "staff")
    assert done["approved_by"]["id"] != done["created_by"]["id"]
    assert api.balance(pid) == 400
    error(api.post(f"/adjustments/{doc['id']}/approve", {}, key=checker), 409, "adjustments.not_pending")
    error(api.post(f"/adjustments/{doc['id']}/approve", {}, key=api.key), 409, "adjustments.not_pending")
    assert [e["message"] for e in api.entries(pid) if e["kind"] == "adjust"] == ["补发积分"]
    assert actions(doc["id"]) == ["operations:adjustment:created", "operations:adjustment:approved",
                                  "operations:adjustment:posted"]


def test_reject_posts_nothing(api: Api) -> None:
    pid = api.enrol()
    maker, checker = staff_token(api, "desk.maker"), staff_token(api, "desk.checker")
    doc = adjust(api, maker, pid, -500, reason_code="duplicate_award")
    error(api.post(f"/adjustments/{doc['id']}/reject", {}, key=checker), 422, "request.invalid")
    r = api.post(f"/adjustments/{doc['id']}/reject", {"note": "证据不足"}, key=checker)
    assert (r.status_code, r.json()["status"], r.json()["decision"]["outcome"]) == (200, "rejected", "rejected")
    assert api.balance(pid) == 100
    error(api.post(f"/adjustments/{doc['id']}/approve", {}, key=checker), 409, "adjustments.not_pending")
    assert actions(doc["id"]) == ["operations:adjustment:created", "operations:adjustment:rejected"]


def test_the_database_refuses_the_maker_as_checker(api: Api) -> None:
    pid = api.enrol()
    doc = adjust(api, staff_token(api, "desk.maker"), pid, 300)
    with pytest.raises(IntegrityError), write_tx() as s:
        s.execute(update(table(Adjustment)).where(table(Adjustment).c.id == doc["id"]).values(
            decided_by_kind="staff", decided_by_id=doc["created_by"]["id"]))
    with pytest.raises(IntegrityError), write_tx() as s:  # posted needs its transfer
        s.execute(update(table(Adjustment)).where(table(Adjustment).c.id == doc["id"]).values(status="posted"))
    days = table(AdjustmentOperatorDay)
    with pytest.raises(IntegrityError), write_tx() as s:  # the counter never passes its cap
        s.execute(update(days).where(days.c.operator_id == doc["created_by"]["id"]).values(used=days.c.cap + 1))


def test_idempotency_key(api: Api) -> None:
    pid = api.enrol()
    desk = staff_token(api, "desk.maker")
    first = adjust(api, desk, pid, 50, idempotency_key="desk-0001")
    again = adjust(api, desk, pid, 50, 200, idempotency_key="desk-0001")
    assert again == first
    assert api.balance(pid) == 150
    error(api.post("/adjustments", {"patient": {"id": pid}, "points": 60, "reason_code": "goodwill",
                                    "note": "窗口核实后补偿", "idempotency_key": "desk-0001"}, key=desk),
          409, "adjustments.idempotency_conflict")
    assert api.balance(pid) == 150


def test_the_operators_daily_cap_counts_pending_ones(api: Api) -> None:
    pid = api.enrol()
    desk, other = staff_token(api, "desk.maker"), staff_token(api, "desk.other")
    assert adjust(api, desk, pid, 600)["status"] == "pending"
    assert adjust(api, desk, pid, -200)["status"] == "posted"
    error(api.post("/adjustments", {"patient": {"id": pid}, "points": 201, "reason_code": "goodwill",
                                    "note": "再补"}, key=desk), 409, "adjustments.daily_cap_reached")
    assert adjust(api, desk, pid, 200)["status"] == "posted"  # exactly the cap: 600 + 200 + 200
    error(api.post("/adjustments", {"patient": {"id": pid}, "points": 1, "reason_code": "goodwill",
                                    "note": "再补"}, key=desk), 409, "adjustments.daily_cap_reached")
    assert adjust(api, other, pid, 100)["status"] == "posted"  # another operator has their own cap
    assert api.balance(pid) == 200


def test_a_debit_may_create_debt_repaid_by_a_later_credit(api: Api) -> None:
    pid = api.enrol()
    desk = staff_token(api, "desk.maker")
    assert adjust(api, desk, pid, -150, reason_code="correction")["balance"] == -50
    assert api.balance(pid) == -50
    assert adjust(api, desk, pid, 80)["balance"] == 30
    assert api.balance(pid) == 30


def test_bad_inputs(api: Api) -> None:
    pid = api.enrol()
    desk = staff_token(api, "desk.maker")
    base = {"patient": {"id": pid}, "points": 10, "reason_code": "goodwill", "note": "说明"}
    error(api.post("/adjustments", {**base, "reason_code": "bonus"}, key=desk), 400, "adjustments.unknown_reason")
    error(api.post("/adjustments", {**base, "points": 0}, key=desk), 422, "request.invalid")
    error(api.post("/adjustments", {**base, "points": 10_000_000}, key=desk), 422, "request.invalid")
    error(api.post("/adjustments", {**base, "note": "   "}, key=desk), 422, "request.invalid")
    error(api.post("/adjustments", {**base, "note": "x" * 501}, key=desk), 422, "request.invalid")
    error(api.post("/adjustments", {**base, "patient": {"id": UNKNOWN}}, key=desk), 404, "patients.not_found")
    error(api.get(f"/adjustments/{UNKNOWN}", key=desk), 404, "adjustments.not_found")
    error(api.get("/adjustments/nope", key=desk), 404, "adjustments.not_found")
    error(api.post(f"/adjustments/{UNKNOWN}/approve", {}, key=desk), 404, "adjustments.not_found")


def test_who_may_do_what(api: Api) -> None:
    pid = api.enrol()
    doc = adjust(api, api.key, pid, 20)  # an admin key may make them
    nurse = staff_token(api, "nurse.one", "nurse")
    auditor = staff_token(api, "auditor.one", "auditor")
    integration = api.make_key("integration", "i")
    body = {"patient": {"id": pid}, "points": 10, "reason_code": "goodwill", "note": "说明"}
    for key in (nurse, auditor, integration):
        error(api.post("/adjustments", body, key=key), 403, "auth.forbidden")
        error(api.post(f"/adjustments/{doc['id']}/approve", {}, key=key), 403, "auth.forbidden")
    error(api.get("/adjustments", key=nurse), 403, "auth.forbidden")
    assert api.get("/adjustments", key=auditor).status_code == 200
    assert api.get(f"/adjustments/{doc['id']}", key=auditor).status_code == 200


def test_pending_adjustments_expire(api: Api) -> None:
    pid = api.enrol()
    maker = Actor("staff", "0190a5f0-0000-7000-8000-000000000a01", "frontdesk")
    checker = Actor("staff", "0190a5f0-0000-7000-8000-000000000a02", "frontdesk")
    now = utc_now()
    with write_tx() as s:
        a, _ = adjustments.create(s, maker, now, ref=_Ref(pid), points=250, reason_code="goodwill", note="n")
        b, _ = adjustments.create(s, maker, now, ref=_Ref(pid), points=260, reason_code="goodwill", note="n")
    later = now + timedelta(days=7, seconds=1)
    with pytest.raises(adjustments.AdjustmentExpiredError), write_tx() as s:  # past its deadline, before the job
        adjustments.approve(s, a["id"], checker, later)
    assert adjustments.expire_pending(now + timedelta(days=6)) == {"expired": 0}
    assert adjustments.expire_pending(later) == {"expired": 2}
    assert adjustments.expire_pending(later) == {"expired": 0}
    with read_tx() as s:
        assert {adjustments.adjustment(s, x["id"])["status"] for x in (a, b)} == {"expired"}
    assert actions(a["id"])[-1] == "operations:adjustment:expired"
    assert api.balance(pid) == 100


class _Ref:
    def __init__(self, pid: str) -> None:
        self.id: str | None = pid
        self.system: str | None = None
        self.value: str | None = None
