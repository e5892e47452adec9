"""Reading a catalogue file, pure: CSV (UTF-8 with or without BOM; GB18030 when the bytes are not
UTF-8 and decode cleanly as GB18030) or an Excel workbook (.xlsx, told by its content, not its
name). A table is an item list when its header has no package column, a package list when it
has `package_code` (套餐编码); a workbook may hold one of each on its sheets.

Item columns (English or Chinese headers): code 编码, name_zh 名称, name_en 英文名称,
category 类别 (检查 检验 药品 治疗 手术 床位 挂号 其他, or exam lab drug treatment surgery bed
registration other), unit 单位, price 单价 (yuan, at most two decimals), insurance_class 医保类别
(甲 乙 丙 or a b c), self_pay_share 自付比例 (乙 only: a percentage, "15" or "15%"), equivalent_group
同类组, active 启用 (default yes), valid_from 生效日期 and valid_to 失效日期 (YYYY-MM-DD), note 备注
(ignored). Package columns: package_code 套餐编码, package_name_zh 套餐名称, package_name_en
套餐英文名称, item_code 项目编码, qty 数量 (1–999), package_active 套餐启用; one row per item.

Rows are numbered as a spreadsheet shows them (the header is row 1). Every problem is a
`RowError` (row, column as written in the header, the row's code, a bilingual message); a row
with an error takes no part in the import, and neither does a package with any bad row."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from carepoints.services.pricing.errors import UnreadableFileError
from carepoints.services.pricing.schemas import CATEGORY_NAMES, CODE_PATTERN, MAX_QTY, Category

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
MAX_COLUMNS = 40
MAX_PRICE_FEN = 100_000_000  # ¥1,000,000.00 a unit
_CODE = re.compile(CODE_PATTERN)

ITEM_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("code", "编码", "项目编码"), "name_zh": ("name_zh", "名称", "项目名称", "中文名称"),
    "name_en": ("name_en", "英文名称"), "category": ("category", "类别", "分类"), "unit": ("unit", "单位"),
    "price": ("price", "单价", "价格"), "insurance_class": ("insurance_class", "医保类别"),
    "self_pay_share": ("self_pay_share", "自付比例"), "equivalent_group": ("equivalent_group", "同类组"),
    "active": ("active", "启用"), "valid_from": ("valid_from", "生效日期"),
    "valid_to": ("valid_to", "失效日期"), "note": ("note", "备注"),
}
ITEM_REQUIRED = ("code", "name_zh", "category", "unit", "price", "insurance_class")
PACKAGE_COLUMNS: dict[str, tuple[str, ...]] = {
    "package_code": ("package_code", "套餐编码"), "package_name_zh": ("package_name_zh", "套餐名称"),
    "package_name_en": ("package_name_en", "套餐英文名称"), "item_code": ("item_code", "项目编码"),
    "qty": ("qty", "数量"), "package_active": ("package_active", "套餐启用"), "note": ("note", "备注"),
}
PACKAGE_REQUIRED = ("package_code", "package_name_zh", "item_code", "qty")
_CATEGORIES = {**{c.value: c.value for c in Category}, **{zh: key for key, (zh, _en) in CATEGORY_NAMES.items()}}
_CLASSES = {"a": "a", "b": "b", "c": "c", "甲": "a", "乙": "b", "丙": "c", "甲类": "a", "乙类": "b", "丙类": "c"}
_YES = {"1", "true", "yes", "y", "是", "启用", "有效"}
_NO = {"0", "false", "no", "n", "否", "停用", "无效"}


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    column: str | None
    code: str | None
    message: str
    sheet: str | None = None

    def as_field(self) -> dict[str, Any]:
        """As an error's `fields` entry: loc names the sheet (Excel), the row and the column."""
        loc: list[Any] = [*([self.sheet] if self.sheet else []), self.row, *([self.column] if self.column else [])]
        return {"loc": loc, "msg": self.message, "row": self.row, "column": self.column, "code": self.code,
                **({"sheet": self.sheet} if self.sheet else {})}


@dataclass(frozen=True, slots=True)
class ItemRow:
    row: int
    code: str
    name_zh: str
    name_en: str | None
    category: str
    unit: str
    price_fen: int
    insurance_class: str
    self_pay_bp: int | None
    equivalent_group: str | None
    active: bool
    valid_from: date | None
    valid_to: date | None

    def values(self) -> dict[str, Any]:
        """The stored fields (the columns of price_items beside id, institution and times)."""
        return {"name_zh": self.name_zh, "name_en": self.name_en, "category": self.category, "unit": self.unit,
                "price_fen": self.price_fen, "insurance_class": self.insurance_class,
                "self_pay_bp": self.self_pay_bp, "equivalent_group": self.equivalent_group,
                "active": self.active, "valid_from": self.valid_from, "valid_to": self.valid_to}


@dataclass(frozen=True, slots=True)
class PackageRow:
    row: int  # its first row
    code: str
    name_zh: str
    name_en: str | None
    active: bool
    items: tuple[tuple[str, int, int], ...]  # (item code, qty, row)
    sheet: str | None = None
    item_column: str = "item_code"  # as written in the header


@dataclass
class Parsed:
    kind: str  # csv | xlsx
    encoding: str | None
    items: list[ItemRow] | None = None  # None: the file has no item list
    packages: list[PackageRow] | None = None  # None: the file has no package list
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0  # data rows read (blank ones left out)
    bad_items: set[str] = field(default_factory=set)  # codes of item rows with an error
    bad_packages: set[str] = field(default_factory=set)  # codes of packages with a bad row


class _CellError(ValueError):
    """One cell's problem (its message, Chinese / English)."""


# --- decoding ------------------------------------------------------------------------------

def _text(content: bytes) -> tuple[str, str]:
    """The CSV's text and its encoding: UTF-8 (a BOM is dropped), else GB18030 when that decodes
    cleanly and reads as text (no control characters); anything else is unreadable."""
    if content.startswith(b"\xef\xbb\xbf"):
        try:
            return content[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            raise UnreadableFileError() from None
    try:
        return content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = content.decode("gb18030")
    except UnicodeDecodeError:
        raise UnreadableFileError() from None
    if any(ord(ch) < 32 and ch not in "\r\n\t" for ch in text) or "\ufffd" in text:
        raise UnreadableFileError()
    return text, "gb18030"


def _csv_rows(text: str) -> Iterator[list[Any]]:
    if "\x00" in text:
        raise UnreadableFileError()
    try:
        yield from csv.reader(io.StringIO(text, newline=""))
    except csv.Error:
        raise UnreadableFileError() from None


def _xlsx_sheets(content: bytes) -> list[tuple[str, list[list[Any]]]]:
    from openpyxl import load_workbook  # only when a workbook arrives

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError):
        raise UnreadableFileError() from None
    try:
        out = []
        for sheet in book.worksheets:
            rows: list[list[Any]] = []
            for cells in sheet.iter_rows(max_col=MAX_COLUMNS):
                rows.append([_cell_value(c) for c in cells])
                if len(rows) > MAX_ROWS + 1:
                    break
            out.append((str(sheet.title), rows))
        return out
    finally:
        book.close()


def _cell_value(cell: Any) -> Any:
    """A workbook cell's value; a number shown as a percentage (0.15 as 15%) reads as "15%"."""
    value = getattr(cell, "value", None)
    if isinstance(value, int | float) and not isinstance(value, bool) \
            and "%" in str(getattr(cell, "number_format", "") or ""):
        return f"{Decimal(repr(value)) * 100}%"
    return value


def read(content: bytes) -> Parsed:
    """The file's item and package lists with every row error (UnreadableFileError when it is
    neither a readable CSV nor a workbook, or holds no list at all)."""
    if not content.strip():
        raise UnreadableFileError()
    if content.startswith(b"PK\x03\x04"):
        parsed = Parsed("xlsx", None)
        tables = _xlsx_sheets(content)
    else:
        text, encoding = _text(content)
        parsed = Parsed("csv", encoding)
        tables = [("", list(_limited(_csv_rows(text))))]
    found = False
    for sheet, rows in tables:
        found = _table(parsed, sheet or None, rows) or found
    if not found:
        raise UnreadableFileError()
    return parsed


def _limited(rows: Iterator[list[Any]]) -> Iterator[list[Any]]:
    for n, row in enumerate(rows):
        if n > MAX_ROWS + 1:
            return
        yield row[:MAX_COLUMNS]


# --- tables --------------------------------------------------------------------------------

def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _header_key(raw: Any) -> str:
    return str(raw or "").strip().lstrip("\ufeff").strip().lower().replace(" ", "_")


def _table(parsed: Parsed, sheet: str | None, rows: list[list[Any]]) -> bool:
    """Read one table into `parsed`; False when it is empty (a blank sheet)."""
    start = next((i for i, r in enumerate(rows) if not all(_blank(v) for v in r)), None)
    if start is None:
        return False
    header = [_header_key(v) for v in rows[start]]
    is_package = any(h in PACKAGE_COLUMNS["package_code"] for h in header)
    aliases = PACKAGE_COLUMNS if is_package else ITEM_COLUMNS
    required = PACKAGE_REQUIRED if is_package else ITEM_REQUIRED
    errors = parsed.errors
    hrow = start + 1
    by_alias = {alias: key for key, names in aliases.items() for alias in names}
    columns: dict[str, tuple[int, str]] = {}  # key → (index, header as written)
    for i, h in enumerate(header):
        if not h:
            continue
        key = by_alias.get(h)
        written = str(rows[start][i]).strip().lstrip("\ufeff")
        if key is None:
            errors.append(RowError(hrow, written, None, "未知的列 / Unknown column", sheet))
        elif key in columns:
            errors.append(RowError(hrow, written, None, "列重复 / Duplicate column", sheet))
        else:
            columns[key] = (i, written)
    missing = [k for k in required if k not in columns]
    for key in missing:
        errors.append(RowError(hrow, aliases[key][0], None, f"缺少必填列 {aliases[key][1]} / Missing column", sheet))
    body = [(n + 1, r) for n, r in enumerate(rows) if n > start and not all(_blank(v) for v in r)]
    if len(body) > MAX_ROWS:
        errors.append(RowError(MAX_ROWS + hrow + 1, None, None,
                               f"最多 {MAX_ROWS} 行 / At most {MAX_ROWS} rows per list", sheet))
        body = []
    if not body and not missing:
        errors.append(RowError(hrow + 1, None, None, "没有数据行 / The list has no rows", sheet))
    parsed.rows += len(body)
    if missing:  # every row would fail the same way
        body = []
    reader = _Rows(columns, sheet, errors)
    if is_package:
        if parsed.packages is not None:
            errors.append(RowError(hrow, None, None, "只能有一个套餐表 / Only one package list per file", sheet))
            return True
        parsed.packages = _packages(reader, body, parsed.bad_packages)
    else:
        if parsed.items is not None:
            errors.append(RowError(hrow, None, None, "只能有一个项目表 / Only one item list per file", sheet))
            return True
        parsed.items = _items(reader, body, parsed.bad_items)
    return True


class _Rows:
    """Cell access by column key, collecting each cell's error with its row, column and code."""

    def __init__(self, columns: dict[str, tuple[int, str]], sheet: str | None, errors: list[RowError]) -> None:
        self.columns, self.sheet, self.errors = columns, sheet, errors

    def raw(self, row: list[Any], key: str) -> Any:
        found = self.columns.get(key)
        if found is None or found[0] >= len(row):
            return None
        value = row[found[0]]
        return value.strip() if isinstance(value, str) else value

    def cell(self, n: int, row: list[Any], key: str, parse: Callable[[Any], Any], code: str | None,
             bad: list[bool]) -> Any:
        try:
            return parse(self.raw(row, key))
        except _CellError as err:
            self.errors.append(RowError(n, self.columns.get(key, (0, key))[1], code, str(err), self.sheet))
            bad[0] = True
            return None


def _items(reader: _Rows, body: list[tuple[int, list[Any]]], bad_codes: set[str]) -> list[ItemRow]:
    out: list[ItemRow] = []
    first: dict[str, int] = {}
    for n, row in body:
        bad = [False]
        code = reader.cell(n, row, "code", _code, _loose(reader.raw(row, "code")), bad)
        label = code if code is not None else _loose(reader.raw(row, "code"))
        values = {name: reader.cell(n, row, column, parse, label, bad)
                  for name, (column, parse) in _ITEM_CELLS.items()}
        share = reader.cell(n, row, "self_pay_share", partial(_share, insurance_class=values["insurance_class"]),
                            label, bad)
        if values["valid_from"] and values["valid_to"] and values["valid_to"] < values["valid_from"]:
            reader.errors.append(RowError(n, reader.columns["valid_to"][1], label,
                                          "失效日期早于生效日期 / valid_to is before valid_from", reader.sheet))
            bad[0] = True
        if code is not None and code in first:
            reader.errors.append(RowError(n, reader.columns["code"][1], code,
                                          f"编码重复(首次在第 {first[code]} 行) / Duplicate code (first on row "
                                          f"{first[code]})", reader.sheet))
            bad[0] = True
        elif code is not None:
            first[code] = n
        if not bad[0]:
            out.append(ItemRow(n, code, self_pay_bp=share, **values))
        elif label is not None:
            bad_codes.add(label)
    return out


def _packages(reader: _Rows, body: list[tuple[int, list[Any]]], bad_codes: set[str]) -> list[PackageRow]:
    grouped: dict[str, dict[str, Any]] = {}
    for n, row in body:
        bad = [False]
        code = reader.cell(n, row, "package_code", _code, _loose(reader.raw(row, "package_code")), bad)
        label = code if code is not None else _loose(reader.raw(row, "package_code"))
        name = reader.cell(n, row, "package_name_zh", _optional(200), label, bad)
        name_en = reader.cell(n, row, "package_name_en", _optional(200), label, bad)
        active = reader.cell(n, row, "package_active", _optional_flag, label, bad)
        item = reader.cell(n, row, "item_code", _code, label, bad)
        qty = reader.cell(n, row, "qty", _qty, label, bad)
        if code is None:
            continue
        pkg = grouped.setdefault(code, {"row": n, "name_zh": None, "name_en": None, "active": None, "items": [],
                                        "bad": False})
        for key, value, column in (("name_zh", name, "package_name_zh"), ("name_en", name_en, "package_name_en"),
                                   ("active", active, "package_active")):
            if value is None:
                continue
            if pkg[key] is None:
                pkg[key] = value
            elif pkg[key] != value:
                reader.errors.append(RowError(n, reader.columns[column][1], code,
                                              "同一套餐的各行不一致 / Differs from the package's earlier rows",
                                              reader.sheet))
                bad[0] = True
        if item is not None and any(i == item for i, _q, _r in pkg["items"]):
            reader.errors.append(RowError(n, reader.columns["item_code"][1], code,
                                          f"套餐中项目 {item} 重复 / Item {item} is listed twice", reader.sheet))
            bad[0] = True
        if bad[0]:
            pkg["bad"] = True
        else:
            pkg["items"].append((item, qty, n))
    out = []
    for code, pkg in grouped.items():
        if pkg["bad"] or pkg["name_zh"] is None:
            bad_codes.add(code)
        if pkg["name_zh"] is None:
            reader.errors.append(RowError(pkg["row"], reader.columns["package_name_zh"][1], code,
                                          "请填写套餐名称 / The package needs a name", reader.sheet))
            continue
        if not pkg["bad"]:
            out.append(PackageRow(pkg["row"], code, pkg["name_zh"], pkg["name_en"],
                                  True if pkg["active"] is None else pkg["active"], tuple(pkg["items"]),
                                  reader.sheet, reader.columns["item_code"][1]))
    return out


# --- cells ---------------------------------------------------------------------------------

def _loose(value: Any) -> str | None:
    """A cell shown in an error (a bad code, cut short)."""
    return None if _blank(value) else str(value)[:40]


def _str(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _code(value: Any) -> str:
    if _blank(value):
        raise _CellError("请填写编码 / A code is required")
    text = _str(value)
    if not _CODE.match(text):
        raise _CellError("编码只能含字母、数字和 . _ -,最长40位 / A code has letters, digits, . _ - only (at most 40)")
    return text


def _required(limit: int) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if _blank(value):
            raise _CellError("必填 / Required")
        text = _str(value)
        if len(text) > limit:
            raise _CellError(f"最多 {limit} 个字 / At most {limit} characters")
        return text
    return parse


def _optional(limit: int) -> Callable[[Any], str | None]:
    required = _required(limit)
    return lambda value: None if _blank(value) else required(value)


def _category(value: Any) -> str:
    found = _CATEGORIES.get(_str(value).lower()) if not _blank(value) else None
    if found is None:
        raise _CellError("类别须为 检查、检验、药品、治疗、手术、床位、挂号 或 其他 / Unknown category")
    return found


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise _CellError("请填写数字 / Enter a number")
    if isinstance(value, int | float):
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    text = _str(value).replace(",", "").replace("¥", "").replace("￥", "").removesuffix("元").strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _CellError("请填写数字 / Enter a number") from None
    if not number.is_finite():
        raise _CellError("请填写数字 / Enter a number")
    return number


def _price(value: Any) -> int:
    if _blank(value):
        raise _CellError("请填写单价 / A price is required")
    fen = _decimal(value) * 100
    if fen != fen.to_integral_value():
        raise _CellError("单价最多两位小数 / A price has at most two decimals")
    if not 0 <= fen <= MAX_PRICE_FEN:
        raise _CellError("单价须在 0 到 1000000 元之间 / A price is 0 to 1,000,000 yuan")
    return int(fen)


def _class(value: Any) -> str:
    found = _CLASSES.get(_str(value).lower()) if not _blank(value) else None
    if found is None:
        raise _CellError("医保类别须为 甲、乙 或 丙 / The insurance class is 甲, 乙 or 丙 (a, b, c)")
    return found


def _share(value: Any, insurance_class: str | None) -> int | None:
    """A percentage (0 or 1–100, at most two decimals) as basis points; 乙 items only (甲 may say
    0% and 丙 100%, their fixed shares)."""
    if _blank(value):
        return None
    bp = _decimal(_str(value).removesuffix("%") if isinstance(value, str) else value) * 100
    if bp != bp.to_integral_value() or not 0 <= bp <= 10_000:
        raise _CellError("自付比例为 0 到 100 的百分数,最多两位小数 / The self-pay share is a percentage from 0 to 100")
    if 0 < bp < 100:  # 0.15 is far more likely a fraction meant as 15% than 0.15%
        raise _CellError("自付比例请写百分数,如 15 或 15% / Write the share as a percentage, e.g. 15 or 15%")
    if insurance_class == "b":
        return int(bp)
    if (insurance_class, int(bp)) in (("a", 0), ("c", 10_000)) or insurance_class is None:
        return None
    raise _CellError("只有乙类项目可设自付比例(甲类 0%,丙类 100%) / Only 乙 items take a self-pay share")


def _flag(value: Any) -> bool:
    if _blank(value):
        return True
    if isinstance(value, bool):
        return value
    text = _str(value).lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise _CellError("请填写 是/否 或 1/0 / Enter yes / no or 1 / 0")


def _optional_flag(value: Any) -> bool | None:
    return None if _blank(value) else _flag(value)


def _day(value: Any) -> date | None:
    if _blank(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(_str(value).replace("/", "-"))
    except ValueError:
        raise _CellError("日期格式为 YYYY-MM-DD / A date is YYYY-MM-DD") from None


def _qty(value: Any) -> int:
    if _blank(value):
        raise _CellError("请填写数量 / A quantity is required")
    number = _decimal(value)
    if number != number.to_integral_value() or not 1 <= number <= MAX_QTY:
        raise _CellError(f"数量为 1 到 {MAX_QTY} 的整数 / A quantity is a whole number from 1 to {MAX_QTY}")
    return int(number)


# ItemRow field → (column, parser)
_ITEM_CELLS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "name_zh": ("name_zh", _required(200)), "name_en": ("name_en", _optional(200)),
    "category": ("category", _category), "unit": ("unit", _required(20)), "price_fen": ("price", _price),
    "insurance_class": ("insurance_class", _class), "equivalent_group": ("equivalent_group", _optional(40)),
    "active": ("active", _flag), "valid_from": ("valid_from", _day), "valid_to": ("valid_to", _day),
}
