"""Experiment results from the roll-ups (`analytics.experiments_rollup`) on SQLite and PostgreSQL:
for a hand-computed experiment that started three days ago, the results the view reads from
the roll-ups (with today's touched patients live) equal the live computation from the base
tables and the numbers worked out in the comments; re-running the roll-up changes nothing; a
stopped experiment's results are final."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from carepoints.analytics import experiments, rollup
from carepoints.analytics import experiments_rollup as rolled
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.experiments import assign
from carepoints.experiments import service as exp_service
from carepoints.experiments.schemas import ExperimentCreate
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.ids import new_id
from carepoints.kit.time import day_start_utc, local_date, utc_now
from tests.conftest import Db
from tests.experiments.support import design, enrol_in
from tests.helpers import bp, event
from tests.locks import errors, oks, race

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]
OUTCOMES = ("participation", "checkin_completeness", "no_show_rate")


def _start(started: datetime) -> dict[str, Any]:
    with write_tx() as session:
        doc, _ = exp_service.create(session, ExperimentCreate.model_validate(design("rolled_up")),
                                    Actor("api_key", new_id(), "admin"), started)
        return exp_service.start(session, doc["id"], Actor("api_key", new_id(), "admin"), started)


def _results(api: Api, eid: str, outcome: str) -> dict[str, Any]:
    r = api.get("/analytics/experiment_results", params={"experiment_id": eid, "outcome": outcome})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _cells(doc: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int, float | None]]:
    return {(r["variant"], r["age_band"]): (r["patients"], r["n"], r["value"]) for r in doc["rows"]}


def _live(eid: str, outcome: str) -> dict[tuple[str, str], tuple[int, int, float | None]]:
    with read_tx() as session:
        row = session.connection().execute(select(table(experiments.Experiment)).where(
            table(experiments.Experiment).c.id == eid)).mappings().one()
        exp = assign.Compiled.of(row["id"], row["code"], row["started_at"], row["stopped_at"], row["variants"])
        end = min(exp.stopped_at or utc_now(), utc_now())
        cells = experiments.live_cells(session, exp, outcome, end, None)
    return {k: (c.patients, c.n, experiments._round(c.mean)) for k, c in cells.items()}


def _stored() -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with read_tx() as session:
        for model in (rolled.ExperimentFact, rolled.ExperimentVisit, rolled.ExperimentMember, rolled.ExperimentCell):
            t = table(model)
            out[t.name] = sorted(tuple(r) for r in session.connection().execute(select(t)))
    return out


def _roll(today: Any) -> None:
    rollup.rollup_days([today - timedelta(days=i) for i in range(1, 4)], today, get_settings().tz)


def test_rolled_up_results_equal_the_live_computation(api: Api) -> None:
    tz = get_settings().tz
    today = local_date(utc_now(), tz)
    start = day_start_utc(today - timedelta(days=3), tz) + timedelta(hours=12)  # d0 noon; d0, d1, d2, today
    doc = _start(start)
    eid = doc["id"]
    d = [start + timedelta(days=k, seconds=1) for k in range(3)]  # d0 .. d2 (closed days)

    def member(variant: str) -> str:
        return enrol_in(api, doc, variant, research_since=start - timedelta(days=1))

    def visit(pid: str, type_: str, appointment: str, at: datetime) -> None:
        attrs: dict[str, Any] = {"appointment_id": appointment, "slot_start": (at - timedelta(hours=1)).isoformat()}
        if type_ == "appointment.attended":
            attrs["booked_at"] = (at - timedelta(days=5)).isoformat()
        api.send(event(pid, type_, at, attrs))

    def lecture(pid: str, at: datetime) -> None:
        api.send(event(pid, "lecture.attended", at, {"lecture_id": uuid.uuid4().hex}))

    c1, c2, c3 = member("control"), member("control"), member("control")
    t1, t2 = member("double"), member("double")
    lecture(c1, d[0])
    api.batch([event(c1, "health.measurement", at, bp("device")) for at in (d[0], d[2])])
    visit(c1, "appointment.no_show", "x3", d[0])
    visit(c1, "appointment.attended", "x3", d[2])  # reported attended after all: attended
    lecture(t1, d[1])
    api.batch([event(t1, "health.measurement", at, bp("device")) for at in d])
    visit(t2, "appointment.no_show", "x1", d[1])
    visit(t2, "appointment.attended", "x2", d[2])
    lecture(c3, start - timedelta(hours=2))  # before the start: not in the window

    assert _results(api, eid, "participation")["computed"] == "live"  # nothing rolled up yet
    _roll(today)
    got = {o: _results(api, eid, o) for o in OUTCOMES}
    assert {doc["computed"] for doc in got.values()} == {"rolled"}
    assert got["participation"]["results_through"] == (today - timedelta(days=1)).isoformat()
    # participation: control c1 of c1..c3 = 1/3; double t1 (lecture), t2 (appointment events) = 2/2
    assert _cells(got["participation"])[("control", "all")] == (3, 3, 0.333333)
    assert _cells(got["participation"])[("double", "all")] == (2, 2, 1.0)
    # check-ins over 4 days (d0 .. today): control 2/4, 0, 0 → 1/6; double 3/4, 0 → 0.375
    assert _cells(got["checkin_completeness"])[("control", "all")] == (3, 3, 0.166667)
    assert _cells(got["checkin_completeness"])[("double", "all")] == (2, 2, 0.375)
    # no-shows: control x3 attended 0/1; double x1 missed, x2 attended 1/2
    assert _cells(got["no_show_rate"])[("control", "all")] == (1, 1, 0.0)
    assert _cells(got["no_show_rate"])[("double", "all")] == (1, 2, 0.5)
    for o in OUTCOMES:
        assert _cells(got[o]) == _live(eid, o), o

    # today: c2 attends a lecture and checks in, c3 misses x4 (both touched today: counted live)
    now = utc_now() - timedelta(seconds=1)
    lecture(c2, now)
    api.send(event(c2, "health.measurement", now, bp("device")))
    visit(c3, "appointment.no_show", "x4", now)
    visit(t2, "appointment.attended", "x1", now)  # d1's no-show of x1 corrected today: attended
    t3 = enrol_in(api, doc, "double")  # research consent from now: a member since today
    lecture(t3, utc_now())
    got = {o: _results(api, eid, o) for o in OUTCOMES}
    assert {doc["computed"] for doc in got.values()} == {"rolled"}
    assert _cells(got["participation"])[("control", "all")] == (3, 3, 1.0)  # c1, c2 and c3 (x4 is behaviour)
    assert _cells(got["checkin_completeness"])[("control", "all")] == (3, 3, 0.25)  # (2 + 1 + 0) / 4 / 3
    assert _cells(got["no_show_rate"])[("control", "all")] == (2, 2, 0.5)
    assert _cells(got["participation"])[("double", "all")] == (3, 3, 1.0)  # t3 joined and attended today
    assert _cells(got["checkin_completeness"])[("double", "all")] == (3, 3, 0.25)  # (3/4 + 0 + 0/1) / 3
    assert _cells(got["no_show_rate"])[("double", "all")] == (1, 2, 0.0)  # x1 and x2 attended
    for o in OUTCOMES:
        assert _cells(got[o]) == _live(eid, o), o
    assert [r["diff"] for r in got["participation"]["rows"] if r["age_band"] == "all"] == [None, 0.0]

    before = _stored()
    assert len(before["analytics_experiment_members"]) == 5  # t3 joined after the roll-up
    _roll(today)  # re-running the roll-up changes nothing
    assert _stored() == before


def test_a_stopped_experiment_has_final_results(api: Api) -> None:
    tz = get_settings().tz
    today = local_date(utc_now(), tz)
    start = day_start_utc(today - timedelta(days=3), tz) + timedelta(hours=12)
    doc = _start(start)
    p1 = enrol_in(api, doc, "control", research_since=start - timedelta(days=1))
    p2 = enrol_in(api, doc, "double", research_since=start - timedelta(days=1))
    api.batch([event(p1, "health.measurement", start + timedelta(hours=1), bp("device")),
               event(p2, "health.measurement", start + timedelta(days=1, hours=1), bp("device")),
               event(p2, "health.measurement", start + timedelta(days=2, hours=1), bp("device"))])  # after the stop
    stopped = start + timedelta(days=1, hours=6)  # d1 18:00: d0 and d1 are in the window
    with write_tx() as session:
        exp_service.stop(session, doc["id"], Actor("api_key", new_id(), "admin"), stopped)
    _roll(today)
    got = _results(api, doc["id"], "checkin_completeness")
    assert got["computed"] == "rolled"
    assert got["results_through"] == (today - timedelta(days=2)).isoformat()  # d1, the stop's day
    # 2 days in the experiment each: p1 1/2, p2 1/2 (the reading after the stop does not count)
    assert _cells(got)[("control", "all")] == (1, 1, 0.5)
    assert _cells(got)[("double", "all")] == (1, 1, 0.5)
    assert _cells(got) == _live(doc["id"], "checkin_completeness")
    with read_tx() as session:
        valid = session.connection().execute(select(table(rolled.ExperimentCell).c.valid_on).where(
            table(rolled.ExperimentCell).c.experiment_id == doc["id"])).scalars().all()
    assert set(valid) == {None}  # final


def test_concurrent_runs_of_the_finisher_take_turns(racing: Db, api: Api) -> None:
    """Four finisher runs at once (the job and the CLI, say), each committing from its own
    connection: none collides with another's members or cells, and the result is one run's."""
    tz = get_settings().tz
    today = local_date(utc_now(), tz)
    start = day_start_utc(today - timedelta(days=2), tz) + timedelta(hours=12)
    doc = _start(start)
    for variant in ("control", "double", "double"):
        pid = enrol_in(api, doc, variant, research_since=start - timedelta(days=1))
        api.send(event(pid, "health.measurement", start + timedelta(hours=1), bp("device")))
    _roll(today)
    before = _stored()

    def finish() -> int:
        with write_tx() as session:
            return rolled.finish_experiments(session, [], today, tz)

    results = race(racing, [finish] * 4, lock=(table(rolled.ExperimentCell), []))
    assert errors(results) == []
    assert len(oks(results)) == 4
    assert _stored() == before
    assert len(before["analytics_experiment_members"]) == 3
