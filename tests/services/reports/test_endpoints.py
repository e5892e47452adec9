"""The reports API over HTTP on SQLite and PostgreSQL: the JSON push (real Synthea reports too),
idempotency and versions, 409 / 422 with nothing stored, the patient's list and detail (flags from
the sender or the range, unread), patient isolation per route, consent, the audit of staff reads,
the "new report" message, and critical results held back until a clinician acknowledges them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from carepoints.kit.time import utc_now
from carepoints.notifications import templates
from tests.helpers import error, staff_token
from tests.services.reports.kit import (
    alerts,
    as_json_push,
    counts,
    critical,
    outbox,
    patient_token,
    push,
    report,
    synthea_reports,
)

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def test_push_then_the_patient_reads_it_with_flags(api: Api) -> None:
    pid = api.enrol()
    r = push(api, report(pid))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert (r.json()["version"], r.json()["held"], r.json()["abnormal"]) == (1, False, True)
    token = patient_token(pid)
    listed = api.get(f"/patients/{pid}/reports", key=token)
    assert listed.status_code == 200, listed.text
    assert listed.json()["unread"] == 1
    [item] = listed.json()["items"]
    assert item == {"id": rid, "category": "lab", "code": "58410-2", "display": "血常规 / CBC",
                    "issued_at": "2026-11-02T00:30:00.000000Z", "status": "final", "version": 1, "abnormal": True,
                    "new": True}
    detail = api.get(f"/patients/{pid}/reports/{rid}", key=token)
    assert detail.status_code == 200, detail.text
    doc = detail.json()
    assert [(x["display"], x["value"], x["flag"]) for x in doc["results"]] == [
        ("白细胞计数", 11.2, "H"), ("血红蛋白", 110, "L"), ("血小板计数", 210, "N"), ("尿颜色", "淡黄色", None)]
    assert doc["results"][0]["range_low"] == 3.5
    assert doc["results"][0]["unit"] == "10*9/L"
    assert "结果异常不一定代表疾病" in doc["note"]
    assert "held" not in doc  # the patient never sees the hold machinery
    again = api.get(f"/patients/{pid}/reports", key=token).json()
    assert (again["unread"], again["items"][0]["new"]) == (0, False)


def test_new_report_message_has_plain_words_and_ids_only(api: Api) -> None:
    pid = api.enrol()
    rid = push(api, report(pid)).json()["id"]
    assert outbox("reports.new", pid) == [{"topic": "reports.new", "key": pid,
                                           "payload": {"patient_id": pid, "report_id": rid}}]
    template = templates.lookup(templates.registry(), "reports.new", None)
    assert template is not None
    text = templates.render(template, templates.params_of({"patient_id": pid, "report_id": rid}, api.now().tzinfo))
    assert text.body_zh.startswith("您有一份新的检查报告")
    assert "11.2" not in text.body_zh
    assert "血常规" not in text.body_zh


def test_same_push_again_is_the_stored_report(api: Api) -> None:
    pid = api.enrol()
    first = push(api, report(pid))
    second = push(api, report(pid))
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["version"] == 1
    assert counts() == (1, 4)
    assert len(outbox("reports.new", pid)) == 1


def test_changed_final_is_a_conflict_and_amended_a_new_version(api: Api) -> None:
    pid = api.enrol()
    rid = push(api, report(pid)).json()["id"]
    changed = report(pid, conclusion="改过的结论")
    error(push(api, changed), 409, "reports.conflict")
    token = patient_token(pid)
    api.get(f"/patients/{pid}/reports/{rid}", key=token)  # read version 1
    amended = push(api, {**changed, "status": "amended", "results": changed["results"][:2]})
    assert amended.status_code == 200, amended.text
    assert (amended.json()["id"], amended.json()["version"], amended.json()["status"]) == (rid, 2, "amended")
    doc = api.get(f"/patients/{pid}/reports", key=token).json()
    assert (doc["items"][0]["version"], doc["items"][0]["new"]) == (2, True)  # the latest, unread again
    detail = api.get(f"/patients/{pid}/reports/{rid}", key=token).json()
    assert (detail["conclusion"], len(detail["results"])) == ("改过的结论", 2)
    assert counts() == (1, 2)
    withdrawn = push(api, {**changed, "status": "entered-in-error", "results": []})
    assert withdrawn.status_code == 200
    assert withdrawn.json()["version"] == 3
    assert api.get(f"/patients/{pid}/reports", key=token).json()["items"] == []
    error(api.get(f"/patients/{pid}/reports/{rid}", key=token), 404, "reports.not_found")
    error(push(api, {**changed, "status": "amended"}), 409, "reports.conflict")  # nothing after a withdrawal


def test_preliminary_is_hidden_until_final(api: Api) -> None:
    pid = api.enrol()
    rid = push(api, report(pid, status="preliminary")).json()["id"]
    token = patient_token(pid)
    assert api.get(f"/patients/{pid}/reports", key=token).json()["items"] == []
    assert outbox("reports.new", pid) == []
    final = push(api, report(pid, conclusion="终审"))
    assert (final.status_code, final.json()["version"]) == (200, 2)
    assert [i["id"] for i in api.get(f"/patients/{pid}/reports", key=token).json()["items"]] == [rid]
    assert len(outbox("reports.new", pid)) == 1


@pytest.mark.parametrize(("change", "loc"), [
    ({"status": "done"}, "status"), ({"category": "xray"}, "category"), ({"issued_at": "2026-11-02T08:30:00"},
                                                                          "issued_at"),
    ({"source_id": ""}, "source_id"), ({"patient": {}}, "patient"), ({"extra": 1}, "extra"),
    ({"results": [{"code": "x", "display": "y", "value": 1, "range_low": 5, "range_high": 2}]}, "results"),
    ({"results": [{"code": "x", "display": "y", "flag": "Z"}]}, "results")])
def test_bad_input_is_422_and_nothing_stored(api: Api, change: dict[str, object], loc: str) -> None:
    pid = api.enrol()
    body = error(push(api, {**report(pid), **change}), 422, "request.invalid")
    assert any(loc in [str(x) for x in f["loc"]] for f in body["fields"]), body
    assert counts() == (0, 0)


def test_unknown_patient_or_institution_is_4xx_and_nothing_stored(api: Api) -> None:
    error(push(api, report("0190a5f0-0000-7000-8000-000000000000")), 404, "patients.not_found")
    error(push(api, {**report(api.enrol()), "patient": {"system": "urn:his", "value": "nobody"}}), 404,
          "patients.not_found")
    error(push(api, {**report(api.enrol()), "institution_id": "0190a5f0-0000-7000-8000-000000000001"}), 422,
          "reports.institution_not_found")
    assert counts() == (0, 0)


def test_patient_named_by_external_identifier(api: Api) -> None:
    pid = api.enrol(external_ids=[{"system": "urn:his:mrn", "value": "MRN-77"}])
    r = push(api, {**report(pid), "patient": {"system": "urn:his:mrn", "value": "MRN-77"}})
    assert r.status_code == 201, r.text
    assert [i["id"] for i in api.get(f"/patients/{pid}/reports").json()["items"]] == [r.json()["id"]]


def test_real_synthea_reports_over_json(api: Api) -> None:
    pid = api.enrol()
    found = synthea_reports()
    assert len(found) >= 5
    for dr, observations in found:
        r = push(api, as_json_push(pid, dr, observations))
        assert r.status_code == 201, r.text
        assert len(r.json()["results"]) == len(observations)
    listed = api.get(f"/patients/{pid}/reports", key=patient_token(pid)).json()
    assert len(listed["items"]) == len(found)
    assert {i["display"] for i in listed["items"]} >= {"Basic Metabolic Panel"}


def test_a_patient_never_sees_another_patients_report(api: Api) -> None:
    mine, theirs = api.enrol(), api.enrol()
    their_report = push(api, report(theirs)).json()["id"]
    my_report = push(api, report(mine, "LIS-2")).json()["id"]
    token = patient_token(mine)
    error(api.get(f"/patients/{theirs}/reports", key=token), 404, "patients.not_found")
    error(api.get(f"/patients/{theirs}/reports/{their_report}", key=token), 404, "patients.not_found")
    error(api.get(f"/patients/{mine}/reports/{their_report}", key=token), 404, "reports.not_found")
    error(api.post(f"/patients/{theirs}/reports/{their_report}/release", key=token), 403, "auth.forbidden")
    error(api.post("/reports", report(mine, "LIS-3"), key=token), 403, "auth.forbidden")
    assert [i["id"] for i in api.get(f"/patients/{mine}/reports", key=token).json()["items"]] == [my_report]


def test_consent_health_data_is_required(api: Api) -> None:
    when = api.patient_body()["consent"]["accepted_at"]
    pid = api.enrol(consent={"version": "1.0", "accepted_at": when, "purposes": ["points_programme"]})
    error(push(api, report(pid)), 409, "reports.consent_required")
    assert counts() == (0, 0)
    error(api.get(f"/patients/{pid}/reports", key=patient_token(pid)), 409, "reports.consent_required")


def test_staff_reads_are_audited_for_the_patient(api: Api) -> None:
    pid = api.enrol()
    rid = push(api, report(pid)).json()["id"]
    nurse = staff_token(api, "nurse-r", "nurse")
    r = api.get(f"/patients/{pid}/reports/{rid}", key=nurse)
    assert r.status_code == 200, r.text
    assert r.json()["conclusion"] == "请结合临床"
    access = api.get(f"/patients/{pid}/access-report", key=patient_token(pid)).json()
    actions = [e["action"] for g in access["groups"] if g["actor"].get("username") == "nurse-r" for e in g["entries"]]
    assert "reports:report:view" in actions
    moderator = staff_token(api, "mod-r", "moderator")
    error(api.get(f"/patients/{pid}/reports", key=moderator), 403, "auth.forbidden")


def test_critical_result_is_held_until_a_clinician_acknowledges(api: Api) -> None:
    pid = api.enrol()
    r = push(api, critical(pid))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert (r.json()["held"], r.json()["critical"]) == (True, True)
    [alert] = alerts(pid)
    assert (alert["kind"], alert["severity"], alert["status"]) == ("critical_value", "critical", "open")
    assert alert["details"] == {"report_id": rid, "version": 1}
    assert outbox("lab.critical_value", pid) == [{"topic": "lab.critical_value", "key": pid,
                                                  "payload": {"alert_id": alert["id"], "patient_id": pid}}]
    token = patient_token(pid)
    assert api.get(f"/patients/{pid}/reports", key=token).json()["items"] == []
    error(api.get(f"/patients/{pid}/reports/{rid}", key=token), 404, "reports.not_found")
    assert outbox("reports.new", pid) == []
    staff_view = api.get(f"/patients/{pid}/reports").json()["items"]
    assert [(i["id"], i["held"]) for i in staff_view] == [(rid, True)]
    clinician = staff_token(api, "doc-r", "clinician")
    ack = api.post(f"/care-alerts/{alert['id']}/acknowledge", key=clinician)
    assert ack.status_code == 200, ack.text
    detail = api.get(f"/patients/{pid}/reports/{rid}", key=token)
    assert detail.status_code == 200, detail.text
    assert [(x["value"], x["flag"]) for x in detail.json()["results"]] == [(6.9, "HH")]
    assert len(outbox("reports.new", pid)) == 1
    assert api.get(f"/patients/{pid}/reports").json()["items"][0]["held"] is False


def test_release_endpoint_acknowledges_the_alert(api: Api) -> None:
    pid = api.enrol()
    rid = push(api, critical(pid)).json()["id"]
    clinician = staff_token(api, "doc-s", "clinician")
    r = api.post(f"/patients/{pid}/reports/{rid}/release", key=clinician)
    assert r.status_code == 200, r.text
    assert r.json()["held"] is False
    assert r.json()["released_at"] is not None
    assert [a["status"] for a in alerts(pid)] == ["acknowledged"]
    assert len(outbox("reports.new", pid)) == 1
    error(api.post(f"/patients/{pid}/reports/{rid}/release", key=clinician), 409, "reports.not_held")
    assert [i["id"] for i in api.get(f"/patients/{pid}/reports", key=patient_token(pid)).json()["items"]] == [rid]


def test_release_delay_setting(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from carepoints.config import get_settings
    pid = api.enrol()
    old = {**critical(pid), "issued_at": (utc_now().replace(microsecond=0)).isoformat()}
    rid = push(api, old).json()["id"]
    token = patient_token(pid)
    assert api.get(f"/patients/{pid}/reports", key=token).json()["items"] == []
    monkeypatch.setenv("CAREPOINTS_REPORTS_RELEASE_DELAY_HOURS", "1")
    get_settings.cache_clear()
    try:
        assert api.get(f"/patients/{pid}/reports", key=token).json()["items"] == []  # issued just now
        older = push(api, {**critical(pid, "LIS-OLD"), "issued_at": "2026-01-01T08:00:00+08:00"}).json()["id"]
        assert [i["id"] for i in api.get(f"/patients/{pid}/reports", key=token).json()["items"]] == [older]
        assert rid != older
    finally:
        monkeypatch.delenv("CAREPOINTS_REPORTS_RELEASE_DELAY_HOURS")
        get_settings.cache_clear()
