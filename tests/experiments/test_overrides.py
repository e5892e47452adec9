"""A variant's overrides change what an event earns, end to end over HTTP: only for
patients with a research consent, only while the experiment runs (judged at `occurred_at`),
and traceably (the outcome names the variant; the ledger holds what was paid)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from carepoints.experiments import service
from carepoints.experiments.models import Experiment
from carepoints.kit.db import get_engine, table
from carepoints.kit.time import utc_now
from tests.experiments.support import consent, create, design, enrol_in, variant_of
from tests.helpers import bp, event

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def _checkin(api: Api, pid: str, minutes_ago: float = 0) -> dict[str, Any]:
    return api.send(event(pid, "health.measurement", utc_now() - timedelta(minutes=minutes_ago), bp()))


def _paid(outcome: dict[str, Any]) -> list[tuple[str, int]]:
    return [(a["rule"], a["points"]) for a in outcome["awards"]]


def test_an_override_changes_what_a_check_in_earns(api: Api) -> None:
    doc = create(api)
    treated, control = enrol_in(api, doc, "double"), enrol_in(api, doc, "control")
    t, c = _checkin(api, treated), _checkin(api, control)
    assert _paid(t) == [("first_checkin", 50), ("health_checkin", 20)]
    assert _paid(c) == [("first_checkin", 50), ("health_checkin", 10)]
    assert [a["message"] for a in t["awards"]] == ["首次完成健康打卡,额外奖励50积分!", "健康打卡,奖励20积分"]
    assert t["experiments"] == [{"code": "bp_points", "variant": "double"}]
    assert c["experiments"] == [{"code": "bp_points", "variant": "control"}]
    assert (api.balance(treated), api.balance(control)) == (170, 160)
    entry = next(e for e in api.entries(treated) if e.get("rule") == "health_checkin")
    assert entry["points"] == 20
    # the second reading of the day reaches the unchanged daily cap of 20 for the treated
    assert _paid(_checkin(api, treated)) == []
    assert _paid(_checkin(api, control)) == [("health_checkin", 10)]
    ev = event(treated, "health.measurement", utc_now(), bp())
    first, again = api.send(ev), api.send(ev)
    assert (again["duplicate"], again["experiments"]) == (True, first["experiments"])  # the stored outcome


def test_a_daily_cap_and_a_switched_off_rule(api: Api) -> None:
    doc = create(api, design("more_checkins", [{"rule": "health_checkin", "daily_points": 30},
                                               {"rule": "first_checkin", "enabled": False}]))
    treated = enrol_in(api, doc, "double")
    outs = api.batch([event(treated, "health.measurement", utc_now() + timedelta(seconds=i), bp())
                      for i in range(4)])
    assert [_paid(o) for o in outs] == [[("health_checkin", 10)]] * 3 + [[]]
    assert [n["code"] for n in outs[3]["notices"]] == ["rules.daily_cap"]
    assert "30" in outs[3]["notices"][0]["message"]
    assert api.balance(treated) == 130


def test_no_research_consent_no_override(api: Api) -> None:
    doc = create(api)
    without: list[str] = []
    while {variant_of(doc, p) for p in without} != {"control", "double"}:  # both arms, by the hash
        assert len(without) < 64
        without.append(api.enrol(consent=consent(research=False)))
    for pid in without:
        out = _checkin(api, pid)
        assert _paid(out) == [("first_checkin", 50), ("health_checkin", 10)]
        assert "experiments" not in out


LECTURES = design("lecture_points", [{"rule": "lecture", "points": 60}])


def _lecture(api: Api, pid: str, at: datetime | None = None) -> dict[str, Any]:
    return api.send(event(pid, "lecture.attended", at or utc_now(), {"lecture_id": uuid.uuid4().hex}))


def test_a_withdrawn_consent_ends_the_override(api: Api) -> None:
    doc = create(api, LECTURES)
    treated = enrol_in(api, doc, "double")
    assert _paid(_lecture(api, treated)) == [("lecture", 60)]
    assert api.request("DELETE", f"/patients/{treated}/consents/research").status_code == 200
    after = _lecture(api, treated)  # from the withdrawal on: the programme as it is
    assert (_paid(after), "experiments" in after) == ([("lecture", 30)], False)
    assert api.balance(treated) == 190


def test_drafts_and_stopped_experiments_change_nothing_but_late_events_keep_their_arm(api: Api) -> None:
    doc = create(api, LECTURES, start=False)
    treated = enrol_in(api, doc, "double")
    assert _paid(_lecture(api, treated)) == [("lecture", 30)]  # a draft
    api.post(f"/experiments/{doc['id']}/start")
    while_running = utc_now()
    assert _paid(_lecture(api, treated, while_running - timedelta(days=2))) == [("lecture", 30)]  # before the start
    assert _paid(_lecture(api, treated)) == [("lecture", 60)]
    api.post(f"/experiments/{doc['id']}/stop")
    after = _lecture(api, treated)
    assert (_paid(after), "experiments" in after) == ([("lecture", 30)], False)
    late = _lecture(api, treated, while_running)  # it occurred while the experiment ran: its arm
    assert (_paid(late), late["experiments"]) == ([("lecture", 60)], [{"code": "lecture_points",
                                                                       "variant": "double"}])
    assert api.balance(treated) == 100 + 30 + 30 + 60 + 30 + 60


def test_a_start_committed_by_another_process_is_seen_at_once(api: Api) -> None:
    doc = create(api, start=False)
    treated = enrol_in(api, doc, "double")
    with get_engine().connect() as conn:
        assert service.started(conn) == ()
    plain = _checkin(api, treated)
    assert _paid(plain)[-1] == ("health_checkin", 10)
    other = create(api, design("review_more", [{"rule": "review", "points": 40}]))  # this process caches it
    assert other["status"] == "running"
    _checkin(api, treated, minutes_ago=60 * 24)  # the cache is warm and holds review_more only
    # another process starts bp_points: a plain UPDATE, so this process's cache is not told
    t = table(Experiment)
    with get_engine().begin() as conn:
        conn.execute(update(t).where(t.c.id == doc["id"]).values(status="running", started_at=utc_now()))
    seen = api.send(event(treated, "health.measurement", utc_now() + timedelta(seconds=1), bp(),
                          key=uuid.uuid4().hex))
    assert seen["experiments"] == [{"code": "bp_points", "variant": "double"}]
