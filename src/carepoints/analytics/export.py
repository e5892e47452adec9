"""A `Report` as CSV (UTF-8 with BOM, so Excel opens Chinese correctly) or as an Excel
workbook (openpyxl): the same columns and numbers as on screen, typed cells in Excel."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from carepoints.analytics.report import Column, Report

FORMATS = {"pct": "0.0%", "cny": "#,##0.00", "int": "#,##0", "num": "0.00"}


def _header(c: Column, lang: str) -> str:
    return c.zh if lang == "zh" else c.en


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def to_csv(report: Report, lang: str = "zh") -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([_header(c, lang) for c in report.columns])
    for row in report.rows:
        writer.writerow(["" if row.get(c.key) is None else row.get(c.key) for c in report.columns])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(report: Report, lang: str = "zh") -> bytes:
    wb = Workbook()
    ws = wb.create_sheet(report.name[:31], 0)
    wb.remove(wb.worksheets[1])
    title = report.title_zh if lang == "zh" else report.title_en
    if report.period:
        title += f" {report.period.start.isoformat()} ~ {report.period.end.isoformat()}"
    ws.append([title])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append([_header(c, lang) for c in report.columns])
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for row in report.rows:
        ws.append([_cell(row.get(c.key)) for c in report.columns])
    for i, c in enumerate(report.columns, start=1):
        fmt = FORMATS.get(c.kind)
        width = max(10, len(_header(c, lang)) * 2 + 2)
        ws.column_dimensions[ws.cell(row=2, column=i).column_letter].width = min(width, 40)
        if fmt:
            for r in range(3, ws.max_row + 1):
                ws.cell(row=r, column=i).number_format = fmt
    ws.freeze_panes = "A3"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
