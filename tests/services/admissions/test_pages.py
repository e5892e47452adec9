"""The admissions pages over real HTTP on SQLite and PostgreSQL: the patient's 住院与手术 (orders,
surgeries, pre-visit exams), choosing, refusing and cancelling a date in elderly mode, another
patient's order as 404 on every route; the staff hub issuing an order, a surgery request and a
pre-visit exam for a patient found by phone, the surgery page's checks and schedule, the ward's day
view confirming an arrival, and the desk reading without the forms."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import TYPE_CHECKING

from tests.pages.helpers import patient_client, staff_client
from tests.services.admissions.world import INSTRUCTIONS, Hospital, local_today, order_body, surgery_body, working_day

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def _day(offset: int) -> str:
    return (local_today() + timedelta(days=offset)).isoformat()


def test_the_patient_chooses_and_cancels_a_date(api: Api) -> None:
    h = Hospital()
    pid = api.enrol()
    oid = api.post("/admission-orders", order_body(pid, h.ward)).json()["id"]
    api.post("/surgery-requests", surgery_body(pid, h.department, kind="day", expected_minutes=45))
    d = local_today() + timedelta(days=1)
    h.session(d, time(8), time(8, 30), exam=True)
    h.session(d, time(14), time(15))
    api.post("/previsit-orders", {"patient_id": pid, "clinician_id": h.clinician, "resource_id": h.resource,
                                  "exam": "血常规", "result_hours": 2, "idempotency_key": "pg-pv"})
    client = patient_client(pid, elderly=True)
    assert 'href="/me/admissions"' in client.get("/me").text
    listing = client.get("/me/admissions")
    assert listing.status_code == 200, listing.text[:500]
    item = re.search(rf'<li data-order="{oid}".*?</li>', listing.text, re.S)
    assert item, listing.text[:2000]
    assert "普外一病区" in item.group(0)
    assert "data-choose" in item.group(0)
    assert "腹腔镜胆囊切除术" in listing.text
    assert "data-same-day" in listing.text
    assert f"{d.isoformat()} 14:00" in listing.text  # the follow-up after the result
    assert 'class="elderly"' in listing.text

    page = client.get(f"/me/admissions/{oid}")
    assert page.status_code == 200
    assert f'data-day="{_day(0)}"' not in page.text  # inside the cut-off: not offered online
    assert f'data-day="{_day(3)}"' in page.text
    bad = client.submit(f"/me/admissions/{oid}/date", {"date": "tomorrow"})
    assert bad.status_code == 422
    assert 'data-error="request.invalid"' in bad.text
    late = client.submit(f"/me/admissions/{oid}/date", {"date": _day(0)})
    assert late.status_code == 409
    assert 'data-error="admissions.change_too_late"' in late.text
    done = client.submit(f"/me/admissions/{oid}/date", {"date": _day(3)})
    assert done.status_code == 303
    assert done.headers["location"] == f"/me/admissions/{oid}?done=booked"
    booked = client.get(done.headers["location"])
    assert "入院日期已预约" in booked.text
    assert INSTRUCTIONS in booked.text
    assert "data-cutoff" in booked.text
    assert f'data-day="{_day(3)}"' in booked.text
    assert "aria-current=\"date\"" in booked.text
    assert client.submit(f"/me/admissions/{oid}/cancel").status_code == 303
    cancelled = client.get(f"/me/admissions/{oid}")
    assert 'data-status="cancelled"' in cancelled.text
    assert "data-choose-date" not in cancelled.text
    assert client.submit(f"/me/admissions/{oid}/cancel").status_code == 303  # again: the same


def test_another_patients_order_is_404_on_every_page(api: Api) -> None:
    h = Hospital()
    mine, theirs = api.enrol(), api.enrol()
    oid = api.post("/admission-orders", order_body(theirs, h.ward)).json()["id"]
    client = patient_client(mine)
    assert client.get(f"/me/admissions/{oid}").status_code == 404
    assert client.submit(f"/me/admissions/{oid}/date", {"date": _day(3)}).status_code == 404
    assert client.submit(f"/me/admissions/{oid}/cancel").status_code == 404
    assert oid not in client.get("/me/admissions").text
    assert api.get(f"/admission-orders/{oid}").json()["status"] == "issued"


def test_staff_issue_schedule_and_admit(api: Api) -> None:
    h = Hospital()
    pid = api.enrol(phone="13812345601")
    nurse, _ = staff_client("nurse")
    hub = nurse.get("/staff/admissions")
    assert hub.status_code == 200, hub.text[:500]
    assert f'data-ward="{h.ward}"' in hub.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', hub.text)
    assert key
    issued = nurse.submit("/staff/admissions/orders", {"patient": "13812345601", "ward_id": h.ward,
                                                      "idempotency_key": key.group(1)})
    assert issued.status_code == 200, issued.text[:800]
    oid = re.search(r'data-done="order" data-id="([^"]+)"', issued.text)
    assert oid
    refused = nurse.submit("/staff/admissions/orders", {"patient": "13812345601", "ward_id": h.ward,
                                                       "idempotency_key": "other-key"})
    assert refused.status_code == 409
    assert 'data-error="admissions.order_exists"' in refused.text
    api.post(f"/admission-orders/{oid.group(1)}/date", {"date": _day(0)})
    day = nurse.get(f"/staff/admissions/wards/{h.ward}")
    assert f'data-order="{oid.group(1)}"' in day.text
    assert "data-admit" in day.text
    admitted = nurse.submit(f"/staff/admissions/orders/{oid.group(1)}/admit")
    assert admitted.status_code == 303
    after = nurse.get(admitted.headers["location"])
    assert "已办理入院" in after.text
    assert 'data-status="admitted"' in after.text

    too_long = nurse.submit("/staff/admissions/surgeries", {
        "patient": pid, "department_id": h.department, "procedure": "宫腔镜检查", "kind": "day",
        "expected_minutes": "150", "idempotency_key": "pg-s0"})
    assert too_long.status_code == 422
    assert 'data-error="admissions.day_surgery_too_long"' in too_long.text
    made = nurse.submit("/staff/admissions/surgeries", {
        "patient": pid, "department_id": h.department, "procedure": "宫腔镜检查", "kind": "day",
        "expected_minutes": "45", "idempotency_key": "pg-s1"})
    assert made.status_code == 303
    url = made.headers["location"]
    sid = url.rsplit("/", 1)[1]
    day_ = working_day(local_today(), 2).isoformat()
    early = nurse.submit(f"{url}/schedule", {"room_id": h.day_room, "date": day_})
    assert early.status_code == 409
    assert 'data-error="admissions.checks_missing"' in early.text
    for check in ("preop_exam", "anaesthesia"):
        assert nurse.submit(f"{url}/checks", {"check": check}).status_code == 303
    page = nurse.get(url)
    assert page.text.count("data-done") == 2
    assert h.room not in page.text  # only the day-surgery room is offered
    ok = nurse.submit(f"{url}/schedule", {"room_id": h.day_room, "date": day_})
    assert ok.status_code == 303
    assert "data-scheduled" in nurse.get(ok.headers["location"]).text
    room = nurse.get(f"/staff/admissions/rooms/{h.day_room}?day={day_}")
    assert f'data-surgery="{sid}"' in room.text
    assert '<strong data-minutes>45</strong>' in room.text

    d = local_today() + timedelta(days=1)
    h.session(d, time(8), time(8, 30), exam=True)
    h.session(d, time(11), time(12))
    pv = nurse.submit("/staff/admissions/previsits", {
        "patient": pid, "clinician_id": h.clinician, "resource_id": h.resource, "exam": "血常规",
        "result_hours": "2", "idempotency_key": "pg-pv2"})
    assert pv.status_code == 200, pv.text[:800]
    assert f'data-followup>{d.isoformat()} 11:00' in pv.text

    desk, _ = staff_client("frontdesk")
    seen = desk.get("/staff/admissions")
    assert seen.status_code == 200
    assert "data-issue-order" not in seen.text
    assert desk.submit("/staff/admissions/orders", {"patient": pid, "ward_id": h.ward,
                                                    "idempotency_key": "x"}).status_code == 403
