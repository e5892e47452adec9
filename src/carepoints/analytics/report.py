"""The one table shape every analytics view answers. JSON, CSV, Excel and the dashboard
pages all render a `Report`, so an export holds exactly the numbers on screen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from carepoints.analytics.periods import Period

# int: a count or points; pct: a share 0..1 (rendered as a percentage); cny: yuan with two
# decimals; num: a decimal; text / date: as is
Kind = Literal["int", "pct", "cny", "num", "text", "date"]


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    zh: str
    en: str
    kind: Kind = "int"


@dataclass(slots=True)
class Report:
    """A view's answer: a title, typed columns and rows (dicts keyed by column key), the period
    (and the previous one where the view compares) and any extra JSON the view adds (charts)."""

    name: str
    title_zh: str
    title_en: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    period: Period | None = None
    previous: Period | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "view": self.name, "title": {"zh": self.title_zh, "en": self.title_en},
            "columns": [{"key": c.key, "zh": c.zh, "en": c.en, "kind": c.kind} for c in self.columns],
            "rows": self.rows,
        }
        if self.period:
            body["period"] = self.period.as_dict()
        if self.previous:
            body["previous_period"] = self.previous.as_dict()
        return {**body, **self.extra}
