"""What the pricing tests share: an institution, catalogue files written as a hospital would
(CSV with or without BOM, GB18030, Excel), and imports through the real service."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from openpyxl import Workbook

from carepoints.audit.service import Actor
from carepoints.kit.db import read_tx, write_tx
from carepoints.scheduling import service as scheduling
from carepoints.scheduling.schemas import InstitutionCreate
from carepoints.services.pricing import service

ACTOR = Actor("staff", "0190a5f0-0000-7000-8000-00000000a0a0", "admin")
HEADER = ["code", "name_zh", "name_en", "category", "unit", "price", "insurance_class", "self_pay_share",
          "equivalent_group", "active"]
# a small catalogue whose estimates are easy to compute by hand
ITEMS = [
    ["CT01", "胸部CT平扫", "Chest CT", "检查", "次", "280.00", "乙", "", "", ""],
    ["XR01", "胸部DR正位", "Chest X-ray", "检查", "次", "60.00", "甲", "", "", ""],
    ["LAB1", "血常规", "Blood count", "检验", "次", "20.00", "甲", "", "", ""],
    ["D-BRAND", "氨氯地平片(原研)", "Amlodipine (brand)", "药品", "盒", "98.50", "乙", "", "amlo5", ""],
    ["D-GEN", "氨氯地平片(集采)", "Amlodipine (generic)", "药品", "盒", "3.36", "乙", "", "amlo5", ""],
    ["D-GEN2", "氨氯地平片(国产)", "Amlodipine (local)", "药品", "盒", "12.00", "甲", "", "amlo5", ""],
    ["TINY", "棉签", "Cotton swab", "other", "支", "0.05", "乙", "", "", ""],
    ["SURG", "白内障手术", "Cataract surgery", "手术", "单眼", "2800.00", "乙", "20", "", ""],
    ["ROOM", "单人间", "Single room", "床位", "日", "200.00", "丙", "", "", ""],
]
PACKAGE_HEADER = ["package_code", "package_name_zh", "package_name_en", "item_code", "qty"]
PACKAGES = [["PKG1", "白内障套餐", "Cataract package", "SURG", "1"], ["PKG1", "", "", "ROOM", "3"],
            ["PKG1", "", "", "LAB1", "2"]]


def institution(now: datetime, code: str = "h1", name: str = "第一医院") -> str:
    with write_tx() as session:
        return str(scheduling.create_institution(session, InstitutionCreate(code=code, name_zh=name,
                                                                            name_en=f"Hospital {code}"), now)["id"])


def csv_bytes(rows: list[list[Any]], header: list[str] | None = None, *, bom: bool = False,
              encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header or HEADER)
    writer.writerows(rows)
    data = buf.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


def xlsx_bytes(sheets: dict[str, list[list[Any]]]) -> bytes:
    """A workbook with one sheet per entry (each list's first row is its header)."""
    book = Workbook()
    first = True
    for title, rows in sheets.items():
        sheet = book.active if first else book.create_sheet()
        assert sheet is not None
        sheet.title = title
        first = False
        for row in rows:
            sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def load(inst: str, now: datetime, content: bytes | None = None, *, dry_run: bool = False) -> dict[str, Any]:
    """Import `content` (default: ITEMS) through the service in its own transaction."""
    data = content if content is not None else csv_bytes(ITEMS)
    if dry_run:
        with read_tx() as session:
            return service.import_catalogue(session, inst, data, ACTOR, now, dry_run=True)
    with write_tx() as session:
        return service.import_catalogue(session, inst, data, ACTOR, now, dry_run=False)


def load_all(inst: str, now: datetime) -> None:
    load(inst, now)
    load(inst, now, csv_bytes(PACKAGES, PACKAGE_HEADER))
