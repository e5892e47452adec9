"""A small hospital for the dashboard page tests (HTTP and browser), built through the real
services on the real clock (the pages read `utc_now()`), whose figures are worked out by hand.

T = today (local). Patients A (born 1 January, 76 years before this year: 70-79 all year) and
B (36 years: 30-39) enrol 40 days ago (welcome +100 each: the previous 30-day period).
  T-3 12:00  A uses a kiosk: self_service +10
  T-2 12:00  B uses a kiosk twice: +10 +10 (the daily cap is 30)
  today      A uses a kiosk: +10 (live)
Closed days are rolled up (`rollup-analytics`) before the pages are read.

Last 30 days: issued 40 (A 20, B 20), active patients 2 (A, B); nothing penalised, redeemed or
expired. Previous period (T-59 .. T-30): issued 200, active 0 (enrolling is no behaviour)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html.parser import HTMLParser

from carepoints.analytics import rollup
from carepoints.config import get_settings
from carepoints.kit.time import day_start_utc, local_date, utc_now
from tests.helpers import enrol, event, ingest_one

ISSUED, PREVIOUS_ISSUED, ACTIVE = 40, 200, 2
BY_BAND = {"70-79": 20, "30-39": 20}


@dataclass(frozen=True)
class World:
    a: str
    b: str
    today: date
    by_day: dict[date, int]  # points issued per local day of the last 30 days (the others 0)


def _noon(day: date) -> datetime:
    return day_start_utc(day, get_settings().tz) + timedelta(hours=12)


def born(years: int) -> str:
    return date(local_date(utc_now(), get_settings().tz).year - years, 1, 1).isoformat()


def build() -> World:
    now = utc_now()
    today = local_date(now, get_settings().tz)
    a = enrol(now - timedelta(days=40), birth_date=born(76), phone="13911110001")
    b = enrol(now - timedelta(days=40), birth_date=born(36), phone="13911110002")
    ingest_one(now, event(a, "selfservice.used", _noon(today - timedelta(days=3)), {"action": "pay"}))
    for _ in range(2):
        ingest_one(now, event(b, "selfservice.used", _noon(today - timedelta(days=2)), {"action": "print_report"}))
    ingest_one(now, event(a, "selfservice.used", now - timedelta(seconds=1), {"action": "pay"}))
    rollup.rollup_analytics(now)
    return World(a, b, today, {today - timedelta(days=3): 10, today - timedelta(days=2): 20, today: 10})


class _Table(HTMLParser):
    """The rows of `table[data-report]`: per cell its column key → (text on screen, data-value)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, tuple[str, str]]] = []
        self.inside = False
        self.row: dict[str, tuple[str, str]] = {}
        self.cell: tuple[str, str] | None = None  # (column key, data-value) of the open cell
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and "data-report" in a:
            self.inside = True
        elif self.inside and tag in ("td", "th") and "data-value" in a:
            self.cell, self.text = (a.get("data-col") or "", a.get("data-value") or ""), ""

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if not self.inside:
            return
        if tag in ("td", "th") and self.cell is not None:
            self.row[self.cell[0]] = (" ".join(self.text.split()), self.cell[1])
            self.cell = None
        elif tag == "tr" and self.row:
            self.rows.append(self.row)
            self.row = {}
        elif tag == "table":
            self.inside = False


def report_table(html: str) -> list[dict[str, tuple[str, str]]]:
    """The on-screen report table of a page: one dict per row, column key → (text, raw value)."""
    parser = _Table()
    parser.feed(html)
    return parser.rows
