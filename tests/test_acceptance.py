"""The issue's acceptance examples, end to end over HTTP on both databases."""

from __future__ import annotations

import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from carepoints.jobs import registry
from carepoints.kit.time import add_months, utc_now
from tests.helpers import bp, event

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

# Real prose, counted in code points with whitespace ignored.
PROSE = "这次就诊医生非常耐心地解释了病情和用药注意事项护士也很热情候诊时间比以前短了很多整体体验非常满意下次还会再来"
OTHER = "挂号流程清楚自助机操作简单方便药房取药很快窗口工作人员态度温和耐心检查报告也能在手机上及时查看十分便利"


def _dt(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _codes(outcome: dict[str, Any]) -> list[str]:
    return [n["code"] for n in outcome["notices"]]


def _referral(pid: str, at: Any, ref: str | None = None) -> dict[str, Any]:
    return event(pid, "referral.visit", at,
                 {"referral_id": ref or uuid.uuid4().hex, "from_institution": "社区卫生服务中心"})


def _bp_week(pid: str, now: datetime) -> list[dict[str, Any]]:
    day0 = now.replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=10)
    return [event(pid, "health.measurement", day0 + timedelta(days=d, hours=h), bp()) for d in range(7) for h in (0, 9)]


def test_new_patient_gets_the_welcome_100(api: Api) -> None:
    pid = api.enrol()
    assert api.balance(pid) == 100
    [entry] = api.entries(pid)
    assert (entry["points"], entry["kind"], entry["rule"], entry["balance_after"]) == (100, "earn", "welcome", 100)
    assert entry["message"] == "新用户注册即送100积分"


def test_blood_pressure_twice_a_day_for_seven_days_is_340(api: Api) -> None:
    pid = api.enrol()
    evs = _bp_week(pid, api.now())
    first = api.batch(evs)
    assert all("error" not in o and o["duplicate"] is False for o in first), first
    assert api.balance(pid) == 340
    rules = sorted(a["rule"] for o in first for a in o["awards"])
    assert rules == sorted(["first_checkin", "checkin_streak_7"] + ["health_checkin"] * 14)
    assert first[-1]["balance"] == 340

    again = api.batch(evs)
    assert all(o["duplicate"] is True for o in again)
    assert [o["event_id"] for o in again] == [o["event_id"] for o in first]
    assert [o["awards"] for o in again] == [o["awards"] for o in first]
    assert api.balance(pid) == 340
    # a single replay answers 200 with the stored outcome
    r = api.post("/events", evs[3])
    assert r.status_code == 200
    assert r.json()["duplicate"] is True
    assert r.json()["event_id"] == first[3]["event_id"]
    assert api.balance(pid) == 340


def test_the_same_fourteen_readings_shuffled_give_340(api: Api) -> None:
    template = _bp_week("x", api.now())
    in_batch, one_by_one = api.enrol(), api.enrol()
    shuffled = [dict(e, patient={"id": in_batch}, source_event_id=uuid.uuid4().hex) for e in template]
    random.Random(3).shuffle(shuffled)
    api.batch(shuffled)
    assert api.balance(in_batch) == 340

    singles = [dict(e, patient={"id": one_by_one}, source_event_id=uuid.uuid4().hex) for e in template]
    random.Random(11).shuffle(singles)
    for ev in singles:
        api.send(ev)
    assert api.balance(one_by_one) == 340


def test_a_clinic_reading_earns_nothing(api: Api) -> None:
    pid = api.enrol()
    out = api.send(event(pid, "health.measurement", api.now() - timedelta(hours=1), bp("clinic")))
    assert out["awards"] == []
    assert _codes(out) == ["rules.condition_not_met"]
    assert api.balance(pid) == 100


def test_review_length_counts_code_points_without_whitespace(api: Api) -> None:
    pid = api.enrol()
    at = api.now() - timedelta(days=1)
    text49 = OTHER[:30] + " \n\t\u3000 " + OTHER[30:49]
    assert len(text49) > 50
    out = api.send(event(pid, "review.submitted", at, {"appointment_id": uuid.uuid4().hex, "rating": 5,
                                                        "text": text49}))
    assert out["awards"] == []
    assert _codes(out) == ["rules.condition_not_met"]
    assert api.balance(pid) == 100

    # 48 characters plus "e" and a combining accent: 50 code points raw, 49 after NFC
    decomposed = OTHER[:48] + "e\u0301"
    out = api.send(event(pid, "review.submitted", at, {"appointment_id": uuid.uuid4().hex, "rating": 5,
                                                        "text": decomposed}))
    assert out["awards"] == []
    assert api.balance(pid) == 100

    appt = uuid.uuid4().hex
    out = api.send(event(pid, "review.submitted", at, {"appointment_id": appt, "rating": 5, "text": PROSE[:50]}))
    assert [(a["rule"], a["points"]) for a in out["awards"]] == [("review", 20)]
    assert api.balance(pid) == 120

    out = api.send(event(pid, "review.submitted", at + timedelta(hours=1),
                         {"appointment_id": appt, "rating": 4, "text": PROSE}))
    assert out["awards"] == []
    assert _codes(out) == ["rules.once_per_appointment"]
    assert out["notices"][0]["message"]
    assert api.balance(pid) == 120


def _no_shows(api: Api, pid: str, first_slot: Any) -> list[dict[str, Any]]:
    outs = []
    for i in range(3):
        slot = first_slot + timedelta(days=i)
        outs.append(api.send(event(pid, "appointment.no_show", slot,
                                   {"appointment_id": uuid.uuid4().hex, "slot_start": slot.isoformat()})))
    return outs


def test_three_no_shows_suspend_earning_until_shown_in_points(api: Api) -> None:
    pid = api.enrol()
    first = api.now().replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=5)
    outs = _no_shows(api, pid, first)
    assert [[(a["rule"], a["points"]) for a in o["awards"]] for o in outs] == [[("no_show", -50)]] * 3
    view = api.points(pid)
    assert (view["balance"], view["debt"], view["available"]) == (-50, 50, 0)
    third = first + timedelta(days=2)
    assert view["suspended_until"] is not None
    # earning is suspended from the third no-show's slot_start for 30 × 24 h
    until = _dt(view["suspended_until"])
    assert until == third + timedelta(hours=720)

    out = api.send(event(pid, "health.measurement", third + timedelta(days=1), bp()))
    assert out["awards"] == []
    assert "rules.suspended" in _codes(out)
    assert api.balance(pid) == -50


def test_reading_after_the_suspension_earns_and_repays_debt_first(api: Api) -> None:
    pid = api.enrol()
    first = api.now().replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=45)
    _no_shows(api, pid, first)
    third = first + timedelta(days=2)
    assert (api.balance(pid), api.points(pid)["debt"]) == (-50, 50)
    out = api.send(event(pid, "health.measurement", third + timedelta(days=1), bp()))
    assert out["awards"] == []
    assert "rules.suspended" in _codes(out)
    assert api.points(pid)["suspended_until"] is None  # over by now

    out = api.send(event(pid, "health.measurement", third + timedelta(days=31), bp()))
    # nothing was awarded during the suspension, so the first check-in bonus is still due
    assert sorted((a["rule"], a["points"]) for a in out["awards"]) == [("first_checkin", 50), ("health_checkin", 10)]
    view = api.points(pid)
    assert (view["balance"], view["debt"], view["available"]) == (10, 0, 10)
    assert out["balance"] == 10


def test_annual_cap_holds_under_eight_parallel_clients(api: Api) -> None:
    pid = api.enrol()
    now = api.now()
    refs = [_referral(pid, now - timedelta(milliseconds=10 * i)) for i in range(60)]

    def post(ev: dict[str, Any]) -> int:
        client = api.new_client()
        return api.post("/events", ev, client=client).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(post, refs))
    assert statuses == [201] * 60
    view = api.points(pid)
    assert view["balance"] == 10000
    assert view["earned_this_year"] == 10000
    earned = sorted(e["points"] for e in api.entries(pid) if e["kind"] == "earn")
    assert earned == [100, 100] + [200] * 49  # welcome, the truncated award, 49 full ones
    assert sum(earned) == 10000


def test_points_expire_after_24_months_only_when_the_job_runs(api: Api) -> None:
    pid = api.enrol()
    old = api.now() - timedelta(days=25 * 31)
    out = api.send(_referral(pid, old, "old-1"))
    assert out["awards"][0]["points"] == 200
    assert api.balance(pid) == 300  # ingest never expires lots
    result = registry.run("expire-points", utc_now())
    assert result["points"] >= 200
    assert api.balance(pid) == 100
    newest = api.entries(pid)[0]
    assert (newest["kind"], newest["points"], newest["balance_after"]) == ("expiry", -200, 100)
    # running it again expires nothing more
    registry.run("expire-points", utc_now())
    assert api.balance(pid) == 100


def test_lots_expiring_within_30_days_are_listed(api: Api) -> None:
    pid = api.enrol()
    soon = add_months(api.now() + timedelta(days=10), -24)
    later = add_months(api.now() + timedelta(days=40), -24)
    api.send(_referral(pid, soon))
    api.send(_referral(pid, later))
    view = api.points(pid)
    assert view["balance"] == 500
    assert len(view["expiring"]) == 1
    [lot] = view["expiring"]
    assert lot["points"] == 200
    expires = _dt(lot["expires_at"])
    assert abs(expires - add_months(soon, 24)) < timedelta(seconds=1)


def test_revoke_reverses_exactly_its_entries_and_frees_cap_room(api: Api) -> None:
    pid = api.enrol()
    now = api.now()
    outs = api.batch([_referral(pid, now - timedelta(minutes=i + 1)) for i in range(50)])
    assert api.balance(pid) == 10000
    full = next(o for o in outs if o["awards"] and o["awards"][0]["points"] == 200)
    capped = api.send(_referral(pid, now - timedelta(minutes=100)))
    assert capped["awards"] == []
    assert "rules.annual_cap" in _codes(capped)

    r = api.post(f"/events/{full['event_id']}/revoke", {"reason": "HIS correction"})
    assert r.status_code == 200, r.text
    assert r.json()["reversed"] == [{"rule": "referral", "points": -200}]
    assert api.balance(pid) == 9800
    assert api.points(pid)["earned_this_year"] == 9800
    mine = [e for e in api.entries(pid) if e["event_id"] == full["event_id"]]
    assert sorted((e["kind"], e["points"]) for e in mine) == [("earn", 200), ("reversal", -200)]

    again = api.send(_referral(pid, now - timedelta(minutes=200)))
    assert [(a["rule"], a["points"]) for a in again["awards"]] == [("referral", 200)]
    assert api.balance(pid) == 10000


def _no_show_at(api: Api, pid: str, slot: datetime) -> dict[str, Any]:
    return api.send(event(pid, "appointment.no_show", slot,
                          {"appointment_id": uuid.uuid4().hex, "slot_start": slot.isoformat()}))


def _earns(api: Api, pid: str, at: datetime) -> bool:
    out = api.send(event(pid, "lecture.attended", at, {"lecture_id": uuid.uuid4().hex}))
    return bool(out["awards"])


def test_suspension_window_restart_and_consumed_no_shows(api: Api) -> None:
    pid = api.enrol()
    base = api.now().replace(hour=9, minute=0, second=0, microsecond=0)
    for d in (105, 60, 11):  # more than 90 days from first to last: no suspension
        _no_show_at(api, pid, base - timedelta(days=d))
    assert _earns(api, pid, base - timedelta(days=10))
    pid = api.enrol()
    for d in (80, 79, 78):  # suspended from day -78 for 30 days
        _no_show_at(api, pid, base - timedelta(days=d))
    assert not _earns(api, pid, base - timedelta(days=77))
    _no_show_at(api, pid, base - timedelta(days=60))  # during the suspension: restarts it until day -30
    assert not _earns(api, pid, base - timedelta(days=40))
    assert _earns(api, pid, base - timedelta(days=29))
    # the no-shows that triggered or restarted the suspension do not count again
    _no_show_at(api, pid, base - timedelta(days=20))
    _no_show_at(api, pid, base - timedelta(days=19))
    assert _earns(api, pid, base - timedelta(days=18))
    assert api.points(pid)["suspended_until"] is None


def test_revoking_the_no_show_that_triggered_a_suspension_lifts_it(api: Api) -> None:
    pid = api.enrol()
    base = api.now().replace(hour=9, minute=0, second=0, microsecond=0)
    outs = [_no_show_at(api, pid, base - timedelta(days=d)) for d in (5, 4, 3)]
    assert api.points(pid)["suspended_until"] is not None
    api.post(f"/events/{outs[2]['event_id']}/revoke", {"reason": "attended after all"})
    view = api.points(pid)
    assert view["suspended_until"] is None
    assert view["balance"] == 0
    assert _earns(api, pid, base - timedelta(days=2))


def test_revoking_the_no_show_that_restarted_a_suspension_restores_its_end(api: Api) -> None:
    pid = api.enrol()
    base = api.now().replace(hour=9, minute=0, second=0, microsecond=0)
    for d in (42, 41, 40):  # suspended from day -40 to day -10
        _no_show_at(api, pid, base - timedelta(days=d))
    restart = _no_show_at(api, pid, base - timedelta(days=20))  # restarts it: until day +10
    assert api.points(pid)["suspended_until"] is not None
    r = api.post(f"/events/{restart['event_id']}/revoke", {"reason": "attended after all"})
    assert r.status_code == 200
    assert api.points(pid)["suspended_until"] is None
    assert _earns(api, pid, base - timedelta(days=5))
