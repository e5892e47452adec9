"""POST /events, POST /events/{id}/revoke and POST /events/revoke over HTTP."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

from carepoints.jobs import registry
from carepoints.kit.ids import is_id
from carepoints.kit.time import utc_now
from tests.helpers import bp, event

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

OUTCOME_KEYS = {"event_id", "duplicate", "awards", "notices", "balance"}


def _reading(api: Api, pid: str, hours_ago: float = 1, **kw: Any) -> dict[str, Any]:
    return event(pid, "health.measurement", api.now() - timedelta(hours=hours_ago), bp(), **kw)


def _no_show(api: Api, pid: str, days_ago: int = 2) -> dict[str, Any]:
    slot = api.now() - timedelta(days=days_ago)
    return event(pid, "appointment.no_show", slot, {"appointment_id": uuid.uuid4().hex, "slot_start": slot.isoformat()})


def test_single_event_answers_201_with_its_outcome(api: Api) -> None:
    pid = api.enrol()
    r = api.post("/events", _reading(api, pid))
    assert r.status_code == 201, r.text
    out = r.json()
    assert set(out) == OUTCOME_KEYS
    assert is_id(out["event_id"])
    assert out["duplicate"] is False
    assert out["notices"] == []
    assert all(set(a) == {"rule", "points", "message"} for a in out["awards"])
    assert sorted((a["rule"], a["points"]) for a in out["awards"]) == [("first_checkin", 50), ("health_checkin", 10)]
    assert {a["rule"]: a["message"] for a in out["awards"]}["first_checkin"] == "首次完成健康打卡,额外奖励50积分!"
    assert out["balance"] == 160 == api.balance(pid)


def test_notices_have_code_and_message(api: Api) -> None:
    pid = api.enrol()
    at = api.now() - timedelta(hours=2)
    api.batch([event(pid, "selfservice.used", at - timedelta(minutes=i), {"action": "pay"}) for i in range(3)])
    out = api.send(event(pid, "selfservice.used", at, {"action": "print_report"}))
    assert out["awards"] == []
    assert out["notices"] == [{"code": "rules.daily_cap", "message": "今日「自助服务」积分已达上限30分"}]
    assert out["balance"] == 130


def test_duplicate_answers_200_with_the_stored_outcome(api: Api) -> None:
    pid = api.enrol()
    ev = _reading(api, pid)
    first = api.post("/events", ev)
    again = api.post("/events", ev)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {**first.json(), "duplicate": True}
    assert api.balance(pid) == 160


def test_duplicate_is_judged_on_the_normalised_payload(api: Api) -> None:
    pid = api.enrol()
    slot = (api.now() - timedelta(days=1)).replace(microsecond=0)
    attrs = {"appointment_id": "A-1", "slot_start": slot.isoformat()}
    ev = event(pid, "appointment.no_show", slot, attrs)
    assert api.post("/events", ev).status_code == 201
    same_instant = dict(ev, occurred_at=slot.astimezone(UTC).isoformat(),
                        attributes={"slot_start": slot.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                                    "appointment_id": "A-1"})
    r = api.post("/events", same_instant)
    assert r.status_code == 200, r.text
    assert r.json()["duplicate"] is True
    assert api.balance(pid) == 50


def test_same_key_with_another_payload_is_a_409_conflict(api: Api) -> None:
    pid = api.enrol()
    ev = _reading(api, pid)
    api.send(ev)
    r = api.post("/events", dict(ev, attributes=bp(sys_=150, dia=95)))
    assert r.status_code == 409
    assert r.json()["error"] == "events.conflict"
    other_time = dict(ev, occurred_at=(api.now() - timedelta(hours=3)).isoformat())
    assert api.post("/events", other_time).status_code == 409
    assert api.balance(pid) == 160
    # the same source_event_id from another source is another event
    assert api.post("/events", dict(ev, source="other-his")).status_code == 201


def test_a_rejected_event_occupies_no_key(api: Api) -> None:
    pid = api.enrol()
    ev = _reading(api, str(uuid.uuid4()), key="k-1")
    assert api.post("/events", ev).status_code == 404
    assert api.post("/events", dict(ev, patient={"id": pid})).status_code == 201


def test_batch_items_fail_alone(api: Api) -> None:
    pid = api.enrol()
    now = api.now()
    good = [event(pid, "lecture.attended", now - timedelta(hours=i + 1), {"lecture_id": f"L{i}"}) for i in range(3)]
    unknown_type = event(pid, "no.such_type", now - timedelta(hours=1), {})
    unknown_patient = event(str(uuid.uuid4()), "lecture.attended", now - timedelta(hours=1), {"lecture_id": "X"})
    naive = dict(event(pid, "lecture.attended", now, {"lecture_id": "N"}),
                 occurred_at=(now - timedelta(hours=1)).replace(tzinfo=None).isoformat())
    bad_attrs = event(pid, "review.submitted", now - timedelta(hours=1), {"appointment_id": "A", "rating": 9,
                                                                           "text": "x"})
    items = [good[0], unknown_type, good[1], unknown_patient, naive, bad_attrs, good[2]]
    outs = api.batch(items)
    for i in (0, 2, 6):
        assert set(outs[i]) == OUTCOME_KEYS, outs[i]
        assert outs[i]["awards"][0]["rule"] == "lecture"
    errors = {i: (outs[i]["error"], outs[i]["status"]) for i in (1, 3, 4, 5)}
    assert errors == {1: ("request.invalid", 422), 3: ("patients.not_found", 404), 4: ("request.invalid", 422),
                      5: ("request.invalid", 422)}
    assert all(outs[i]["detail"] for i in errors)
    assert any(f["loc"][:2] == ["attributes", "rating"] for f in outs[5]["fields"])
    assert outs[6]["balance"] == 190 == api.balance(pid)


def test_batch_duplicates_and_conflicts_within_one_request(api: Api) -> None:
    pid = api.enrol()
    ev = _reading(api, pid)
    clash = dict(ev, attributes=bp(sys_=150, dia=95))
    outs = api.batch([ev, ev, clash])
    assert outs[0]["duplicate"] is False
    assert outs[1] == {**outs[0], "duplicate": True}
    assert (outs[2]["error"], outs[2]["status"]) == ("events.conflict", 409)
    assert api.balance(pid) == 160


def test_a_batch_of_1000_is_accepted_and_1001_is_413(api: Api) -> None:
    pid = api.enrol()
    now = api.now().replace(hour=20, minute=0)
    if now > api.now():
        now -= timedelta(days=1)
    evs = [event(pid, "selfservice.used", now - timedelta(seconds=i), {"action": "query"}) for i in range(1000)]
    outs = api.batch(evs)
    assert sum(1 for o in outs if o["awards"]) == 3
    assert api.balance(pid) == 130
    r = api.post("/events", {"events": [*evs, _reading(api, pid)]})
    assert r.status_code == 413
    assert r.json()["error"] == "events.batch_too_large"
    assert api.balance(pid) == 130


def test_an_empty_batch_answers_no_outcomes(api: Api) -> None:
    r = api.post("/events", {"events": []})
    assert r.status_code == 200
    assert r.json() == {"outcomes": []}


def test_patient_by_external_identifier(api: Api) -> None:
    pid = api.enrol(external_ids=[{"system": "urn:his:mrn", "value": "MRN-001"}])
    ev = dict(_reading(api, pid), patient={"system": "urn:his:mrn", "value": "MRN-001"})
    out = api.send(ev)
    assert out["balance"] == 160 == api.balance(pid)
    for patient in ({"system": "urn:his:mrn", "value": "MRN-999"}, {"system": "urn:other", "value": "MRN-001"}):
        r = api.post("/events", dict(_reading(api, pid), patient=patient))
        assert r.status_code == 404
        assert r.json()["error"] == "patients.not_found"


def test_junk_bodies_are_request_invalid(api: Api) -> None:
    for body in (b"{not json", b"", b"[]", b'"event"', b"{}", b'{"events": "all"}',
                 b'{"type": "health.measurement"}', b'{"events": [], "type": "x"}'):
        r = api.post("/events", body)
        assert 400 <= r.status_code < 500, (body, r.text)
        assert r.json()["error"] == "request.invalid", body
    r = api.post("/events", {"events": [1, {"type": "x"}]})
    assert r.status_code == 200
    assert [(o["error"], o["status"]) for o in r.json()["outcomes"]] == [("request.invalid", 422)] * 2


def test_malformed_patient_reference_and_future_events(api: Api) -> None:
    pid = api.enrol()
    r = api.post("/events", dict(_reading(api, pid), patient={"system": "urn:his:mrn"}))
    assert (r.status_code, r.json()["error"]) == (422, "request.invalid")
    r = api.post("/events", dict(_reading(api, pid), patient={"id": "not-an-id"}))
    assert (r.status_code, r.json()["error"]) == (404, "patients.not_found")
    r = api.post("/events", _reading(api, pid, hours_ago=-2))
    assert (r.status_code, r.json()["error"]) == (422, "events.in_future")
    assert api.balance(pid) == 100


def test_revoke_by_id_twice_gives_the_same_result(api: Api) -> None:
    pid = api.enrol()
    out = api.send(_reading(api, pid))
    r1 = api.post(f"/events/{out['event_id']}/revoke", {"reason": "HIS correction"})
    r2 = api.post(f"/events/{out['event_id']}/revoke", {"reason": "again"})
    assert (r1.status_code, r2.status_code) == (200, 200)
    assert r1.json() == r2.json()
    doc = r1.json()
    assert doc["event_id"] == out["event_id"]
    assert doc["revoked"] is True
    assert sorted((x["rule"], x["points"]) for x in doc["reversed"]) == [("first_checkin", -50),
                                                                          ("health_checkin", -10)]
    assert doc["balance"] == 100 == api.balance(pid)
    # the first check-in bonus is free again
    again = api.send(_reading(api, pid, hours_ago=2))
    assert sorted(a["rule"] for a in again["awards"]) == ["first_checkin", "health_checkin"]


def test_revoke_by_source_key(api: Api) -> None:
    pid = api.enrol()
    ev = _reading(api, pid, key="his-123", source="his")
    api.send(ev)
    body = {"source": "his", "source_event_id": "his-123", "reason": "entered in error"}
    r1 = api.post("/events/revoke", body)
    r2 = api.post("/events/revoke", body)
    assert (r1.status_code, r2.status_code) == (200, 200)
    assert r1.json() == r2.json()
    assert r1.json()["balance"] == 100 == api.balance(pid)


def test_revoking_a_penalty_gives_the_points_back(api: Api) -> None:
    pid = api.enrol()
    out = api.send(_no_show(api, pid))
    assert out["balance"] == 50
    r = api.post(f"/events/{out['event_id']}/revoke", {"reason": "patient did attend"})
    assert r.json()["reversed"] == [{"rule": "no_show", "points": 50}]
    view = api.points(pid)
    assert (view["balance"], view["debt"]) == (100, 0)


def test_revoking_a_penalty_that_made_debt_clears_the_debt(api: Api) -> None:
    pid = api.enrol()
    outs = [api.send(_no_show(api, pid, days_ago=d)) for d in (40, 200, 300)]
    assert (api.balance(pid), api.points(pid)["debt"]) == (-50, 50)
    api.post(f"/events/{outs[2]['event_id']}/revoke", {"reason": "patient did attend"})
    view = api.points(pid)
    assert (view["balance"], view["debt"], view["available"]) == (0, 0, 0)


def test_revoke_unknown_event_is_404(api: Api) -> None:
    for path in ("/events/not-an-id/revoke", "/events/0190a5f0-0000-7000-8000-000000000000/revoke"):
        r = api.post(path, {"reason": "x"})
        assert (r.status_code, r.json()["error"]) == (404, "events.not_found"), path
    r = api.post("/events/revoke", {"source": "his", "source_event_id": "nope", "reason": "x"})
    assert (r.status_code, r.json()["error"]) == (404, "events.not_found")


def test_revoke_needs_a_reason(api: Api) -> None:
    pid = api.enrol()
    out = api.send(_reading(api, pid))
    r = api.post(f"/events/{out['event_id']}/revoke", {})
    assert (r.status_code, r.json()["error"]) == (422, "request.invalid")
    assert r.json()["fields"]
    assert api.balance(pid) == 160


def test_messages_are_in_chinese(api: Api) -> None:
    pid = api.enrol()
    day0 = api.now().replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=8)
    outs = api.batch([event(pid, "health.measurement", day0 + timedelta(days=d), bp()) for d in range(7)])
    streak = [a for a in outs[-1]["awards"] if a["rule"] == "checkin_streak_7"]
    assert streak == [{"rule": "checkin_streak_7", "points": 50, "message": "连续7天健康打卡,奖励50积分!"}]
    assert "连续7天" in streak[0]["message"]
    out = api.send(event(pid, "health.measurement", day0, bp("clinic"), key=uuid.uuid4().hex))
    assert out["notices"][0]["message"] == "门诊测量的数据已记录,自我监测的数据才计积分"
    r = api.post("/events", {"events": [{}] * 1001})
    assert "一次最多提交1000个事件" in r.json()["detail"]


def test_events_older_than_the_maximum_age_are_stored_but_earn_nothing(api: Api) -> None:
    pid = api.enrol()
    ev = event(pid, "lecture.attended", api.now() - timedelta(days=1100), {"lecture_id": "old"})
    r = api.post("/events", ev)
    assert r.status_code == 201
    assert r.json()["awards"] == []
    assert [n["code"] for n in r.json()["notices"]] == ["rules.event_too_old"]
    assert api.post("/events", ev).json()["duplicate"] is True
    assert api.balance(pid) == 100


def test_events_before_enrolment_still_earn(api: Api) -> None:
    pid = api.enrol()
    out = api.send(event(pid, "lecture.attended", api.now() - timedelta(days=400), {"lecture_id": "early"}))
    assert [(a["rule"], a["points"]) for a in out["awards"]] == [("lecture", 30)]


def test_parallel_replays_of_one_event_earn_once(api: Api) -> None:
    pid = api.enrol()
    ev = _reading(api, pid)

    def post(_: int) -> tuple[int, dict[str, Any]]:
        r = api.post("/events", ev, client=api.new_client())
        return r.status_code, r.json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(post, range(8)))
    assert sorted(s for s, _ in results) == [200] * 7 + [201], results
    assert len({doc["event_id"] for _, doc in results}) == 1
    assert api.balance(pid) == 160


def test_parallel_clients_reusing_one_key_for_different_patients(api: Api) -> None:
    pids = [api.enrol() for _ in range(6)]

    def post(pid: str) -> tuple[int, dict[str, Any]]:
        r = api.post("/events", _reading(api, pid, key="shared-key"), client=api.new_client())
        return r.status_code, r.json()

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(post, pids))
    statuses = sorted(s for s, _ in results)
    assert statuses == [201] + [409] * 5, results
    assert all(doc["error"] == "events.conflict" for s, doc in results if s == 409)
    assert sorted(api.balance(p) for p in pids) == [100] * 5 + [160]


def test_parallel_revokes_reverse_once(api: Api) -> None:
    pid = api.enrol()
    out = api.send(_reading(api, pid))

    def revoke(_: int) -> tuple[int, dict[str, Any]]:
        r = api.post(f"/events/{out['event_id']}/revoke", {"reason": "dup"}, client=api.new_client())
        return r.status_code, r.json()

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(revoke, range(6)))
    assert {s for s, _ in results} == {200}
    assert all(doc == results[0][1] for _, doc in results)
    assert api.balance(pid) == 100
    reversals = [e for e in api.entries(pid) if e["kind"] == "reversal"]
    assert sorted(e["points"] for e in reversals) == [-50, -10]


def test_a_corrected_reading_does_not_pay_the_streak_twice(api: Api) -> None:
    pid = api.enrol()
    day0 = api.now().replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=10)
    outs = api.batch([event(pid, "health.measurement", day0 + timedelta(days=d), bp()) for d in range(7)])
    assert api.balance(pid) == 270  # 100 + 50 + 7 × 10 + 50
    api.post(f"/events/{outs[2]['event_id']}/revoke", {"reason": "wrong reading"})
    api.send(event(pid, "health.measurement", day0 + timedelta(days=2, hours=1), bp(sys_=128)))
    # the same seven days, one reading each: one streak award
    assert api.balance(pid) == 270


def test_revoking_an_expired_earning_does_not_charge_twice(api: Api) -> None:
    pid = api.enrol()
    out = api.send(event(pid, "referral.visit", api.now() - timedelta(days=25 * 31),
                         {"referral_id": "R-old", "from_institution": "社区"}))
    assert registry.ledger_expire_points(utc_now())["points"] == 200
    assert api.balance(pid) == 100
    r = api.post(f"/events/{out['event_id']}/revoke", {"reason": "HIS correction"})
    assert r.status_code == 200
    assert r.json()["reversed"] == []  # expiry already took all of it
    view = api.points(pid)
    assert (view["balance"], view["debt"]) == (100, 0)
