"""The price catalogue's use cases on SQLite and PostgreSQL: dry run against real import, the same
file twice, updates and deactivations, all or nothing on a bad row, packages, the staged upload of
the admin page, the 乙 share, concurrent imports, and estimates computed by hand."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from carepoints.audit.service import Actor
from carepoints.kit.db import get_engine, read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.security import scope
from carepoints.security.errors import InstitutionOutOfScopeError
from carepoints.services.pricing import service
from carepoints.services.pricing.errors import (
    InvalidCatalogueError,
    InvalidQuantityError,
    NothingToEstimateError,
    UnknownItemError,
    UploadNotFoundError,
)
from carepoints.services.pricing.schemas import EstimateCreate, SettingsUpdate
from tests.conftest import Db
from tests.services.pricing.kit import (
    ACTOR,
    HEADER,
    ITEMS,
    PACKAGE_HEADER,
    PACKAGES,
    csv_bytes,
    institution,
    load,
    load_all,
    xlsx_bytes,
)


def _rows(sql: str) -> list[tuple[Any, ...]]:
    with get_engine().connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def _catalogue() -> list[tuple[Any, ...]]:
    return sorted(_rows("SELECT code, price_fen, insurance_class, self_pay_bp, active, updated_at FROM price_items"))


def _audits() -> int:
    return int(_rows("SELECT count(*) FROM audit_log WHERE action LIKE 'pricing:%'")[0][0])


def estimate(inst: str, now: datetime, items: tuple[tuple[str, int], ...] | list[tuple[str, int]] = (),
             packages: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    body = EstimateCreate.model_validate({"institution_id": inst, "items": [{"code": c, "qty": q} for c, q in items],
                                          "packages": list(packages)})
    with read_tx() as session:
        return service.estimate(session, body, now)


def test_a_dry_run_stores_nothing_and_the_real_import_everything(db: Db, now: datetime) -> None:
    inst = institution(now)
    dry = load(inst, now, dry_run=True)
    assert dry["dry_run"] is True
    assert dry["applied"] is False
    assert dry["counts"] == {"created": 9, "updated": 0, "deactivated": 0, "unchanged": 0, "errors": 0}
    assert [r["code"] for r in dry["items"]["created"]] == [r[0] for r in ITEMS]
    assert dry["packages"] is None  # the file has no package list
    assert _catalogue() == []
    assert _audits() == 0

    real = load(inst, now)
    assert real["applied"] is True
    assert {k: v for k, v in real.items() if k not in ("dry_run", "applied")} == \
        {k: v for k, v in dry.items() if k not in ("dry_run", "applied")}
    stored = _catalogue()
    classes = {"甲": "a", "乙": "b", "丙": "c"}
    assert [(c, p, k, s, bool(a)) for c, p, k, s, a, _u in stored] == sorted(
        (r[0], round(float(r[5]) * 100), classes[r[6]], int(r[7]) * 100 if r[7] else None, True) for r in ITEMS)
    [(action, details)] = _rows("SELECT action, details FROM audit_log WHERE action LIKE 'pricing:%'")
    assert action == "pricing:catalogue:import"
    assert "created" in str(details)
    assert "胸部" not in str(details)  # counts and the digest only


def test_the_same_file_twice_changes_nothing(db: Db, now: datetime) -> None:
    inst = institution(now)
    load_all(inst, now)
    before, audits = _catalogue(), _audits()
    packages_before = _rows("SELECT code, name_zh, active, updated_at FROM price_packages")
    again = load(inst, now + timedelta(hours=1))
    assert again["applied"] is False
    assert again["counts"] == {"created": 0, "updated": 0, "deactivated": 0, "unchanged": 9, "errors": 0}
    again_pkg = load(inst, now + timedelta(hours=1), csv_bytes(PACKAGES, PACKAGE_HEADER))
    assert again_pkg["counts"]["unchanged"] == 1
    assert again_pkg["applied"] is False
    assert _catalogue() == before  # not even updated_at moved
    assert _rows("SELECT code, name_zh, active, updated_at FROM price_packages") == packages_before
    assert _audits() == audits


def test_changes_are_planned_and_applied(db: Db, now: datetime) -> None:
    inst = institution(now)
    load_all(inst, now)
    changed = [list(r) for r in ITEMS if r[0] != "ROOM"]
    changed[0][5] = "300.00"  # CT01 dearer
    changed[2][6] = "乙"  # LAB1 甲 → 乙 at 15%
    changed[2][7] = "15"
    changed.append(["NEW1", "新项目", "", "治疗", "次", "8.80", "甲", "", "", "0"])  # arrives inactive
    plan = load(inst, now, csv_bytes(changed), dry_run=True)
    assert plan["counts"] == {"created": 1, "updated": 2, "deactivated": 1, "unchanged": 6, "errors": 0}
    assert {u["code"]: u["changes"] for u in plan["items"]["updated"]} == {
        "CT01": {"price": {"from": "280.00", "to": "300.00"}},
        "LAB1": {"insurance_class": {"from": "a", "to": "b"}, "self_pay_bp": {"from": None, "to": 1500}}}
    assert plan["items"]["deactivated"] == ["ROOM"]
    # PKG1 holds ROOM: the next package import would refuse it, but this item-only file leaves packages alone
    load(inst, now, csv_bytes(changed))
    stored = {c: (p, k, s, bool(a)) for c, p, k, s, a, _u in _catalogue()}
    assert stored["CT01"] == (30000, "b", None, True)
    assert stored["LAB1"] == (2000, "b", 1500, True)
    assert stored["ROOM"][3] is False  # deactivated, still there
    assert stored["NEW1"][3] is False
    with pytest.raises(UnknownItemError) as err:
        estimate(inst, now, [("ROOM", 1)])
    assert err.value.params["codes"] == "ROOM"
    with pytest.raises(UnknownItemError) as err:  # a package holding it cannot be estimated either
        estimate(inst, now, packages=["PKG1"])
    assert [(f["loc"], f["code"]) for f in err.value.fields or []] == [(["packages", 0], "ROOM")]
    with read_tx() as session:
        assert [p["available"] for p in service.packages(session, inst, now)["items"]] == [False]
    refused = load(inst, now, csv_bytes(PACKAGES, PACKAGE_HEADER), dry_run=True)
    assert [(e["row"], e["code"]) for e in refused["errors"]] == [(3, "PKG1")]
    assert "ROOM" in refused["errors"][0]["msg"]


def test_a_bad_row_refuses_the_whole_file(db: Db, now: datetime) -> None:
    inst = institution(now)
    load(inst, now)
    before, audits = _catalogue(), _audits()
    rows = [list(r) for r in ITEMS]
    rows[0][5] = "999.00"  # a good change that must not land
    rows.append(["BAD", "坏行", "", "检查", "次", "十元", "甲", "", "", ""])
    with pytest.raises(InvalidCatalogueError) as err:
        load(inst, now, csv_bytes(rows))
    assert err.value.status_code == 422
    assert [(f["row"], f["column"], f["code"]) for f in err.value.fields or []] == [(11, "price", "BAD")]
    assert _catalogue() == before
    assert _audits() == audits
    dry = load(inst, now, csv_bytes(rows), dry_run=True)  # the dry run shows both the change and the error
    assert [u["code"] for u in dry["items"]["updated"]] == ["CT01"]
    assert dry["items"]["deactivated"] == []
    assert len(dry["errors"]) == 1


def test_packages_and_a_workbook_with_both_lists(db: Db, now: datetime) -> None:
    inst = institution(now)
    refused = load(inst, now, csv_bytes(PACKAGES, PACKAGE_HEADER), dry_run=True)  # no items yet
    assert {e["code"] for e in refused["errors"]} == {"PKG1"}
    assert len(refused["errors"]) == 3
    book = xlsx_bytes({"items": [HEADER, *ITEMS], "packages": [PACKAGE_HEADER, *PACKAGES]})
    done = load(inst, now, book)
    assert done["counts"]["created"] == 10
    assert done["file"]["kind"] == "xlsx"
    with read_tx() as session:
        [pkg] = service.packages(session, inst, now)["items"]
    assert [(i["code"], i["qty"]) for i in pkg["items"]] == [("SURG", 1), ("ROOM", 3), ("LAB1", 2)]
    assert (pkg["total"], pkg["self_pay"], pkg["available"]) == ("3440.00", "1160.00", True)
    fewer = [PACKAGES[0], ["PKG1", "", "", "LAB1", "1"], ["PKG2", "新套餐", "", "CT01", "1"]]
    plan = load(inst, now, csv_bytes(fewer, PACKAGE_HEADER))
    assert plan["packages"]["updated"] == [{"code": "PKG1", "changes": {"items": {
        "from": ["SURG×1", "ROOM×3", "LAB1×2"], "to": ["SURG×1", "LAB1×1"]}}}]
    assert [p["code"] for p in plan["packages"]["created"]] == ["PKG2"]
    plan = load(inst, now, csv_bytes([["PKG2", "新套餐", "", "CT01", "1"]], PACKAGE_HEADER))
    assert plan["packages"]["deactivated"] == ["PKG1"]
    with read_tx() as session:
        assert [p["code"] for p in service.packages(session, inst, now)["items"]] == ["PKG2"]
    with pytest.raises(UnknownItemError):
        estimate(inst, now, packages=["PKG1"])


def test_an_estimate_by_hand(db: Db, now: datetime) -> None:
    inst = institution(now)
    load_all(inst, now)
    doc = estimate(inst, now, [("CT01", 1), ("TINY", 1), ("SURG", 1), ("D-BRAND", 2)], ["PKG1"])
    lines = [(ln["code"], ln["qty"], ln["amount"], ln["self_pay_bp"], ln["self_pay"], ln["insured"], ln["package"])
             for ln in doc["lines"]]
    assert lines == [
        ("CT01", 1, "280.00", 1000, "28.00", "252.00", None),  # 乙 at the default 10%
        ("TINY", 1, "0.05", 1000, "0.01", "0.04", None),  # ¥0.005 rounds half up
        ("SURG", 1, "2800.00", 2000, "560.00", "2240.00", None),  # 乙 with its own 20%
        ("D-BRAND", 2, "197.00", 1000, "19.70", "177.30", None),
        ("SURG", 1, "2800.00", 2000, "560.00", "2240.00", "PKG1"),
        ("ROOM", 3, "600.00", 10_000, "600.00", "0.00", "PKG1"),  # 丙: all self-paid
        ("LAB1", 2, "40.00", 0, "0.00", "40.00", "PKG1"),  # 甲: nothing
    ]
    assert doc["totals"] == {"total": "6717.05", "insured": "4949.34", "self_pay": "1767.71", "lines": 7}
    assert doc["packages"] == [{"code": "PKG1", "name": {"zh": "白内障套餐", "en": "Cataract package"},
                                "total": "3440.00", "self_pay": "1160.00"}]
    brand = doc["lines"][3]
    assert [(e["code"], e["amount"], e["self_pay"], e["saving_per_unit"], e["saving"], e["self_pay_saving"])
            for e in brand["equivalents"]] == [
        ("D-GEN2", "24.00", "0.00", "86.50", "173.00", "19.70"),  # 甲: nothing to pay oneself
        ("D-GEN", "6.72", "0.67", "95.14", "190.28", "19.03")]
    assert all(ln["equivalents"] == [] for ln in doc["lines"] if ln["code"] != "D-BRAND")
    assert doc["notices"]["bill"].startswith("实际费用以医院收费为准")
    assert doc["notices"]["insurance"].startswith("医保报销比例以当地政策为准")
    assert doc["as_of"] == service.today(now)


def test_the_class_b_share_is_the_institutions(db: Db, now: datetime) -> None:
    inst = institution(now)
    load(inst, now)
    with write_tx() as session:
        doc = service.set_settings(session, SettingsUpdate(institution_id=inst, class_b_self_pay_bp=3000), ACTOR, now)
    assert doc["self_pay_bp"] == {"a": 0, "b": 3000, "c": 10_000}
    assert doc["default"] is False
    lines = estimate(inst, now, [("CT01", 1), ("SURG", 1)])["lines"]
    assert [(ln["self_pay_bp"], ln["self_pay"]) for ln in lines] == [(3000, "84.00"), (2000, "560.00")]
    audits = _audits()
    with write_tx() as session:  # the same share again: no change, no audit row
        service.set_settings(session, SettingsUpdate(institution_id=inst, class_b_self_pay_bp=3000), ACTOR, now)
    assert _audits() == audits


def test_estimates_refuse_unknown_codes_and_quantities(db: Db, now: datetime) -> None:
    inst = institution(now)
    expiring = [*ITEMS, ["OLD", "旧项目", "", "检查", "次", "5", "甲", "", "", ""]]
    header_rows = [[*r, "", ""] for r in expiring]
    header_rows[-1][-1] = (service.today(now) - timedelta(days=1)).isoformat()  # valid_to yesterday
    load(inst, now, csv_bytes(header_rows, [*HEADER, "valid_from", "valid_to"]))
    with pytest.raises(UnknownItemError) as err:
        estimate(inst, now, [("CT01", 1), ("NOPE", 1), ("OLD", 1), ("LAB1", 0)], ["NOPKG"])
    assert err.value.status_code == 422
    assert err.value.params["codes"] == "NOPE, OLD, NOPKG"  # the detail names the unknown; fields all problems
    assert [(f["loc"], f["code"]) for f in err.value.fields or []] == [
        (["items", 1, "code"], "NOPE"), (["items", 2, "code"], "OLD"), (["packages", 0], "NOPKG"),
        (["items", 3, "qty"], "LAB1")]
    for wanted in ([("CT01", 0)], [("CT01", -2)], [("CT01", 1000)], [("CT01", 600), ("CT01", 400)]):
        with pytest.raises(InvalidQuantityError) as qty:
            estimate(inst, now, wanted)
        assert qty.value.params["codes"] == "CT01"
        assert "CT01" in qty.value.detail
    assert estimate(inst, now, [("CT01", 600), ("CT01", 399)])["lines"][0]["qty"] == 999
    with pytest.raises(NothingToEstimateError):
        estimate(inst, now)
    other = institution(now, "h2", "第二医院")
    with pytest.raises(UnknownItemError):  # another hospital's catalogue is its own
        estimate(other, now, [("CT01", 1)])


def test_items_are_searched_by_code_or_name(db: Db, now: datetime) -> None:
    inst = institution(now)
    load(inst, now)

    def codes(**kw: Any) -> list[str]:
        with read_tx() as session:
            return [i["code"] for i in service.items(session, inst, now, **kw)["items"]]

    assert codes(q="ct0") == ["CT01"]  # the code, any case
    assert codes(q="CHEST") == ["CT01", "XR01"]  # the English name, any case
    assert codes(q="氨氯地平") == ["D-BRAND", "D-GEN", "D-GEN2"]
    assert codes(q="%") == []  # a wildcard is a character like any other
    assert codes(category="drug") == ["D-BRAND", "D-GEN", "D-GEN2"]
    with read_tx() as session:
        first = service.items(session, inst, now, limit=4)
        rest = service.items(session, inst, now, limit=4, offset=first["next_offset"])
    assert (first["total"], first["next_offset"], len(rest["items"])) == (9, 4, 4)
    assert not {i["code"] for i in first["items"]} & {i["code"] for i in rest["items"]}


def test_the_admin_page_stages_what_it_previewed(db: Db, now: datetime) -> None:
    inst = institution(now)
    with write_tx() as session:
        upload_id, report = service.stage_upload(session, inst, csv_bytes(ITEMS), ACTOR, now)
    assert upload_id is not None
    assert report["counts"]["created"] == 9
    assert _catalogue() == []
    someone_else = Actor("staff", "0190a5f0-0000-7000-8000-00000000b0b0", "admin")
    with pytest.raises(UploadNotFoundError), write_tx() as session:
        service.import_staged(session, upload_id, someone_else, now)
    with pytest.raises(UploadNotFoundError), write_tx() as session:
        service.import_staged(session, upload_id, ACTOR, now + timedelta(days=2))  # expired
    with write_tx() as session:
        done = service.import_staged(session, upload_id, ACTOR, now)
    assert done["applied"] is True
    assert len(_catalogue()) == 9
    with pytest.raises(UploadNotFoundError), write_tx() as session:  # once only
        service.import_staged(session, upload_id, ACTOR, now)
    bad = csv_bytes([*ITEMS, ["X", "", "", "", "", "", "", "", "", ""]])
    with write_tx() as session:
        none_id, report = service.stage_upload(session, inst, bad, ACTOR, now)
    assert none_id is None
    assert report["errors"]
    assert _rows("SELECT count(*) FROM price_import_uploads")[0][0] == 0


def test_a_bound_caller_imports_only_for_its_institutions(db: Db, now: datetime) -> None:
    inst, other = institution(now), institution(now, "h2", "第二医院")
    scope.enter_institutions(frozenset({other}))
    try:
        with pytest.raises(InstitutionOutOfScopeError):
            load(inst, now)
        assert load(other, now)["applied"] is True
    finally:
        scope.enter_institutions(None)
    assert {r[0] for r in _rows("SELECT DISTINCT institution_id FROM price_items")} == {other}


def test_concurrent_imports_of_one_file_take_turns(db: Db, now: datetime) -> None:
    """Two imports at once: both succeed, the items are created once, one of them applied them and
    the other found nothing to change (the database, not Python, ordered them)."""
    inst = institution(now)
    content = csv_bytes(ITEMS)
    barrier = threading.Barrier(2)
    results: list[dict[str, Any] | AppError | BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(load(inst, now, content))
        except BaseException as exc:  # reported below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, dict) for r in results), results
    assert sorted(r["applied"] for r in results if isinstance(r, dict)) == [False, True]
    assert len(_catalogue()) == 9
    assert _audits() == 1
