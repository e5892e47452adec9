"""Complaints in the visits KPIs (`GET /api/v1/analytics/visits`): complaints count on the local day
they were filed at their department, by the visit's clinician when about a visit, and complaints per
1,000 visits = complaints × 1000 / attended visits of the slice — worked out by hand for yesterday
(rolled up by `rollup-analytics`) and today (live), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from carepoints.kit.db import write_tx
from carepoints.services.satisfaction import service
from carepoints.services.satisfaction.schemas import ComplaintIn
from tests.analytics import visits_kit as kit
from tests.analytics.visits_kit import STAFF, at
from tests.helpers import enrol

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]
KPIS = ("value_attended", "value_complaints", "value_complaints_per_1000", "previous_complaints")


def complain(pid: str, when: Any, *, appointment_id: str | None = None, department_id: str | None = None) -> None:
    with write_tx() as s:
        service.file_complaint(s, pid, ComplaintIn(appointment_id=appointment_id, department_id=department_id,
                                                   category="waiting", text="候诊时间太长了"), STAFF, when)


def visits(api: Api, by: str, day: Any, end: Any = None) -> dict[Any, dict[str, Any]]:
    r = api.get("/analytics/visits", params={"by": by, "start": day.isoformat(), "end": (end or day).isoformat()})
    assert r.status_code == 200, r.text
    return kit.rows_by_key(r.json())


def test_complaints_per_1000_visits_rolled_up_and_live(api: Api) -> None:
    today = kit.today()
    day = today - timedelta(days=1)
    h = kit.Hospital(at(day - timedelta(days=3), "09:00"))
    h.institution("h1")
    for dept, clin in (("A", "a1"), ("B", "b1"), ("C", "c1")):
        h.department(dept, "h1")
        h.clinician(clin, dept)
    h.clinician("a2", "A")
    p = [enrol(at(day - timedelta(days=2), "09:00")) for _ in range(6)]
    booked = at(day - timedelta(days=1), "20:00")
    # yesterday: A three visits (a1 two, a2 one), B two visits, C none
    s_a1, s_a2, s_b = (h.session(c, day, "08:00", "09:00") for c in ("a1", "a2", "b1"))
    a = [kit.book(p[0], s_a1, booked), kit.book(p[1], s_a1, booked), kit.book(p[2], s_a2, booked)]
    b = [kit.book(p[3], s_b, booked), kit.book(p[4], s_b, booked)]
    for appt in (*a, *b):
        kit.attend(appt)
    d = h.departments
    # complaints yesterday: about p0's a1 visit, about department A (no clinician), about a B visit, about C;
    # one filed the day before yesterday (the previous period)
    complain(p[0], at(day, "10:00"), appointment_id=a[0]["id"])
    complain(p[5], at(day, "11:00"), department_id=d["A"])
    complain(p[3], at(day, "23:59"), appointment_id=b[0]["id"])
    complain(p[5], at(day, "00:00"), department_id=d["C"])
    complain(p[5], at(day - timedelta(days=1), "23:59"), department_id=d["B"])
    kit.rollup()

    rows = visits(api, "department", day)
    # all: 4 complaints over 5 visits → 800.0; A 2 / 3 → 666.67; B 1 / 2 → 500.0; C 1 without a visit → none
    assert kit.pick(rows[None], *KPIS) == (5, 4, 800.0, 1)
    assert {k: kit.pick(r, *KPIS) for k, r in rows.items() if k is not None} == {
        d["A"]: (3, 2, 666.67, 0), d["B"]: (2, 1, 500.0, 1), d["C"]: (0, 1, None, 0)}
    by_clin = visits(api, "clinician", day)
    # a1: 1 complaint over 2 visits → 500.0; a2 none of 1; b1 1 of 2; the department-only ones in no clinician
    assert {k: kit.pick(r, "value_attended", "value_complaints", "value_complaints_per_1000")
            for k, r in by_clin.items() if k is not None} == {
        h.clinicians["a1"]: (2, 1, 500.0), h.clinicians["a2"]: (1, 0, 0.0), h.clinicians["b1"]: (2, 1, 500.0)}

    # today, live: one visit at B and a complaint about it
    t = kit.book(p[4], h.session("b1", today, "00:10", "00:30"), at(today, "00:01"))
    kit.attend(t)
    complain(p[4], at(today, "00:40"), appointment_id=t["id"])
    rows = visits(api, "department", today)
    assert kit.pick(rows[None], *KPIS) == (1, 1, 1000.0, 4)
    assert kit.pick(rows[d["B"]], *KPIS) == (1, 1, 1000.0, 1)
    both = visits(api, "department", day, today)
    assert kit.pick(both[None], "value_attended", "value_complaints", "value_complaints_per_1000") == (6, 5, 833.33)
    r = api.get("/analytics/visits", params={"start": day.isoformat(), "end": day.isoformat()})
    assert {"key": "value_complaints_per_1000", "zh": "每千人次投诉(本期)",
            "en": "Complaints per 1,000 visits (period)", "kind": "num"} in r.json()["columns"]
