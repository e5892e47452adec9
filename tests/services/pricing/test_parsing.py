"""Reading catalogue files without a database: CSV in UTF-8 with and without BOM and in GB18030,
Chinese or English headers, Excel workbooks (typed cells, percentages, dates, an item and a package
sheet), and every row error with its row, column and code."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook

from carepoints.services.pricing import parsing
from carepoints.services.pricing.errors import UnreadableFileError
from tests.services.pricing.kit import HEADER, ITEMS, PACKAGE_HEADER, PACKAGES, csv_bytes, xlsx_bytes

SAMPLES = Path(parsing.__file__).parent


def _errors(parsed: parsing.Parsed) -> list[tuple[int, str | None, str | None]]:
    return [(e.row, e.column, e.code) for e in parsed.errors]


@pytest.mark.parametrize(("bom", "encoding", "seen"), [(False, "utf-8", "utf-8"), (True, "utf-8", "utf-8-sig"),
                                                        (False, "gb18030", "gb18030")])
def test_csv_encodings(bom: bool, encoding: str, seen: str) -> None:
    parsed = parsing.read(csv_bytes(ITEMS, bom=bom, encoding=encoding))
    assert (parsed.kind, parsed.encoding, parsed.errors, parsed.rows) == ("csv", seen, [], len(ITEMS))
    assert parsed.items is not None
    assert parsed.packages is None
    by_code = {r.code: r for r in parsed.items}
    assert by_code["CT01"].name_zh == "胸部CT平扫"  # the Chinese survived the encoding
    ct = by_code["CT01"]
    assert (ct.category, ct.price_fen, ct.insurance_class) == ("exam", 28000, "b")
    assert (by_code["SURG"].self_pay_bp, by_code["CT01"].self_pay_bp) == (2000, None)
    assert (by_code["TINY"].category, by_code["TINY"].price_fen) == ("other", 5)
    assert by_code["D-GEN"].equivalent_group == "amlo5"


def test_chinese_headers_and_loose_cells() -> None:
    header = ["编码", "名称", "类别", "单位", "单价", "医保类别", "自付比例", "启用", "生效日期", "失效日期", "备注"]
    rows = [["A1", "血常规", "检验", "次", "¥1,200.5", "乙类", "15%", "是", "2026/01/01", "2026-12-31", "随便写"],
            ["A2", "尿常规", "lab", "次", "10", "A", "", "否", "", "", ""]]
    parsed = parsing.read(csv_bytes(rows, header))
    assert parsed.errors == []
    assert parsed.items is not None
    a1, a2 = parsed.items
    assert (a1.price_fen, a1.insurance_class, a1.self_pay_bp, a1.active) == (120050, "b", 1500, True)
    assert (a1.valid_from, a1.valid_to) == (date(2026, 1, 1), date(2026, 12, 31))
    assert (a2.insurance_class, a2.active, a2.self_pay_bp) == ("a", False, None)


def test_every_bad_cell_is_named() -> None:
    rows = [
        ["OK1", "好的", "", "检查", "次", "10", "甲", "", "", ""],  # row 2: fine
        ["BAD PRICE", "x", "", "检查", "次", "1.005", "乙", "", "", ""],  # 3: code and price
        ["B2", "", "", "飞行", "次", "-1", "丁", "", "", ""],  # 4: name, category, price, class
        ["B3", "y", "", "检查", "", "abc", "甲", "15", "", "maybe"],  # 5: unit, price, share on 甲, active
        ["OK1", "重复", "", "检查", "次", "10", "甲", "", "", ""],  # 6: duplicate code
        ["B4", "z", "", "检查", "次", "10", "乙", "120", "", ""],  # 7: share over 100%
        ["", "", "", "", "", "", "", "", "", ""],  # blank: skipped
    ]
    parsed = parsing.read(csv_bytes(rows))
    assert _errors(parsed) == [
        (3, "code", "BAD PRICE"), (3, "price", "BAD PRICE"),
        (4, "name_zh", "B2"), (4, "category", "B2"), (4, "price", "B2"), (4, "insurance_class", "B2"),
        (5, "unit", "B3"), (5, "price", "B3"), (5, "active", "B3"), (5, "self_pay_share", "B3"),
        (6, "code", "OK1"), (7, "self_pay_share", "B4")]
    assert all(" / " in e.message for e in parsed.errors)  # Chinese first, then English
    assert [r.code for r in parsed.items or []] == ["OK1"]  # only the clean row takes part
    assert parsed.rows == 6
    assert parsed.bad_items >= {"B2", "B3", "B4"}


def test_header_problems() -> None:
    parsed = parsing.read(csv_bytes([["A1", "x", "次", "1"]], ["code", "name_zh", "unit", "price", "colour"]))
    assert {(e.row, e.column) for e in parsed.errors} == {(1, "colour"), (1, "category"), (1, "insurance_class")}
    assert parsed.items == []  # with a required column missing no row is read
    empty = parsing.read(csv_bytes([]))
    assert [(e.row, e.message.split(" / ")[1]) for e in empty.errors] == [(2, "The list has no rows")]


@pytest.mark.parametrize("content", [b"", b"   \n", b"\x00\x01\x02\xff\xfe\xfa" * 50, b"PK\x03\x04 not a zip",
                                     "code\r\n".encode("utf-16")])
def test_unreadable_files(content: bytes) -> None:
    with pytest.raises(UnreadableFileError) as err:
        parsing.read(content)
    assert err.value.status_code == 422
    assert err.value.code == "pricing.unreadable_file"


def test_a_workbook_with_items_and_packages() -> None:
    content = xlsx_bytes({"项目": [HEADER, [250101001, "血常规", None, "检验", "次", 20, "甲", None, None, True],
                                   ["D1", "药", "Drug", "药品", "盒", 12.5, "乙", 15, "g1", 1],
                                   ["D2", "药2", None, "药品", "盒", 12.345, "乙", None, None, None],
                                   ["D3", "药3", None, "药品", "盒", 3, "乙", 0.15, None, None]],
                          "套餐": [PACKAGE_HEADER, ["P1", "套餐一", None, "D1", 2], ["P1", None, None, 250101001, 1.0]],
                          "空白": []})
    parsed = parsing.read(content)
    assert parsed.kind == "xlsx"
    # three decimals is no price in fen; 0.15 is a fraction, not the percentage the column wants
    assert _errors(parsed) == [(4, "price", "D2"), (5, "self_pay_share", "D3")]
    assert [e.sheet for e in parsed.errors] == ["项目", "项目"]
    assert [e.as_field()["loc"] for e in parsed.errors] == [["项目", 4, "price"], ["项目", 5, "self_pay_share"]]
    assert parsed.items is not None
    lab, drug = parsed.items
    assert (lab.code, lab.price_fen, lab.active) == ("250101001", 2000, True)  # a numeric code reads as text
    assert (drug.price_fen, drug.self_pay_bp, drug.equivalent_group) == (1250, 1500, "g1")
    assert parsed.packages is not None
    [pkg] = parsed.packages
    assert (pkg.code, pkg.name_zh) == ("P1", "套餐一")
    assert [(c, q) for c, q, _n in pkg.items] == [("D1", 2), ("250101001", 1)]


def test_a_workbook_percentage_and_date_cells() -> None:
    """A share typed as 15% in Excel is the number 0.15 shown as a percentage; a date cell is a date."""
    raw = xlsx_bytes({"items": [[*HEADER, "valid_from"],
                                ["D1", "药", None, "药品", "盒", 12.5, "乙", 0.15, None, None, date(2026, 3, 1)]]})
    book = load_workbook(io.BytesIO(raw))
    book.active["H2"].number_format = "0%"  # type: ignore[index]
    buf = io.BytesIO()
    book.save(buf)
    parsed = parsing.read(buf.getvalue())
    assert parsed.errors == []
    [drug] = parsed.items or []
    assert (drug.self_pay_bp, drug.valid_from) == (1500, date(2026, 3, 1))


def test_package_rows() -> None:
    rows = [*PACKAGES, ["PKG1", "别的名字", "", "CT01", "1"], ["PKG2", "", "", "LAB1", "0"],
            ["PKG3", "三", "", "LAB1", "1"], ["PKG3", "", "", "LAB1", "2"]]
    parsed = parsing.read(csv_bytes(rows, PACKAGE_HEADER))
    assert _errors(parsed) == [(5, "package_name_zh", "PKG1"), (6, "qty", "PKG2"), (8, "item_code", "PKG3"),
                               (6, "package_name_zh", "PKG2")]
    assert parsed.packages == []  # a package with any bad row is left out whole
    assert parsed.bad_packages == {"PKG1", "PKG2", "PKG3"}
    good = parsing.read(csv_bytes(PACKAGES, PACKAGE_HEADER))
    assert good.errors == []
    [pkg] = good.packages or []
    assert [(c, q, n) for c, q, n in pkg.items] == [("SURG", 1, 2), ("ROOM", 3, 3), ("LAB1", 2, 4)]


def test_the_shipped_sample_catalogue() -> None:
    """~40 realistic items; equivalent groups only join truly interchangeable drugs (same
    ingredient, strength and pack), each group holding a cheaper choice."""
    items = parsing.read((SAMPLES / "sample_catalogue.csv").read_bytes())
    assert items.errors == []
    assert items.items is not None
    assert len(items.items) >= 40
    assert {r.category for r in items.items} == {"exam", "lab", "drug", "treatment", "surgery", "bed", "registration",
                                                 "other"}
    assert {r.insurance_class for r in items.items} == {"a", "b", "c"}
    groups: dict[str, list[parsing.ItemRow]] = {}
    for r in items.items:
        if r.equivalent_group:
            groups.setdefault(r.equivalent_group, []).append(r)
    assert len(groups) >= 4
    for members in groups.values():
        assert len(members) >= 2
        assert {m.category for m in members} == {"drug"}
        assert len({m.unit for m in members}) == 1
        assert len({m.price_fen for m in members}) > 1
    packages = parsing.read((SAMPLES / "sample_packages.csv").read_bytes())
    assert packages.errors == []
    codes = {r.code for r in items.items}
    assert all(c in codes for p in packages.packages or [] for c, _q, _n in p.items)
