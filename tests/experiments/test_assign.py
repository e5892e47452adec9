"""The assignment hash and arms (pure), and the engine applying a variant's overrides
(DB-free, against the default programme)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from carepoints.experiments import assign
from carepoints.experiments.schemas import ExperimentCreate, RuleOverride
from carepoints.rules.engine import CompiledProgramme, EventView, PatientState, ProgrammeSet, apply, evaluate
from carepoints.rules.service import default_programme_text, parse_programme

TZ = ZoneInfo("Asia/Shanghai")
PROGRAMMES = ProgrammeSet([CompiledProgramme(1, parse_programme(default_programme_text()), TZ)])
T0 = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=30)
EXP = "0190a5f0-1111-7000-8000-000000000001"
IDS = [str(uuid.UUID(int=i * 7919 + 13)) for i in range(2000)]
ROOT = Path(__file__).resolve().parents[2]


def test_a_bucket_is_sha256_of_the_two_ids() -> None:
    import hashlib

    digest = hashlib.sha256(f"{EXP}:{IDS[0]}".encode()).digest()
    assert assign.bucket(EXP, IDS[0], 7) == int.from_bytes(digest[:8], "big") % 7
    assert [assign.pick([1, 3], p) for p in range(4)] == [0, 1, 1, 1]
    with pytest.raises(ValueError, match="outside"):
        assign.pick([1, 3], 4)


def test_the_assignment_is_the_same_in_another_process() -> None:
    here = [assign.variant_index(EXP, [1, 1, 2], pid) for pid in IDS[:200]]
    code = ("import json, sys; from carepoints.experiments.assign import variant_index; "
            "ids = json.loads(sys.stdin.read()); "
            f"print(json.dumps([variant_index({EXP!r}, [1, 1, 2], i) for i in ids]))")
    # a new interpreter has another hash() salt: PYTHONHASHSEED=random makes sure of it
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(IDS[:200]), capture_output=True,
                          text=True, check=True, cwd=ROOT, env={"PYTHONHASHSEED": "random", "PATH": ""})
    assert json.loads(proc.stdout) == here
    assert here == [assign.variant_index(EXP, [1, 1, 2], pid) for pid in IDS[:200]]  # and again in this one
    assert set(here) == {0, 1, 2}


def test_the_split_follows_the_weights() -> None:
    counts = Counter(assign.variant_index(EXP, [1, 3], pid) for pid in IDS)
    # 2,000 draws of p = 0.25: sd ≈ 19.4, so ±4 sd is ±78
    assert abs(counts[0] - 500) < 78
    assert counts[0] + counts[1] == 2000
    other = Counter(assign.variant_index("0190a5f0-1111-7000-8000-000000000002", [1, 3], pid) for pid in IDS)
    same = sum(assign.variant_index(EXP, [1, 1], p) == assign.variant_index(EXP[:-1] + "2", [1, 1], p) for p in IDS)
    assert abs(other[0] - 500) < 78
    assert 800 < same < 1200  # two experiments split patients independently


def _experiment(started: datetime, stopped: datetime | None, treatment: list[dict[str, Any]]) -> assign.Compiled:
    return assign.Compiled.of(EXP, "bp_points", started, stopped,
                              [{"code": "control", "weight": 1}, {"code": "double", "weight": 1,
                                                                   "overrides": treatment}])


def _patient_in(exp: assign.Compiled, variant: str) -> str:
    return next(p for p in IDS if exp.variant_of(p).code == variant)


def test_an_arm_is_the_running_window_within_the_research_consent() -> None:
    exp = _experiment(T0, T0 + timedelta(days=10), [{"rule": "health_checkin", "points": 20}])
    pid = _patient_in(exp, "double")
    assert assign.arms([exp], pid, []) == []
    [arm] = assign.arms([exp], pid, [(T0 - timedelta(days=5), None)])
    assert (arm.experiment, arm.variant, arm.starts_at, arm.ends_at) == ("bp_points", "double", T0,
                                                                         T0 + timedelta(days=10))
    withdrawn = T0 + timedelta(days=3)
    regranted = T0 + timedelta(days=5)
    spans = [(T0 - timedelta(days=5), withdrawn), (regranted, None), (T0 - timedelta(days=9), T0)]
    windows = [(a.starts_at, a.ends_at) for a in assign.arms([exp], pid, spans)]
    assert windows == [(T0, withdrawn), (regranted, T0 + timedelta(days=10))]  # the last span ends at the start
    arm = assign.arms([exp], pid, spans)[0]
    assert arm.holds(T0)
    assert not arm.holds(withdrawn)
    assert not arm.holds(T0 - timedelta(seconds=1))


def _bp(at: datetime) -> EventView:
    return EventView(uuid.uuid4().hex, "health.measurement", at,
                     {"kind": "blood_pressure", "systolic": 130, "diastolic": 80, "provenance": "device"})


def _run(state: PatientState, *ats: datetime) -> list[list[tuple[str, int]]]:
    out = []
    for at in ats:
        decision = evaluate(PROGRAMMES, _bp(at), state, NOW)
        apply(state, decision)
        out.append([(a.rule, a.points) for a in decision.awards])
    return out


def test_the_engine_applies_the_arm_in_force_at_the_event() -> None:
    exp = _experiment(T0, T0 + timedelta(days=10),
                      [{"rule": "health_checkin", "points": 15, "daily_points": 45},
                       {"rule": "first_checkin", "enabled": False}])
    treated, control = _patient_in(exp, "double"), _patient_in(exp, "control")
    consent = [(T0 - timedelta(days=1), None)]
    state = PatientState(treated, arms=assign.arms([exp], treated, consent))
    day1 = T0 + timedelta(hours=1)
    assert _run(state, day1, day1 + timedelta(minutes=1), day1 + timedelta(minutes=2), day1 + timedelta(minutes=3)) == [
        [("health_checkin", 15)], [("health_checkin", 15)], [("health_checkin", 15)], []]  # cap 45, no first
    capped = evaluate(PROGRAMMES, _bp(day1 + timedelta(minutes=4)), state, NOW)
    assert [(n.code, n.message) for n in capped.notices] == [("rules.daily_cap", "今日「健康打卡」积分已达上限45分")]
    assert capped.experiments == [{"code": "bp_points", "variant": "double"}]
    after = T0 + timedelta(days=11)  # stopped: the programme as it is
    decision = evaluate(PROGRAMMES, _bp(after), state, NOW)
    assert [(a.rule, a.points) for a in decision.awards] == [("first_checkin", 50), ("health_checkin", 10)]
    assert decision.experiments == []
    before = evaluate(PROGRAMMES, _bp(T0 - timedelta(days=1)), state, NOW)  # before the start
    assert [(a.rule, a.points) for a in before.awards] == [("first_checkin", 50), ("health_checkin", 10)]

    ctrl = PatientState(control, arms=assign.arms([exp], control, consent))
    decision = evaluate(PROGRAMMES, _bp(day1), ctrl, NOW)
    assert [(a.rule, a.points, a.message) for a in decision.awards] == [
        ("first_checkin", 50, "首次完成健康打卡,额外奖励50积分!"), ("health_checkin", 10, "健康打卡,奖励10积分")]
    assert decision.experiments == [{"code": "bp_points", "variant": "control"}]  # the control arm is traced too
    other = evaluate(PROGRAMMES, EventView("x", "selfservice.used", day1, {"action": "pay"}), ctrl, NOW)
    assert other.experiments == []  # no rule of the experiment scores it
    outside = PatientState(treated)  # no research consent: no arm
    assert [(a.rule, a.points) for a in evaluate(PROGRAMMES, _bp(day1), outside, NOW).awards] == [
        ("first_checkin", 50), ("health_checkin", 10)]


def test_a_disabled_multiplier_stops_doubling() -> None:
    exp = _experiment(T0, None, [{"rule": "off_peak", "enabled": False}])
    treated, control = _patient_in(exp, "double"), _patient_in(exp, "control")
    slot = datetime(2026, 6, 3, 10, 15, tzinfo=TZ)  # a Wednesday, in the 10:00-11:00 window
    ev = EventView("e", "exam.attended", slot + timedelta(minutes=20),
                   {"exam_id": "x1", "modality": "CT", "slot_start": slot.isoformat()})
    consent = [(T0, None)]
    got = {pid: [(a.rule, a.points) for a in evaluate(
        PROGRAMMES, ev, PatientState(pid, arms=assign.arms([exp], pid, consent)), NOW).awards]
        for pid in (treated, control)}
    assert got == {treated: [("exam_attended", 10)], control: [("exam_attended", 20)]}


@pytest.mark.parametrize(("override", "problem"), [
    ({"rule": "health_checkin"}, "changes points"),
    ({"rule": "health_checkin", "points": 0}, "must not be zero"),
    ({"rule": "health_checkin", "enabled": False, "points": 5}, "disabled"),
    ({"rule": "Bad-Code", "points": 5}, "should match pattern"),
    ({"rule": "health_checkin", "points": 5, "colour": "red"}, "Extra inputs"),
])
def test_an_override_is_typed(override: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        RuleOverride.model_validate(override)


def test_an_experiment_has_distinct_variants_and_some_override() -> None:
    base = {"code": "x", "names": {"zh": "试验", "en": "Trial"}, "ethics_ref": "2026-伦审-001"}
    with pytest.raises(ValidationError, match="distinct"):
        ExperimentCreate.model_validate({**base, "variants": [{"code": "a"}, {"code": "a", "overrides": [
            {"rule": "review", "points": 30}]}]})
    with pytest.raises(ValidationError, match="no variant overrides"):
        ExperimentCreate.model_validate({**base, "variants": [{"code": "a"}, {"code": "b"}]})
    with pytest.raises(ValidationError, match="at most once"):
        ExperimentCreate.model_validate({**base, "variants": [{"code": "a"}, {"code": "b", "overrides": [
            {"rule": "review", "points": 30}, {"rule": "review", "enabled": False}]}]})
    with pytest.raises(ValidationError, match="at least 2"):
        ExperimentCreate.model_validate({**base, "variants": [{"code": "a"}]})
