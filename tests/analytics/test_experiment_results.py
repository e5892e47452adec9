"""`GET /api/v1/analytics/experiment_results` against small data sets built here, whose
numbers are worked out by hand in the comments: per variant and age band, n, the outcome,
the difference vs control and its 95% CI (normal approximation), and the flag."""

from __future__ import annotations

import csv
import io
import math
import uuid
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from carepoints.analytics.experiments import Cell, difference, effect, flag
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.experiments import service
from carepoints.experiments.schemas import ExperimentCreate
from carepoints.kit.db import write_tx
from carepoints.kit.ids import new_id
from carepoints.kit.time import day_start_utc, local_date, utc_now
from tests.experiments.support import consent, create, design, enrol_in
from tests.helpers import bp, error, event

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

Z = 1.959963984540054
LECTURES = design("lecture_points", [{"rule": "lecture", "points": 60}])


def _born(years: int) -> str:
    """Born on 1 January `years` years before this year: that age all year (the first day's band)."""
    return date(local_date(utc_now(), get_settings().tz).year - years, 1, 1).isoformat()


YOUNG, OLD = _born(25), _born(65)  # bands 18-29 and 60-69 on any day of the year


def _results(api: Api, eid: str | None, outcome: str | None = None, **extra: Any) -> dict[str, Any]:
    params = {k: v for k, v in {"experiment_id": eid, "outcome": outcome, **extra}.items() if v is not None}
    r = api.get("/analytics/experiment_results", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _table(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["variant"], r["age_band"]): r for r in doc["rows"]}


def _ci(diff: float, se: float) -> tuple[float, float]:
    return diff - Z * se, diff + Z * se


def _lecture(api: Api, pid: str, at: datetime | None = None) -> None:
    api.send(event(pid, "lecture.attended", at or utc_now(), {"lecture_id": uuid.uuid4().hex}))


def test_participation_per_variant_and_age_band(api: Api) -> None:
    doc = create(api, LECTURES)
    eid = doc["id"]
    # control: young c1 (attends), c2 (only an event from before the start); old c3, c4 (attend)
    c1, c2 = enrol_in(api, doc, "control", birth_date=YOUNG), enrol_in(api, doc, "control", birth_date=YOUNG)
    c3, c4 = enrol_in(api, doc, "control", birth_date=OLD), enrol_in(api, doc, "control", birth_date=OLD)
    # double: young d1, d2, d3 (attend); old d4 (attends), d5 (withdraws research consent, then attends)
    d1, d2, d3 = (enrol_in(api, doc, "double", birth_date=YOUNG) for _ in range(3))
    d4, d5 = enrol_in(api, doc, "double", birth_date=OLD), enrol_in(api, doc, "double", birth_date=OLD)
    for pid in (c1, c3, c4, d1, d2, d3, d4):
        _lecture(api, pid)
    _lecture(api, c2, utc_now() - timedelta(days=2))  # before the start: not in the window
    assert api.request("DELETE", f"/patients/{d5}/consents/research").status_code == 200
    _lecture(api, d5)  # after the withdrawal: no longer in the experiment
    outsider = api.enrol(consent=consent(research=False), birth_date=YOUNG)  # not in the experiment at all
    _lecture(api, outsider)
    # (enrolment's account.registered events fall in the window but are no behaviour)

    got = _results(api, eid, "participation")
    assert got["experiment"]["code"] == "lecture_points"
    assert got["outcome"] == "participation"
    rows = _table(got)
    assert list(rows) == [("control", "all"), ("control", "18-29"), ("control", "60-69"),
                          ("double", "all"), ("double", "18-29"), ("double", "60-69")]
    assert [(rows[k]["patients"], rows[k]["n"], rows[k]["value"]) for k in rows] == [
        (4, 4, 0.75), (2, 2, 0.5), (2, 2, 1.0), (5, 5, 0.8), (3, 3, 1.0), (2, 2, 0.5)]
    assert all(rows[("control", b)]["diff"] is None for b in ("all", "18-29", "60-69"))
    # all: 0.8 - 0.75 = 0.05, SE = √(0.8·0.2/5 + 0.75·0.25/4) = √0.078875
    low, high = _ci(0.05, math.sqrt(0.078875))
    assert (rows[("double", "all")]["diff"], rows[("double", "all")]["ci_low"],
            rows[("double", "all")]["ci_high"]) == pytest.approx((0.05, low, high), abs=1e-6)
    assert (round(low, 5), round(high, 5)) == (-0.50045, 0.60045)
    # young: 1.0 - 0.5, SE = √(0 + 0.25/2); old: 0.5 - 1.0, SE = √(0.25/2 + 0)
    young, old = rows[("double", "18-29")], rows[("double", "60-69")]
    assert (young["diff"], young["ci_low"], young["ci_high"]) == pytest.approx((0.5, *_ci(0.5, math.sqrt(0.125))))
    assert (old["diff"], old["ci_low"], old["ci_high"]) == pytest.approx((-0.5, *_ci(-0.5, math.sqrt(0.125))))
    assert {r["effect"] for r in got["rows"]} == {""}  # every CI holds 0
    assert got["flags"] == []
    assert got["period"]["start"] == got["period"]["end"]  # started today, still running

    only_old = _table(_results(api, eid, "participation", age_band="60-69"))
    assert list(only_old) == [("control", "all"), ("control", "60-69"), ("double", "all"), ("double", "60-69")]
    assert only_old[("double", "all")]["value"] == 0.5

    body = api.get("/analytics/experiment_results", params={"experiment_id": eid, "format": "csv", "lang": "en"})
    assert body.status_code == 200
    lines = list(csv.reader(io.StringIO(body.content.decode("utf-8-sig"))))
    assert lines[0][:5] == ["Variant", "Age band", "Patients", "n", "Outcome"]
    assert lines[4][:5] == ["double", "all", "5", "5", "0.8"]


def test_a_variant_that_helps_the_young_and_hurts_the_old_is_flagged(api: Api) -> None:
    doc = create(api, LECTURES)
    cells: dict[tuple[str, str], list[str]] = {}
    for variant in ("control", "double"):
        for birth in (YOUNG, OLD):
            cells[(variant, birth)] = [enrol_in(api, doc, variant, birth_date=birth) for _ in range(5)]
    # young: double 4/5 attend, control 0/5; old: double 0/5, control 4/5
    for pid in cells[("double", YOUNG)][:4] + cells[("control", OLD)][:4]:
        _lecture(api, pid)
    got = _results(api, doc["id"], "participation")
    rows = _table(got)
    young, old = rows[("double", "18-29")], rows[("double", "60-69")]
    # 0.8 - 0 = 0.8, SE = √(0.8·0.2/5) = 0.178885; CI [0.4494, 1.1506] excludes 0: better
    assert (young["diff"], young["ci_low"], young["ci_high"]) == pytest.approx((0.8, *_ci(0.8, math.sqrt(0.032))))
    assert (young["effect"], old["effect"]) == ("better", "worse")
    assert rows[("double", "all")]["effect"] == ""  # 0.4 vs 0.4 over everyone: the average hides it
    assert got["flags"] == [{"variant": "double", "helps": ["18-29"], "hurts": ["60-69"]}]
    assert all("helps 18-29, hurts 60-69" in r["flag"] for r in got["rows"] if r["variant"] == "double")
    assert all(r["flag"] == "" for r in got["rows"] if r["variant"] == "control")


def _start_in_the_past(body: dict[str, Any], started: datetime) -> dict[str, Any]:
    """An experiment that started at `started` (the service takes the clock; the API uses now)."""
    with write_tx() as session:
        doc, _ = service.create(session, ExperimentCreate.model_validate(body),
                                Actor("api_key", new_id(), "admin"), started)
        return service.start(session, doc["id"], Actor("api_key", new_id(), "admin"), started)


def test_check_in_completeness_is_a_mean_of_per_patient_shares(api: Api) -> None:
    tz = get_settings().tz
    first = local_date(utc_now(), tz) - timedelta(days=3)
    start = day_start_utc(first, tz) + timedelta(hours=12)  # noon 3 days ago: 4 local days up to today
    doc = _start_in_the_past(design(), start)
    day = [start + timedelta(days=k, seconds=1) for k in range(3)] + [utc_now() - timedelta(seconds=1)]

    def enrol(variant: str) -> str:
        return enrol_in(api, doc, variant, research_since=start - timedelta(days=1))

    def readings(pid: str, *ats: datetime, provenance: str = "device") -> None:
        api.batch([event(pid, "health.measurement", at, bp(provenance)) for at in ats])

    p1, p2, p3 = enrol("control"), enrol("control"), enrol("control")
    p4, p5, p6 = enrol("double"), enrol("double"), enrol("double")
    readings(p1, day[0], day[2])  # 2 of 4 days
    readings(p2, day[1], provenance="clinic")  # a clinic reading is no self-measurement: 0 of 4
    readings(p2, start - timedelta(days=1))  # before the start: 0 of 4
    readings(p3, *day)  # 4 of 4
    readings(p4, *day)  # 4 of 4
    readings(p5, day[0], day[1], day[3])  # 3 of 4
    readings(p6, day[1], day[1] + timedelta(minutes=5), day[2])  # 2 days of 4
    rows = _table(_results(api, doc["id"], "checkin_completeness"))
    control, double = rows[("control", "all")], rows[("double", "all")]
    # control: 0.5, 0, 1 → mean 0.5, s² = (0 + 0.25 + 0.25) / 2 = 0.25
    # double: 1, 0.75, 0.5 → mean 0.75, s² = (0.0625 + 0 + 0.0625) / 2 = 0.0625
    assert (control["n"], control["value"], double["n"], double["value"]) == (3, 0.5, 3, 0.75)
    low, high = _ci(0.25, math.sqrt(0.0625 / 3 + 0.25 / 3))
    assert (double["diff"], double["ci_low"], double["ci_high"]) == pytest.approx((0.25, low, high))
    assert (round(low, 5), round(high, 5)) == (-0.38258, 0.88258)
    assert set(rows) == {("control", "all"), ("control", "unknown"), ("double", "all"), ("double", "unknown")}


def test_no_show_rate_counts_each_appointment_once(api: Api) -> None:
    doc = create(api, design("fewer_no_shows", [{"rule": "on_time", "points": 30}]))

    def report(pid: str, type_: str, appointment: str, source: str = "his") -> dict[str, Any]:
        slot = (utc_now() - timedelta(hours=1)).isoformat()
        attrs: dict[str, Any] = {"appointment_id": appointment, "slot_start": slot}
        if type_ == "appointment.attended":
            attrs["booked_at"] = (utc_now() - timedelta(days=5)).isoformat()
        return api.send(event(pid, type_, utc_now(), attrs, source=source))

    c1, c2 = enrol_in(api, doc, "control"), enrol_in(api, doc, "control")
    d1, d2 = enrol_in(api, doc, "double"), enrol_in(api, doc, "double")
    report(c1, "appointment.attended", "a1")
    report(c1, "appointment.no_show", "a2")
    report(c2, "appointment.no_show", "a3")
    report(c2, "appointment.no_show", "a3", source="scheduling")  # reported twice: one missed appointment
    report(c2, "appointment.no_show", "a4")
    report(c2, "appointment.attended", "a4")  # the HIS says attended after all: attended
    for a in ("b1", "b2", "b3"):
        report(d1, "appointment.attended", a)
    wrong = report(d1, "appointment.no_show", "b4")
    assert api.post(f"/events/{wrong['event_id']}/revoke", {"reason": "HIS correction"}).status_code == 200
    report(d2, "appointment.no_show", "b5")
    rows = _table(_results(api, doc["id"], "no_show_rate"))
    control, double = rows[("control", "all")], rows[("double", "all")]
    # control: a1..a4, missed a2 and a3 → 2/4; double: b1, b2, b3, b5 (b4 revoked), missed b5 → 1/4
    assert (control["patients"], control["n"], control["value"]) == (2, 4, 0.5)
    assert (double["patients"], double["n"], double["value"]) == (2, 4, 0.25)
    # -0.25, SE = √(0.25·0.75/4 + 0.5·0.5/4) = √0.109375
    assert (double["diff"], double["ci_low"], double["ci_high"]) == pytest.approx(
        (-0.25, *_ci(-0.25, math.sqrt(0.109375))))
    assert double["effect"] == ""


def test_parameters_have_defaults_and_are_checked(api: Api) -> None:
    empty = _results(api, None)
    assert (empty["rows"], empty["experiment"], empty["outcome"]) == ([], None, "participation")
    draft = create(api, design("draft_only"), start=False)
    assert _results(api, draft["id"])["rows"] == []
    first = create(api, LECTURES)
    later = create(api, design("review_more", [{"rule": "review", "points": 40}]))
    assert _results(api, None)["experiment"]["id"] == later["id"]  # the one started last
    assert _results(api, first["id"])["experiment"]["id"] == first["id"]
    error(api.get("/analytics/experiment_results", params={"outcome": "happiness"}), 422,
          "experiments.unknown_outcome")
    error(api.get("/analytics/experiment_results", params={"experiment_id": "0190a5f0-0000-7000-8000-000000000000"}),
          404, "experiments.not_found")
    error(api.get("/analytics/experiment_results", params={"experiment_id": "nope"}), 404, "experiments.not_found")
    error(api.get("/analytics/experiment_results", params={"colour": "red"}), 422, "analytics.unknown_parameter")
    error(api.get("/analytics/experiment_results", key=api.make_key("integration")), 403, "auth.forbidden")


def test_the_statistics() -> None:
    def cell(values: list[float]) -> Cell:
        c = Cell()
        for v in values:
            c.add(v)
        return c

    # proportions 3/4 vs 1/4: 0.5 ± 1.96·√(0.1875/4 · 2)
    diff, low, high = difference(cell([1, 1, 1, 0]), cell([1, 0, 0, 0]), proportion=True)
    assert (diff, low, high) == pytest.approx((0.5, *_ci(0.5, math.sqrt(0.1875 / 4 * 2))))
    # means [2, 4] / 10 vs [1, 1, 4] / 10: s² = 0.02 and 0.03
    diff, low, high = difference(cell([0.2, 0.4]), cell([0.1, 0.1, 0.4]), proportion=False)
    assert (diff, low, high) == pytest.approx((0.1, *_ci(0.1, math.sqrt(0.02 / 2 + 0.03 / 3))))
    assert difference(cell([1]), cell([0, 1]), proportion=True) == (0.5, None, None)  # n < 2
    assert difference(cell([1, 1]), cell([0, 0]), proportion=True) == (1.0, None, None)  # SE 0
    assert difference(Cell(), cell([1, 0]), proportion=True) == (None, None, None)
    assert (effect(0.1, 0.3, False), effect(0.1, 0.3, True), effect(-0.3, -0.1, True), effect(-0.1, 0.1, False)) == (
        "better", "worse", "better", "")
    assert flag({"all": "better", "18-29": "better", "unknown": "worse"}) is None
    assert flag({"18-29": "better", "60-69": "worse", "70-79": "worse"}) == {"helps": ["18-29"],
                                                                            "hurts": ["60-69", "70-79"]}
