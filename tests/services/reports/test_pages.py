"""The reports pages over real HTTP on SQLite and PostgreSQL: the patient's /me/reports list (新,
有异常) and report (flags in words and arrows, ranges, the careful note, the conclusion; read once),
held-back, withdrawn and other patients' reports as 404, no consent as 409 in the page; the staff
summary's 检查报告 section, the audited staff read and the clinician's release."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from carepoints.config import get_settings
from tests.pages.helpers import patient_client, staff_client
from tests.services.reports.kit import alerts, critical, outbox, patient_token, push, report

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def _row(html: str, code: str) -> str:
    m = re.search(rf'<li[^>]*data-result="{re.escape(code)}".*?</li>', html, re.S)
    assert m, code
    return m.group(0)


def _access(api: Api, pid: str, username: str) -> list[str]:
    doc = api.get(f"/patients/{pid}/access-report", key=patient_token(pid)).json()
    return [e["action"] for g in doc["groups"] if g["actor"].get("username") == username for e in g["entries"]]


def test_the_patient_lists_and_opens_a_report(api: Api) -> None:
    pid = api.enrol()
    rid = push(api, report(pid)).json()["id"]
    client = patient_client(pid, elderly=True)
    me = client.get("/me")
    assert 'href="/me/reports"' in me.text
    listed = client.get("/me/reports")
    assert listed.status_code == 200, listed.text[:500]
    item = re.search(rf'<li data-report="{rid}">.*?</li>', listed.text, re.S)
    assert item, listed.text[:2000]
    assert "血常规 / CBC" in item.group(0)
    assert "检验" in item.group(0)
    assert "2026-11-02" in item.group(0)
    assert "data-new" in item.group(0)
    assert "data-abnormal" in item.group(0)
    assert 'class="elderly"' in listed.text

    page = client.get(f"/me/reports/{rid}")
    assert page.status_code == 200, page.text[:500]
    wbc = _row(page.text, "6690-2")
    assert "↑偏高" in wbc
    assert "11.2" in wbc
    assert "3.5–9.5 10*9/L" in wbc
    assert 'data-flag="H"' in wbc
    assert "↓偏低" in _row(page.text, "718-7")
    assert "正常" in _row(page.text, "777-3")
    assert "data-flag-words" not in _row(page.text, "5778-6")  # a text value without a flag
    assert "淡黄色" in _row(page.text, "5778-6")
    assert get_settings().reports_patient_note.split(" / ")[0] in page.text
    assert "请结合临床" in page.text
    assert "读给我听" in page.text
    again = client.get("/me/reports")
    assert "data-new" not in again.text  # opened: read
    assert "data-abnormal" in again.text


def test_held_withdrawn_and_others_reports_are_not_shown(api: Api) -> None:
    pid, other = api.enrol(), api.enrol()
    held = push(api, critical(pid)).json()["id"]
    draft = push(api, report(pid, "LIS-P", status="preliminary")).json()["id"]
    theirs = push(api, report(other, "LIS-O")).json()["id"]
    client = patient_client(pid)
    listed = client.get("/me/reports")
    assert listed.status_code == 200
    assert "data-empty" in listed.text
    assert "data-report=" not in listed.text
    for rid in (held, draft, theirs, "not-an-id"):
        r = client.get(f"/me/reports/{rid}")
        assert r.status_code == 404, (rid, r.status_code)
    assert "reports.not_found" in client.get(f"/me/reports/{held}").text
    assert "血常规" not in client.get(f"/me/reports/{theirs}").text
    # the other patient still reads their own
    assert patient_client(other).get(f"/me/reports/{theirs}").status_code == 200


def test_without_health_data_consent_the_page_says_so(api: Api) -> None:
    when = api.patient_body()["consent"]["accepted_at"]
    pid = api.enrol(consent={"version": "1.0", "accepted_at": when, "purposes": ["points_programme"]})
    client = patient_client(pid)
    r = client.get("/me/reports")
    assert r.status_code == 409
    assert 'data-error="reports.consent_required"' in r.text
    assert "健康数据" in r.text
    assert 'href="/me/privacy"' in r.text


def test_staff_see_reports_and_a_clinician_releases_a_held_one(api: Api) -> None:
    pid = api.enrol()
    normal = push(api, report(pid)).json()["id"]
    held = push(api, critical(pid)).json()["id"]
    doctor, user = staff_client("clinician")
    summary = doctor.get(f"/staff/patients/{pid}")
    assert summary.status_code == 200, summary.text[:500]
    section = re.search(r"<section[^>]*data-reports>.*?</section>", summary.text, re.S)
    assert section, summary.text[:3000]
    assert re.search(rf'data-report="{held}" data-held', section.group(0))
    assert f'data-report="{normal}" data-held' not in section.group(0)
    assert "data-critical" in section.group(0)
    assert "待医生审核" in section.group(0)
    assert "reports:report:view" not in _access(api, pid, user["username"])  # the list reads no results

    page = doctor.get(f"/staff/patients/{pid}/reports/{held}")
    assert page.status_code == 200
    assert "↑↑危急 偏高" in page.text
    assert "6.9" in page.text
    assert "data-release" in page.text
    assert _access(api, pid, user["username"]).count("reports:report:view") == 1
    assert patient_client(pid).get(f"/me/reports/{held}").status_code == 404

    released = doctor.submit(f"/staff/patients/{pid}/reports/{held}/release")
    assert released.status_code == 200, released.text[:500]
    assert "已审核并发布给患者" in released.text
    assert "data-released" in released.text
    assert "data-release" not in released.text.replace("data-released", "")
    assert [a["status"] for a in alerts(pid)] == ["acknowledged"]
    assert "reports:report:release" in _access(api, pid, user["username"])
    assert len([m for m in outbox("reports.new", pid) if m["payload"]["report_id"] == held]) == 1
    patient = patient_client(pid)
    assert f'data-report="{held}"' in patient.get("/me/reports").text
    assert "↑↑危急 偏高" in patient.get(f"/me/reports/{held}").text

    again = doctor.submit(f"/staff/patients/{pid}/reports/{held}/release")
    assert again.status_code == 409
    assert 'data-error="reports.not_held"' in again.text
    assert len([m for m in outbox("reports.new", pid) if m["payload"]["report_id"] == held]) == 1


def test_the_desk_reads_but_only_clinicians_release(api: Api) -> None:
    pid = api.enrol()
    held = push(api, critical(pid)).json()["id"]
    desk, _ = staff_client("frontdesk")
    page = desk.get(f"/staff/patients/{pid}/reports/{held}")
    assert page.status_code == 200
    assert "data-held" in page.text
    assert "data-release" not in page.text
    refused = desk.submit(f"/staff/patients/{pid}/reports/{held}/release")
    assert refused.status_code == 403
    assert [a["status"] for a in alerts(pid)] == ["open"]
    moderator, _ = staff_client("moderator")
    assert moderator.get(f"/staff/patients/{pid}/reports/{held}").status_code == 403
    doctor, _ = staff_client("clinician")
    other = api.enrol()
    assert doctor.get(f"/staff/patients/{other}/reports/{held}").status_code == 404  # not that patient's
