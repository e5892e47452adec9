"""The recommendations API over HTTP on SQLite and PostgreSQL: a hypertension patient's BP task
first until measured, diabetes → glucose, a patient who never booked online → the lecture on
online services (gone once they book online), the switch (stored, audited, idempotent, raced from
several connections), no health-data consent → behaviour only, bad input → 422 with nothing
stored, a patient never reaching another patient's recommendations, and a snapshot whose query
count does not grow with the patient's data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from carepoints.audit.service import Actor
from carepoints.enrolment import closure
from carepoints.kit.db import get_engine, read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.patients import proxies
from carepoints.patients import service as patients
from carepoints.services.recommend import service
from tests.conftest import Db
from tests.helpers import error, staff_token
from tests.locks import oks, race
from tests.services.recommend.kit import (
    audits,
    book_online,
    condition,
    followup,
    item,
    lecture,
    patient_token,
    plan,
    reading,
    switch_rows,
)

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def recs(api: Api, pid: str, key: str | None = None, **params: Any) -> dict[str, Any]:
    r = api.get(f"/patients/{pid}/recommendations", key=key or patient_token(pid), params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def codes(doc: dict[str, Any]) -> list[str]:
    return [i["code"] for i in doc["items"]]


def put_switch(api: Api, pid: str, body: Any, key: str | None = None) -> Any:
    return api.request("PUT", f"/patients/{pid}/recommendations/settings", body, key=key or patient_token(pid))


def test_hypertension_sees_the_bp_task_first_until_measured(api: Api) -> None:
    pid = api.enrol()
    condition(api, pid, "hypertension")
    bp_item = item(api, "高血压的日常管理", conditions=("hypertension",))
    talk = lecture(api, "健康讲座:高血压的自我管理")
    doc = recs(api, pid)
    assert (doc["enabled"], doc["uses_health_data"], doc["rules_version"]) == (True, True, 1)
    assert codes(doc) == ["hypertension_bp", "hypertension_content", "hypertension_lecture",
                          "online_services_lecture"]
    first = doc["items"][0]
    assert first == {"code": "hypertension_bp", "kind": "task", "target": "/me/health#h-bp", "target_id": None,
                     "title": {"zh": "今天测量并记录血压", "en": "Measure and record your blood pressure today"},
                     "score": 100, "reason": first["reason"],
                     "basis": ["condition:hypertension", "task_open:measure_bp"]}
    assert first["reason"]["code"] == "condition_hypertension"
    assert first["reason"]["zh"].startswith("因为您登记了高血压")
    assert [(i["target_id"], i["target"]) for i in doc["items"][1:3]] == [(bp_item, f"/me/learn/{bp_item}"),
                                                                          (talk, "/me/lectures")]
    assert "不能代替医生" in doc["disclaimer"]["zh"]
    reading(api, pid)
    after = recs(api, pid)
    assert "hypertension_bp" not in codes(after)
    assert codes(after)[0] == "hypertension_content"


def test_diabetes_sees_glucose_and_elderly_mode_fewer(api: Api) -> None:
    pid = api.enrol()
    condition(api, pid, "diabetes")
    plan(api, pid)
    item(api, "血糖记录小窍门", conditions=("diabetes",))
    doc = recs(api, pid)
    assert codes(doc)[:2] == ["diabetes_glucose", "medication_checkin"]
    assert doc["items"][0]["reason"]["zh"].startswith("因为您登记了糖尿病")
    assert len(doc["items"]) == 4
    assert len(recs(api, pid, elderly="true")["items"]) == 2
    with write_tx() as s:
        patients.set_preferences(s, pid, elderly_mode=True)
    assert codes(recs(api, pid)) == ["diabetes_glucose", "medication_checkin"]  # the stored setting
    assert len(recs(api, pid, limit=1)["items"]) == 1


def test_never_booked_online_is_offered_the_lecture_on_online_services(api: Api) -> None:
    pid = api.enrol()
    talk = lecture(api, "教您用手机预约挂号、查报告")
    doc = recs(api, pid)
    [online] = [i for i in doc["items"] if i["code"] == "online_services_lecture"]
    assert (online["kind"], online["target_id"], online["basis"]) == ("lecture", talk, ["signal:online_bookings=0"])
    assert online["reason"]["zh"].startswith("因为您近一年还没有用过手机预约挂号")
    book_online(pid)
    assert "online_services_lecture" not in codes(recs(api, pid))


def test_a_due_follow_up_is_suggested_and_one_not_yet_due_is_not(api: Api) -> None:
    due, later = api.enrol(), api.enrol()
    followup(api, due, days_ago=1)
    followup(api, later, days_ago=0)  # its step is due tomorrow
    [step] = [i for i in recs(api, due)["items"] if i["code"] == "followup_due"]
    assert (step["target"], step["basis"]) == ("/me/followups", ["task_open:followup"])
    assert "followup_due" not in codes(recs(api, later))


def test_without_health_data_consent_only_behaviour_counts(api: Api) -> None:
    when = api.patient_body()["consent"]["accepted_at"]
    pid = api.enrol(consent={"version": "1.0", "accepted_at": when, "purposes": ["points_programme"]})
    condition(api, pid, "hypertension")
    doc = recs(api, pid)
    assert doc["uses_health_data"] is False
    assert not any(i["code"].startswith("hypertension") for i in doc["items"])
    assert all("condition:" not in b for i in doc["items"] for b in i["basis"])
    assert "checkin_start" not in codes(doc)  # readings are health data too


def test_a_deceased_patient_is_recommended_nothing(api: Api) -> None:
    pid = api.enrol()
    condition(api, pid, "hypertension")
    assert recs(api, pid)["items"]
    with write_tx() as s:
        closure.change_status(s, pid, "deceased", "death_reported", Actor.system("test"), utc_now())
    doc = api.get(f"/patients/{pid}/recommendations").json()
    assert (doc["enabled"], doc["items"]) == (True, [])


def test_the_switch_is_stored_audited_and_idempotent(api: Api) -> None:
    pid = api.enrol()
    token = patient_token(pid)
    assert api.get(f"/patients/{pid}/recommendations/settings", key=token).json() == {
        "patient_id": pid, "enabled": True, "updated_at": None}
    off = put_switch(api, pid, {"enabled": False})
    assert off.status_code == 200, off.text
    assert (off.json()["enabled"], off.json()["changed"]) == (False, True)
    doc = recs(api, pid)
    assert (doc["enabled"], doc["items"]) == (False, [])
    again = put_switch(api, pid, {"enabled": False})
    assert (again.json()["enabled"], again.json()["changed"]) == (False, False)
    assert audits("recommend:settings:update") == [{"actor_kind": "patient", "patient_id": pid,
                                                    "details": {"enabled": False}}]
    on = put_switch(api, pid, {"enabled": True})
    assert (on.json()["enabled"], on.json()["changed"]) == (True, True)
    assert recs(api, pid)["items"]
    assert switch_rows() == [{"patient_id": pid, "enabled": True}]
    assert len(audits("recommend:settings:update")) == 2
    # the front desk helps a patient at the window: allowed, audited as staff
    desk = staff_token(api, "desk-rec", "frontdesk")
    assert put_switch(api, pid, {"enabled": False}, key=desk).json()["changed"] is True
    assert audits("recommend:settings:update")[-1]["actor_kind"] == "staff"


def test_bad_input_is_422_and_nothing_stored(api: Api) -> None:
    pid = api.enrol()
    for body in ({"enabled": "no"}, {"enabled": 0}, {}, {"enabled": True, "extra": 1}, "not json", [True]):
        r = put_switch(api, pid, body)
        error(r, 422, "request.invalid")
    for params in ({"limit": 0}, {"limit": 21}, {"limit": "x"}, {"elderly": "maybe"}):
        error(api.get(f"/patients/{pid}/recommendations", key=patient_token(pid), params=params), 422,
              "request.invalid")
    unknown = "0190a5f0-0000-7000-8000-000000000000"
    error(api.get(f"/patients/{unknown}/recommendations"), 404, "patients.not_found")
    error(api.request("PUT", f"/patients/{unknown}/recommendations/settings", {"enabled": False}), 404,
          "patients.not_found")
    error(api.get("/patients/not-an-id/recommendations/settings"), 404, "patients.not_found")
    assert switch_rows() == []
    assert audits("recommend:settings:update") == []


def test_a_patient_never_reaches_another_patients_recommendations(api: Api) -> None:
    mine, theirs = api.enrol(), api.enrol()
    condition(api, theirs, "hypertension")
    token = patient_token(mine)
    error(api.get(f"/patients/{theirs}/recommendations", key=token), 404, "patients.not_found")
    error(api.get(f"/patients/{theirs}/recommendations/settings", key=token), 404, "patients.not_found")
    error(put_switch(api, theirs, {"enabled": False}, key=token), 404, "patients.not_found")
    assert switch_rows() == []
    assert recs(api, theirs)["items"][0]["code"] == "hypertension_bp"  # untouched
    assert "hypertension_bp" not in codes(recs(api, mine))
    # a proxy with view reads them but may not switch them off
    with write_tx() as s:
        proxies.authorise(s, theirs, proxies.Proxy(mine), ["view"], utc_now())
    proxy = patient_token(mine)
    assert recs(api, theirs, key=proxy)["items"][0]["code"] == "hypertension_bp"
    error(put_switch(api, theirs, {"enabled": False}, key=proxy), 403, "auth.forbidden")
    assert switch_rows() == []
    # staff without the permission are refused; the front desk's read is audited
    error(api.get(f"/patients/{theirs}/recommendations", key=staff_token(api, "mod-rec", "moderator")), 403,
          "auth.forbidden")
    recs(api, theirs, key=staff_token(api, "desk-rec2", "frontdesk"))
    assert [(a["actor_kind"], a["patient_id"]) for a in audits("recommend:recommendations:view")] == [
        ("staff", theirs)]


def test_concurrent_switches_change_it_once(api: Api, racing: Db) -> None:
    pid = api.enrol()
    token = patient_token(pid)

    def off() -> Any:
        r = api.request("PUT", f"/patients/{pid}/recommendations/settings", {"enabled": False}, key=token,
                        client=api.new_client())
        assert r.status_code == 200, r.text
        return r.json()["changed"]

    results = race(racing, [off] * 6)
    assert sorted(oks(results)) == [False] * 5 + [True]
    assert switch_rows() == [{"patient_id": pid, "enabled": False}]
    assert len(audits("recommend:settings:update")) == 1


def _statements(pid: str) -> int:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", count)
    try:
        with read_tx() as s:
            service.recommendations(s, pid, utc_now())
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len([q for q in seen if q.lstrip().upper().startswith("SELECT")])


def test_the_snapshot_takes_the_same_few_queries_whatever_the_data(api: Api) -> None:
    small = api.enrol()
    condition(api, small, "hypertension")
    plan(api, small)
    item(api, "高血压饮食", conditions=("hypertension",))
    lecture(api, "高血压讲座")
    baseline = _statements(small)
    big = api.enrol()
    for code in ("hypertension", "diabetes", "copd", "stroke"):
        condition(api, big, code)
    for _ in range(4):
        plan(api, big)
        reading(api, big)
        item(api, "糖尿病饮食", conditions=("diabetes", "copd"), tags=("diet",))
        lecture(api, "糖尿病讲座")
    book_online(big)
    assert _statements(big) == baseline
    assert baseline <= 10, baseline
