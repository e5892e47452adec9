"""The in-clinic wait KPI of `GET /api/v1/analytics/visits` (平均候诊时长): a visit's wait is its
first queue call − the check-in time the call recorded, in whole minutes (floored, never
negative), summed over the called visits and divided by their number; worked out by hand below
for yesterday (rolled up by the `rollup-analytics` job) and today (live), by department. The
calls go through the queue service on a past clock, the visits through the scheduling verbs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from carepoints.kit.db import write_tx
from carepoints.scheduling import service as sch
from carepoints.scheduling.schemas import CheckInIn
from carepoints.services.queue import service as queue
from tests.analytics import visits_kit as kit
from tests.analytics.visits_kit import STAFF, at
from tests.helpers import enrol

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

KPIS = ("value_attended", "value_avg_wait_minutes", "previous_avg_wait_minutes")


def check_in(appt: dict[str, Any], when: datetime) -> None:
    with write_tx() as s:
        sch.check_in(s, appt["id"], CheckInIn(channel="desk"), when)


def attend(appt: dict[str, Any], when: datetime) -> None:
    with write_tx() as s:
        sch.attend(s, appt["id"], when, when)


def call_next(session_id: str, when: datetime) -> str:
    """The queue's call-next by the HIS key; the called appointment."""
    with write_tx() as s:
        return str(queue.call_next(s, session_id, STAFF, when)["appointment_id"])


def skip(session_id: str, when: datetime) -> None:
    with write_tx() as s:
        queue.skip(s, session_id, STAFF, when)


def visits(api: Api, **params: Any) -> dict[Any, dict[str, Any]]:
    r = api.get("/analytics/visits", params={"by": "department", **params})
    assert r.status_code == 200, r.text
    return kit.rows_by_key(r.json())


def test_in_clinic_wait_rolled_up_yesterday_and_live_today_by_department(api: Api) -> None:
    today = kit.today()
    day = today - timedelta(days=1)
    h = kit.Hospital(at(day - timedelta(days=3), "09:00"))
    h.institution("h1")
    for dept, clin in (("A", "a1"), ("B", "b1"), ("C", "c1")):
        h.department(dept, "h1")
        h.clinician(clin, dept)
    h.clinician("a2", "A")
    p = [enrol(at(day - timedelta(days=2), "09:00")) for _ in range(7)]
    booked = at(day - timedelta(days=1), "20:00")

    # yesterday at A (slots 08:00, 08:10, 08:20): p0 checks in 07:52:30 and is called 08:05:10 (12 min
    # 40 s → 12); p1 checks in 08:00, is called 08:20:59 (20 min 59 s → 20: the first call counts), skipped,
    # called again 08:40; p2 checks in 08:45 and is seen without a call (not counted). A: 32 / 2 = 16.0
    s_a = h.session("a1", day, "08:00", "09:00")
    a0, a1, a2 = (kit.book(pid, s_a, booked) for pid in p[:3])
    check_in(a0, at(day, "07:52:30"))
    check_in(a1, at(day, "08:00"))
    assert call_next(s_a, at(day, "08:05:10")) == a0["id"]
    assert call_next(s_a, at(day, "08:20:59")) == a1["id"]
    skip(s_a, at(day, "08:22"))
    assert call_next(s_a, at(day, "08:40")) == a1["id"]
    check_in(a2, at(day, "08:45"))
    for appt in (a0, a1, a2):
        attend(appt, at(day, "08:50"))
    # B: p3 checks in 08:03, called 08:03:30 (30 s → 0); p4 checks in 08:15 but the HIS's call is stamped
    # 08:14 (−1 min → never negative: 0). B: 0 / 2 = 0.0
    s_b = h.session("b1", day, "08:00", "09:00")
    b0, b1 = (kit.book(pid, s_b, booked) for pid in p[3:5])
    check_in(b0, at(day, "08:03"))
    assert call_next(s_b, at(day, "08:03:30")) == b0["id"]
    check_in(b1, at(day, "08:15"))
    assert call_next(s_b, at(day, "08:14")) == b1["id"]
    # C: p5 attends, never called: no wait to average
    kit.attend(kit.book(p[5], h.session("c1", day, "08:00", "09:00"), booked))
    kit.rollup()

    d = h.departments
    rows = visits(api, start=day.isoformat(), end=day.isoformat())
    # all: 32 minutes over 4 called visits; the day before had no visits
    assert kit.pick(rows[None], *KPIS) == (4, 8.0, None)
    assert {k: kit.pick(r, *KPIS) for k, r in rows.items() if k is not None} == {
        d["A"]: (3, 16.0, None), d["B"]: (0, 0.0, None), d["C"]: (1, None, None)}

    # today at A (a2, slots 00:30, 00:40), live: p6 checks in 00:25 and is called 00:33:20 (8 min 20 s → 8);
    # p0 checks in 00:36 and is called 00:46:59 (10 min 59 s → 10); both still checked in (counted as called)
    s_t = h.session("a2", today, "00:30", "00:50")
    t0, t1 = kit.book(p[6], s_t, at(today, "00:05")), kit.book(p[0], s_t, at(today, "00:06"))
    check_in(t0, at(today, "00:25"))
    check_in(t1, at(today, "00:36"))
    assert call_next(s_t, at(today, "00:33:20")) == t0["id"]
    assert call_next(s_t, at(today, "00:46:59")) == t1["id"]
    rows = visits(api, start=today.isoformat(), end=today.isoformat())
    assert kit.pick(rows[None], *KPIS) == (0, 9.0, 8.0)  # 18 / 2; yesterday (rolled up) beside it
    assert kit.pick(rows[d["A"]], *KPIS) == (0, 9.0, 16.0)
    assert kit.pick(rows[d["B"]], *KPIS) == (0, None, 0.0)
    # yesterday and today together: 50 minutes over 6 calls; A 50 / 4; B 0 / 2; C none
    rows = visits(api, start=day.isoformat(), end=today.isoformat())
    assert kit.pick(rows[None], "value_avg_wait_minutes") == (8.3,)
    assert {k: r["value_avg_wait_minutes"] for k, r in rows.items() if k is not None} == {
        d["A"]: 12.5, d["B"]: 0.0, d["C"]: None}
    # the KPI's column, zh first
    r = api.get("/analytics/visits", params={"start": day.isoformat(), "end": day.isoformat()})
    assert {"key": "value_avg_wait_minutes", "zh": "平均候诊时长(分钟)(本期)",
            "en": "Average in-clinic wait (min) (period)", "kind": "num"} in r.json()["columns"]
