"""The pricing API over HTTP on SQLite and PostgreSQL: multipart import (CSV with BOM, Excel, dry
run, row errors → 422 with nothing stored), reads, the estimate with its 422s naming the codes, the
insurance settings, and who may call what (a patient estimates but never imports)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from carepoints.config import get_settings
from carepoints.kit.time import utc_now
from carepoints.security import otp
from carepoints.services.pricing import parsing
from tests.helpers import error, staff_token
from tests.services.pricing.kit import HEADER, ITEMS, PACKAGE_HEADER, PACKAGES, csv_bytes, institution, xlsx_bytes

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def patient_token(api: Api) -> str:
    token, _ttl = otp.patient_token(api.enrol(), utc_now(), get_settings())
    return token


def upload(api: Api, inst: str, content: bytes, *, dry_run: bool = False, key: str | None = None,
           name: str = "catalogue.csv", media: str = CSV) -> httpx.Response:
    return api.post(f"/pricing/catalogue/import{'?dry_run=true' if dry_run else ''}", key=key,
                    data={"institution_id": inst}, files={"file": (name, content, media)})


def items(api: Api, inst: str, **params: Any) -> dict[str, Any]:
    r = api.get("/pricing/items", params={"institution_id": inst, **params})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_import_a_csv_with_bom_dry_run_first(api: Api) -> None:
    inst = institution(utc_now())
    content = csv_bytes(ITEMS, bom=True)
    dry = upload(api, inst, content, dry_run=True)
    assert dry.status_code == 200, dry.text
    doc = dry.json()
    assert (doc["dry_run"], doc["applied"], doc["file"]["encoding"]) == (True, False, "utf-8-sig")
    assert doc["counts"]["created"] == 9
    assert items(api, inst)["total"] == 0  # nothing stored
    real = upload(api, inst, content)
    assert real.status_code == 200, real.text
    assert real.json()["applied"] is True
    listed = items(api, inst, limit=100)
    assert listed["total"] == 9
    ct = next(i for i in listed["items"] if i["code"] == "CT01")
    assert ct == {"code": "CT01", "name": {"zh": "胸部CT平扫", "en": "Chest CT"}, "category": "exam", "unit": "次",
                  "price": "280.00", "insurance_class": "b", "self_pay_bp": 1000, "self_pay_bp_item": None,
                  "equivalent_group": None, "active": True, "valid_from": None, "valid_to": None}
    again = upload(api, inst, content)  # idempotent
    assert again.json()["applied"] is False
    assert again.json()["counts"]["unchanged"] == 9


def test_import_an_excel_workbook_with_packages(api: Api) -> None:
    inst = institution(utc_now())
    book = xlsx_bytes({"项目": [HEADER, *ITEMS], "套餐": [PACKAGE_HEADER, *PACKAGES]})
    r = upload(api, inst, book, name="目录.xlsx", media=XLSX)
    assert r.status_code == 200, r.text
    assert r.json()["file"]["kind"] == "xlsx"
    r = api.get("/pricing/packages", params={"institution_id": inst})
    assert r.status_code == 200, r.text
    [pkg] = r.json()["items"]
    assert (pkg["code"], pkg["total"], pkg["self_pay"]) == ("PKG1", "3440.00", "1160.00")


def test_bad_rows_are_422_and_store_nothing(api: Api) -> None:
    inst = institution(utc_now())
    rows = [*ITEMS, ["BAD1", "坏行", "", "检查", "次", "1.234", "甲", "", "", ""],
            ["BAD2", "坏行", "", "未知", "次", "1", "甲", "", "", ""]]
    r = upload(api, inst, csv_bytes(rows))
    body = error(r, 422, "pricing.invalid_rows")
    assert [(f["row"], f["column"], f["code"]) for f in body["fields"]] == [(11, "price", "BAD1"),
                                                                            (12, "category", "BAD2")]
    assert all(" / " in f["msg"] for f in body["fields"])
    assert items(api, inst, include_inactive=True)["total"] == 0
    dry = upload(api, inst, csv_bytes(rows), dry_run=True)  # the dry run answers the errors with the plan
    assert dry.status_code == 200
    assert len(dry.json()["errors"]) == 2
    assert dry.json()["counts"]["created"] == 9


@pytest.mark.parametrize(("content", "status", "code"), [
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, 422, "pricing.unreadable_file"),
    (b"", 422, "pricing.unreadable_file"),
    (b"a" * (parsing.MAX_BYTES + 10), 413, "pricing.file_too_large"),
])
def test_unreadable_or_large_files(api: Api, content: bytes, status: int, code: str) -> None:
    inst = institution(utc_now())
    error(upload(api, inst, content), status, code)
    assert items(api, inst, include_inactive=True)["total"] == 0


def test_malformed_import_requests(api: Api) -> None:
    inst = institution(utc_now())
    error(api.post("/pricing/catalogue/import", data={"institution_id": inst}), 422, "request.invalid")  # no file
    error(api.post("/pricing/catalogue/import", files={"file": ("a.csv", csv_bytes(ITEMS), CSV)}), 422,
          "request.invalid")  # no institution
    error(upload(api, "0190a5f0-0000-7000-8000-000000000000", csv_bytes(ITEMS)), 404, "pricing.institution_not_found")
    error(upload(api, "not-an-id", csv_bytes(ITEMS)), 404, "pricing.institution_not_found")


def test_the_estimate_over_http(api: Api) -> None:
    inst = institution(utc_now())
    assert upload(api, inst, csv_bytes(ITEMS)).status_code == 200
    assert upload(api, inst, csv_bytes(PACKAGES, PACKAGE_HEADER)).status_code == 200
    me = patient_token(api)
    r = api.post("/pricing/estimate", {"institution_id": inst, "items": [{"code": "TINY", "qty": 3},
                                                                          {"code": "D-BRAND", "qty": 1}],
                                       "packages": ["PKG1"]}, key=me)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [(ln["code"], ln["amount"], ln["self_pay"]) for ln in doc["lines"]] == [
        ("TINY", "0.15", "0.02"), ("D-BRAND", "98.50", "9.85"),  # 1.5 fen → 2 fen
        ("SURG", "2800.00", "560.00"), ("ROOM", "600.00", "600.00"), ("LAB1", "40.00", "0.00")]
    assert doc["totals"] == {"total": "3538.65", "insured": "2368.78", "self_pay": "1169.87", "lines": 5}
    assert [e["code"] for e in doc["lines"][1]["equivalents"]] == ["D-GEN2", "D-GEN"]
    assert doc["lines"][1]["equivalents"][0]["saving"] == "86.50"
    assert set(doc["notices"]) == {"bill", "insurance"}


@pytest.mark.parametrize(("body", "code", "named"), [
    ({"items": [{"code": "NOPE", "qty": 1}]}, "pricing.unknown_item", "NOPE"),
    ({"packages": ["NOPKG"]}, "pricing.unknown_item", "NOPKG"),
    ({"items": [{"code": "CT01", "qty": 0}]}, "pricing.invalid_quantity", "CT01"),
    ({"items": [{"code": "CT01", "qty": 1000}]}, "pricing.invalid_quantity", "CT01"),
    ({"items": [{"code": "LAB1", "qty": -1}]}, "pricing.invalid_quantity", "LAB1"),
    ({}, "pricing.nothing_to_estimate", None),
])
def test_estimate_refusals_name_the_code(api: Api, body: dict[str, Any], code: str, named: str | None) -> None:
    inst = institution(utc_now())
    assert upload(api, inst, csv_bytes(ITEMS)).status_code == 200
    r = api.post("/pricing/estimate", {"institution_id": inst, **body})
    found = error(r, 422, code)
    if named:
        assert named in found["detail"]
        assert [f["code"] for f in found["fields"]] == [named]


@pytest.mark.parametrize("body", [
    {"items": [{"code": "bad code!", "qty": 1}]}, {"items": [{"code": "CT01", "qty": 1.5}]},
    {"items": [{"code": "CT01", "qty": 1, "price": "0.01"}]}, {"items": [{"code": "CT01"}] * 101},
    {"institution_id": ""},
])
def test_malformed_estimates(api: Api, body: dict[str, Any]) -> None:
    inst = institution(utc_now())
    error(api.post("/pricing/estimate", {"institution_id": inst, **body}), 422, "request.invalid")


def test_reads_and_their_bounds(api: Api) -> None:
    inst = institution(utc_now())
    assert upload(api, inst, csv_bytes(ITEMS)).status_code == 200
    found = items(api, inst, q="氨氯", limit=2)
    assert (found["total"], len(found["items"]), found["next_offset"]) == (3, 2, 2)
    assert items(api, inst, category="bed")["items"][0]["code"] == "ROOM"
    for params in ({"category": "spaceship"}, {"limit": 0}, {"limit": 101}, {"q": "x" * 51}, {}):
        error(api.get("/pricing/items", params={"institution_id": inst, **params} if params else {}), 422,
              "request.invalid")
    error(api.get("/pricing/items", params={"institution_id": "0190a5f0-0000-7000-8000-000000000000"}), 404,
          "pricing.institution_not_found")


def test_insurance_settings(api: Api) -> None:
    inst = institution(utc_now())
    r = api.get("/pricing/settings", params={"institution_id": inst})
    assert r.json() == {"institution_id": inst, "class_b_self_pay_bp": 1000, "default": True,
                        "self_pay_bp": {"a": 0, "b": 1000, "c": 10_000}}
    r = api.request("PUT", "/pricing/settings", {"institution_id": inst, "class_b_self_pay_bp": 2500})
    assert r.status_code == 200, r.text
    assert r.json()["self_pay_bp"]["b"] == 2500
    for bad in (-1, 10_001, "ten"):
        error(api.request("PUT", "/pricing/settings", {"institution_id": inst, "class_b_self_pay_bp": bad}), 422,
              "request.invalid")
    assert api.get("/pricing/settings", params={"institution_id": inst}).json()["class_b_self_pay_bp"] == 2500


def test_who_may_call_what(api: Api) -> None:
    inst = institution(utc_now())
    assert upload(api, inst, csv_bytes(ITEMS)).status_code == 200
    me = patient_token(api)
    desk = staff_token(api, "pricing.desk", "frontdesk")
    moderator = staff_token(api, "pricing.mod", "moderator")
    hospital = api.make_key("integration", "his")
    estimate = {"institution_id": inst, "items": [{"code": "CT01", "qty": 1}]}
    for key in (me, desk, hospital):
        assert api.get("/pricing/items", params={"institution_id": inst}, key=key).status_code == 200
        assert api.get("/pricing/packages", params={"institution_id": inst}, key=key).status_code == 200
        assert api.post("/pricing/estimate", estimate, key=key).status_code == 200
        error(upload(api, inst, csv_bytes(ITEMS), key=key), 403, "auth.forbidden")
        error(upload(api, inst, csv_bytes(ITEMS), key=key, dry_run=True), 403, "auth.forbidden")
        error(api.request("PUT", "/pricing/settings", {"institution_id": inst, "class_b_self_pay_bp": 0}, key=key),
              403, "auth.forbidden")
    error(api.post("/pricing/estimate", estimate, key=moderator), 403, "auth.forbidden")
    error(api.post("/pricing/estimate", estimate, auth=False), 401, "auth.unauthenticated")
    error(api.get("/pricing/items", params={"institution_id": inst}, auth=False), 401, "auth.unauthenticated")
    error(upload(api, inst, csv_bytes(ITEMS), key="cpk_nope"), 401, "auth.unauthenticated")
    assert items(api, inst)["items"][0]["price"] == "200.00"  # nothing changed by the refused calls (ROOM first)
    assert api.get("/pricing/settings", params={"institution_id": inst}).json()["default"] is True
