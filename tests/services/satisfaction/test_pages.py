"""The satisfaction pages over real HTTP on SQLite and PostgreSQL: the patient's /me/complaints
(list, form, a complaint filed once per form, another patient's visit refused as 404, elderly mode),
the staff queue and item pages (masked name, what the patient said, assign / note / close), a
complaint taken at the desk, and the admin dashboard with its charts and an alert acknowledged."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

from carepoints.services.satisfaction import tasks
from tests.analytics import visits_kit as vk
from tests.conftest import Db
from tests.pages.helpers import patient_client, staff_client
from tests.services.satisfaction.kit import World, alerts, detect, items, sdb

if TYPE_CHECKING:
    import pytest

pytest_plugins = ["tests.api_client"]
__all__ = ["sdb"]
TEXT = "取药窗口排队一个多小时"


def test_the_patient_files_and_reads_a_complaint(db: Db) -> None:
    w = World("A", "B")
    appt = w.visit("A", vk.today() - timedelta(days=2))
    pid = appt["patient_id"]
    client = patient_client(pid, elderly=True)
    assert 'href="/me/complaints"' in client.get("/me").text
    empty = client.get("/me/complaints")
    assert empty.status_code == 200
    assert "data-empty" in empty.text
    assert 'class="elderly"' in empty.text
    form = client.get("/me/complaints/new")
    assert form.status_code == 200
    assert f'value="visit:{appt["id"]}"' in form.text
    assert "科室A" in form.text
    key = re.search(r'name="key" value="([^"]+)"', form.text)
    assert key
    data = {"subject": f"visit:{appt['id']}", "category": "waiting", "text": TEXT, "key": key.group(1)}
    bad = client.submit("/me/complaints", {**data, "text": "太慢"})
    assert bad.status_code == 422
    assert "5–1000" in bad.text
    assert client.submit("/me/complaints", {**data, "category": ""}).status_code == 422
    r = client.submit("/me/complaints", data)
    assert r.status_code == 303
    assert r.headers["location"] == "/me/complaints?done=1"
    assert client.submit("/me/complaints", data).status_code == 303  # a double tap: the same complaint
    assert len(items()) == 1
    listed = client.get("/me/complaints?done=1")
    assert "投诉已提交" in listed.text
    assert TEXT in listed.text
    assert "处理中" in listed.text
    assert "候诊时间" in listed.text
    by_dept = client.submit("/me/complaints", {"subject": "department", "department": w.departments["B"],
                                               "category": "environment", "text": "候诊区座位太少了"})
    assert by_dept.status_code == 303
    assert {i["department_id"] for i in items()} == {w.departments["A"], w.departments["B"]}


def test_another_patients_visit_is_refused(db: Db) -> None:
    w = World("A")
    mine, theirs = (w.visit("A", vk.today() - timedelta(days=1)) for _ in range(2))
    client = patient_client(mine["patient_id"])
    r = client.submit("/me/complaints", {"subject": f"visit:{theirs['id']}", "category": "other", "text": TEXT})
    assert r.status_code == 404
    assert "未找到该患者的这次就诊" in r.text
    assert items() == []
    form = client.get("/me/complaints/new").text
    assert theirs["id"] not in form
    # their complaint never shows in my list
    other = patient_client(theirs["patient_id"])
    assert other.submit("/me/complaints", {"subject": f"visit:{theirs['id']}", "category": "other",
                                           "text": TEXT}).status_code == 303
    assert TEXT not in client.get("/me/complaints").text


def test_staff_work_an_item_in_the_console(sdb: Db) -> None:
    w = World("A")
    w.review("A", vk.today() - timedelta(days=1), 1, "护士态度很差")
    detect()
    [item] = items()
    client, user = staff_client("nurse")
    queue = client.get("/staff/improvements")
    assert queue.status_code == 200
    row = re.search(rf'<tr data-item="{item["id"]}".*?</tr>', queue.text, re.S)
    assert row
    assert "*" in row.group(0)
    assert "测试患者" not in row.group(0)
    assert "科室A" in row.group(0)
    assert 'href="/staff/improvements"' in queue.text  # the menu
    page = client.get(f"/staff/improvements/{item['id']}")
    assert page.status_code == 200
    assert "护士态度很差" in page.text
    assert client.submit(f"/staff/improvements/{item['id']}/assign", {"staff_user_id": user["id"]}).status_code == 303
    assert client.submit(f"/staff/improvements/{item['id']}/notes", {"text": "已回访患者"}).status_code == 303
    short = client.submit(f"/staff/improvements/{item['id']}/close", {"resolution": ""})
    assert short.status_code == 422
    done = client.submit(f"/staff/improvements/{item['id']}/close", {"resolution": "已对护士进行服务培训"})
    assert done.status_code == 303
    closed = client.get(done.headers["location"])
    assert "已关闭并记录处理结果" in closed.text
    assert "已回访患者" in closed.text
    assert "data-close-form" not in closed.text
    again = client.submit(f"/staff/improvements/{item['id']}/close", {"resolution": "再次"})
    assert again.status_code == 409
    auditor, _ = staff_client("auditor")
    assert auditor.get(f"/staff/improvements/{item['id']}").status_code == 200
    assert auditor.submit(f"/staff/improvements/{item['id']}/notes", {"text": "审计"}).status_code == 403
    assert client.get("/staff/improvements/not-an-id").status_code == 404


def test_the_desk_records_a_complaint(db: Db) -> None:
    w = World("A")
    appt = w.visit("A", vk.today() - timedelta(days=1))
    desk, _ = staff_client("frontdesk")
    jump = desk.get(f"/staff/improvements/complaint?patient_id={appt['patient_id']}", follow_redirects=False)
    assert jump.headers["location"] == f"/staff/patients/{appt['patient_id']}/complaints/new"
    form = desk.get(jump.headers["location"])
    assert form.status_code == 200
    assert f'value="visit:{appt["id"]}"' in form.text
    r = desk.submit(f"/staff/patients/{appt['patient_id']}/complaints",
                    {"subject": f"visit:{appt['id']}", "category": "billing", "text": "多收了挂号费"})
    assert r.status_code == 303
    [item] = items()
    assert r.headers["location"] == f"/staff/improvements/{item['id']}?done=filed"
    assert desk.get("/staff/patients/0190a0a0-0000-7000-8000-000000000000/complaints/new").status_code == 404


def test_the_admin_dashboard(sdb: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    from carepoints.config import reset_settings

    w = World("A", "B")
    today = vk.today()
    w.review("A", today - timedelta(days=20), 5)
    w.review("A", today - timedelta(days=2), 1)
    w.review("B", today - timedelta(days=2), 4)
    detect()
    monkeypatch.setenv("CAREPOINTS_SATISFACTION_ALERT_MIN_SAMPLES", "1")
    reset_settings()
    assert tasks.satisfaction_alerts(vk.at(today, "08:00"))["alerts"] == 1
    [alert] = alerts()
    admin, _ = staff_client("admin")
    page = admin.get("/admin/satisfaction")
    assert page.status_code == 200, page.text[:500]
    assert f'data-alert="{alert["id"]}"' in page.text
    assert "科室A" in page.text
    assert page.text.count("data-chart=") == 3
    assert 'data-kpi="open"' in page.text
    assert admin.get("/admin/satisfaction?weeks=4&department_id=" + w.departments["B"]).status_code == 200
    r = admin.submit(f"/admin/satisfaction/alerts/{alert['id']}/acknowledge")
    assert r.status_code == 303
    assert "提醒已确认" in admin.get(r.headers["location"]).text
    assert admin.submit(f"/admin/satisfaction/alerts/{alert['id']}/acknowledge").status_code == 409
    auditor, _ = staff_client("auditor")
    assert auditor.get("/admin/satisfaction").status_code == 200
    assert auditor.submit(f"/admin/satisfaction/alerts/{alert['id']}/acknowledge").status_code == 403
    reset_settings()
