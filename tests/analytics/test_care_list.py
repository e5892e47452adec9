"""`GET /api/v1/analytics/care_list`: the nurses' list of care alerts, live, raised through the
real paths (abnormal readings at ingest, the inactivity and overdue-follow-up jobs), acknowledged
and resolved through the care service; its filters, pages and permission (`care:read`).

The alerts, newest first: L2 inactivity (raised now by the job; 40, no condition), L5 abnormal
reading a day ago (50, belongs to h2 only), L3 overdue follow-up two days ago (30, diabetes), L1
abnormal reading three days ago (70, hypertension, booked at department A of h1), L4 abnormal
reading four days ago, acknowledged (50); L4's older one, five days ago, is resolved."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from carepoints.engagement.care import service as care
from carepoints.engagement.care.models import CareAlert
from carepoints.engagement.care.schemas import AlertResolution
from carepoints.engagement.followups import tasks as followup_tasks
from carepoints.engagement.health import tasks as health_tasks
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.ids import new_id
from carepoints.kit.time import utc_now
from carepoints.security import service as security
from tests.analytics import visits_kit as kit
from tests.helpers import bp, enrol, error, event, ingest_one, staff_token

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def alerts_of(pid: str) -> list[str]:
    t = table(CareAlert)
    with read_tx() as s:
        return list(s.connection().execute(select(t.c.id).where(t.c.patient_id == pid).order_by(t.c.created_at))
                    .scalars())


def abnormal(pid: str, when: datetime) -> None:
    ingest_one(when, event(pid, "health.measurement", when, bp("device", 190, 120)))


def world(now: datetime) -> tuple[kit.Hospital, dict[str, str]]:
    h = kit.Hospital(now - timedelta(days=40))
    h.institution("h1")
    h.institution("h2")
    h.department("A", "h1")
    h.department("C", "h2")
    h.clinician("a1", "A")
    h.clinician("c1", "C")
    enrolled = now - timedelta(days=30)
    p = {name: enrol(enrolled, birth_date=kit.born(age)) for name, age in
         (("L1", 70), ("L2", 40), ("L3", 30), ("L4", 50), ("L5", 50))}
    kit.condition(p["L1"], "hypertension", enrolled)
    kit.condition(p["L3"], "diabetes", enrolled)
    tomorrow = kit.today() + timedelta(days=1)
    kit.book(p["L1"], h.session("a1", tomorrow, "08:00", "09:00"), now - timedelta(days=3))
    kit.book(p["L5"], h.session("c1", tomorrow, "08:00", "09:00"), now - timedelta(days=3))
    for k in range(11, 21):  # ten days of readings, the last 11 days ago: inactive since
        when = now - timedelta(days=k)
        ingest_one(when, event(p["L2"], "health.measurement", when, bp("device")))
    abnormal(p["L4"], now - timedelta(days=5))
    abnormal(p["L4"], now - timedelta(days=4))
    abnormal(p["L1"], now - timedelta(days=3))
    steps = kit.plan(p["L3"], kit.today() - timedelta(days=20), [3], now - timedelta(days=20))["steps"]
    assert steps
    assert followup_tasks.flag_overdue_followups(now - timedelta(days=2))
    abnormal(p["L5"], now - timedelta(days=1))
    assert health_tasks.flag_inactivity(now)["inactive"] == 1
    old, recent = alerts_of(p["L4"])
    with write_tx() as s:
        care.resolve(s, old, AlertResolution.contacted, kit.STAFF, now - timedelta(days=4))
        care.acknowledge(s, recent, kit.STAFF, now - timedelta(days=3))
    return h, p


def care_list(api: Api, key: str | None = None, **params: Any) -> dict[str, Any]:
    r = api.get("/analytics/care_list", params=params, key=key)
    assert r.status_code == 200, r.text
    return dict(r.json())


def patients(doc: dict[str, Any], names: dict[str, str]) -> list[str]:
    back = {pid: name for name, pid in names.items()}
    return [back[r["patient_id"]] for r in doc["rows"]]


def test_open_alerts_newest_first_with_ids_and_codes_only(api: Api) -> None:
    h, p = world(utc_now())
    doc = care_list(api)
    assert patients(doc, p) == ["L2", "L5", "L3", "L1", "L4"]
    assert (doc["total"], doc["next_cursor"], doc["limit"], doc["offset"]) == (5, None, 50, 0)
    assert "period" not in doc
    rows = {r["patient_id"]: r for r in doc["rows"]}
    assert kit.pick(rows[p["L2"]], "kind", "kind_name", "severity", "status", "age_band", "conditions",
                    "department_id", "last_reading_day") == (
        "inactivity", "长期未打卡 / Inactive", "normal", "open", "40-49", "", None,
        (kit.today() - timedelta(days=11)).isoformat())
    assert kit.pick(rows[p["L1"]], "kind", "severity", "age_band", "conditions", "department_id") == (
        "abnormal_reading", "high", "70-79", "hypertension", h.departments["A"])
    assert kit.pick(rows[p["L3"]], "kind", "conditions", "age_band") == ("overdue_followup", "diabetes", "30-39")
    assert rows[p["L4"]]["status"] == "acknowledged"
    assert [c["key"] for c in doc["columns"]] == ["alert_id", "patient_id", "kind_name", "severity", "status", "since",
                                                  "age_band", "conditions", "department_id", "last_reading_day",
                                                  "assigned_to"]
    assert datetime.fromisoformat(rows[p["L2"]]["since"]) > datetime.fromisoformat(rows[p["L5"]]["since"])
    r = api.get("/analytics/care_list")
    assert "测试患者" not in r.text  # the enrolled name
    assert "1390000" not in r.text  # nor any phone
    assert "190" not in r.text  # nor a value


def test_filters(api: Api) -> None:
    h, p = world(utc_now())
    assert patients(care_list(api, kind="inactivity"), p) == ["L2"]
    assert patients(care_list(api, kind="abnormal_reading,overdue_followup"), p) == ["L5", "L3", "L1", "L4"]
    assert patients(care_list(api, status="resolved"), p) == ["L4"]
    assert care_list(api, status="open,acknowledged,resolved")["total"] == 6
    assert patients(care_list(api, age_band="70-79"), p) == ["L1"]
    assert patients(care_list(api, age_band="50-59"), p) == ["L5", "L4"]
    assert patients(care_list(api, condition="hypertension"), p) == ["L1"]
    assert patients(care_list(api, condition="none"), p) == ["L2", "L5", "L4"]
    assert patients(care_list(api, department_id=h.departments["A"]), p) == ["L1"]
    assert patients(care_list(api, department_id=h.departments["C"], kind="abnormal_reading"), p) == ["L5"]
    assert patients(care_list(api, institution_id=h.institutions["h1"]), p) == ["L1"]
    doc = care_list(api, clinician_id=h.clinicians["a1"], age_band="40-49")
    assert patients(doc, p) == ["L2"]
    assert doc["ignored_filters"] == ["clinician_id"]
    with write_tx() as s:
        _kid, bound = security.create_api_key(s, "h2 nurses", "admin", utc_now(), institutions=[h.institutions["h2"]])
    assert patients(care_list(api, key=bound), p) == ["L5"]


def test_pages_by_cursor_or_offset(api: Api) -> None:
    _h, p = world(utc_now())
    first = care_list(api, limit="2")
    assert patients(first, p) == ["L2", "L5"]
    assert first["next_cursor"] == first["rows"][-1]["alert_id"]
    second = care_list(api, limit="2", cursor=first["next_cursor"])
    assert patients(second, p) == ["L3", "L1"]
    third = care_list(api, limit="2", cursor=second["next_cursor"])
    assert patients(third, p) == ["L4"]
    assert third["next_cursor"] is None
    assert third["total"] == 5
    assert patients(care_list(api, limit="2", offset="3"), p) == ["L1", "L4"]


def test_nurses_read_it_the_front_desk_does_not_and_bad_input_is_422(api: Api) -> None:
    _h, p = world(utc_now())
    nurse, desk = staff_token(api, "nurse-1", "nurse"), staff_token(api, "desk-1", "frontdesk")
    assert patients(care_list(api, key=nurse), p) == ["L2", "L5", "L3", "L1", "L4"]
    error(api.get("/analytics/care_list", key=desk), 403, "auth.forbidden")
    assert "care_list" in [v["name"] for v in api.get("/analytics", key=nurse).json()["views"]]
    assert api.get("/analytics", key=desk).status_code == 403  # holds no view's permission
    other = alerts_of(p["L2"])[0]
    for params in ({"limit": "0"}, {"limit": "201"}, {"limit": "ten"}, {"offset": "-1"}, {"kind": "flu"},
                   {"kind": ","}, {"status": "closed"}, {"cursor": "nope"}, {"cursor": new_id()},
                   {"cursor": other, "offset": "1"}):
        error(api.get("/analytics/care_list", params=params), 422, "analytics.bad_parameter")
    error(api.get("/analytics/care_list", params={"age_band": "old"}), 422, "analytics.bad_filter")
    error(api.get("/analytics/care_list", params={"by": "age_band"}), 422, "analytics.bad_breakdown")
