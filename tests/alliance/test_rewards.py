"""A reward scoped to institutions (programme field `institutions`) is hidden from, and not
redeemable by, patients of the alliance's other institutions."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import yaml
from sqlalchemy import select

from carepoints.audit.service import Actor
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.rewards import service as rewards
from carepoints.rewards.models import InstitutionBudgetYear
from carepoints.rewards.schemas import RedemptionCreate
from carepoints.rules import service as rules
from tests.helpers import error
from tests.locks import errors, oks, race

if TYPE_CHECKING:
    from tests.alliance.conftest import Alliance
    from tests.api_client import Api
    from tests.conftest import Db

pytest_plugins = ["tests.api_client"]

DESK = Actor("staff", "desk-1", "frontdesk")


def _catalogue_with(budgets: dict[str, str] | None = None, **scoped: list[str]) -> None:
    doc = yaml.safe_load(rules.default_programme_text())
    for code, institutions in scoped.items():
        doc["rewards"].append({"code": code, "kind": "coupon", "names": {"zh": "社区药房券", "en": "Pharmacy voucher"},
                               "points": 40, "cost_cny": "10.00", "institutions": institutions})
    if budgets is not None:
        doc["settings"]["budgets"] = budgets
    raw = yaml.safe_dump(doc, allow_unicode=True).encode()
    now = utc_now()
    with write_tx() as session:
        if budgets is not None:
            rules.install(session, raw, effective_from=now, now=now)
        rewards.sync_catalogue(session, rules.parse_programme(raw), now)


def _codes(api: Api, pid: str, **kwargs: Any) -> set[str]:
    r = api.get("/rewards", params={"patient_id": pid}, **kwargs)
    assert r.status_code == 200, r.text
    return {i["code"] for i in r.json()["items"]}


def _redeem(api: Api, pid: str, reward: str, **kwargs: Any) -> Any:
    return api.post("/redemptions", {"patient_id": pid, "reward": reward, "idempotency_key": uuid.uuid4().hex},
                    **kwargs)


def test_a_scoped_reward_is_invisible_to_other_institutions_patients(api: Api, alliance: Alliance) -> None:
    _catalogue_with(voucher_a=["A"], voucher_ab=["A", "B"])
    assert {"voucher_a", "voucher_ab", "checkup_80"} <= _codes(api, alliance.pa)
    seen_by_b = _codes(api, alliance.pb)
    assert "voucher_a" not in seen_by_b
    assert {"voucher_ab", "checkup_80"} <= seen_by_b
    # the whole catalogue (no patient named) lists it with its institutions
    items = {i["code"]: i for i in api.get("/rewards").json()["items"]}
    assert items["voucher_a"]["institutions"] == ["A"]
    assert items["checkup_80"]["institutions"] == []


def test_a_scoped_reward_is_not_redeemable_by_other_institutions_patients(api: Api, alliance: Alliance) -> None:
    _catalogue_with(voucher_a=["A"])
    error(_redeem(api, alliance.pb, "voucher_a"), 409, "rewards.not_available")
    assert api.balance(alliance.pb) == 100
    ok = _redeem(api, alliance.pa, "voucher_a")
    assert ok.status_code == 201, ok.text
    assert api.balance(alliance.pa) == 60
    # a bound key of B cannot even name A's patient
    error(_redeem(api, alliance.pa, "voucher_a", key=alliance.key_b), 404, "patients.not_found")


def test_an_institutions_budget_stops_its_scoped_rewards(api: Api, alliance: Alliance) -> None:
    _catalogue_with(budgets={"A": "25.00"}, voucher_a=["A"], voucher_all=[])
    pids = [alliance.pa] + [api.post("/patients", api.patient_body(), key=alliance.key_a).json()["id"]
                            for _ in range(2)]
    first, second = (_redeem(api, p, "voucher_a") for p in pids[:2])
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    error(_redeem(api, pids[2], "voucher_a"), 409, "rewards.budget_exhausted")
    assert api.balance(pids[2]) == 100
    # an unscoped reward is not counted against the institution's budget
    assert _redeem(api, pids[2], "voucher_all").status_code == 201
    # a refund gives the cost back to the institution's budget
    refund = api.post(f"/redemptions/{first.json()['id']}/refund")
    assert refund.status_code == 200, refund.text
    assert _redeem(api, pids[2], "voucher_a").status_code == 201
    with read_tx() as session:
        row = session.execute(select(InstitutionBudgetYear.institution_code, InstitutionBudgetYear.used_fen)).all()
    assert [tuple(r) for r in row] == [("A", 2000)]


def test_concurrent_redemptions_never_pass_the_institutions_budget(racing: Db, api: Api,
                                                                   alliance: Alliance) -> None:
    _catalogue_with(budgets={"A": "30.00"}, voucher_a=["A"])
    pids = [api.post("/patients", api.patient_body(), key=alliance.key_a).json()["id"] for _ in range(6)]

    def redeem(pid: str) -> dict[str, Any]:
        with write_tx() as session:
            doc, _new = rewards.redeem(session, RedemptionCreate(patient_id=pid, reward="voucher_a",
                                                                 idempotency_key=uuid.uuid4().hex), DESK, utc_now())
            return doc

    results = race(racing, [lambda p=p: redeem(p) for p in pids])
    assert len(oks(results)) == 3, results
    assert {type(e).__name__ for e in errors(results)} == {"BudgetExhaustedError"}
    with read_tx() as session:
        used = session.execute(select(InstitutionBudgetYear.used_fen)).scalar_one()
    assert used == 3000
    assert sum(api.balance(p) for p in pids) == 6 * 100 - 3 * 40
