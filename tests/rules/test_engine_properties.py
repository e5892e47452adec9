"""Order independence of the pure engine (DESIGN.md "Rules"): for a set of
events none of which is revoked, caps, limits and streaks give the same
per-patient totals in any arrival order.

The events stay within one calendar year: across a year boundary the annual
cap makes the totals depend on which year a once-ever award or a streak unit
lands in, which is arrival order."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from carepoints.rules.engine import (
    CompiledProgramme,
    EventView,
    PatientState,
    ProgrammeSet,
    add_day,
    apply,
    evaluate,
    remove_day,
    streak_units,
)
from carepoints.rules.service import default_programme_text, parse_programme

TZ = ZoneInfo("Asia/Shanghai")
DEFAULT = parse_programme(default_programme_text())
PROGRAMMES = ProgrammeSet([CompiledProgramme(1, DEFAULT, TZ)])
LOW_CAP = 300  # about half the drawn sets exceed it
LOW_CAP_PROGRAMMES = ProgrammeSet([CompiledProgramme(1, DEFAULT.model_copy(
    update={"settings": DEFAULT.settings.model_copy(update={"annual_cap": LOW_CAP})}), TZ)])
NOW = datetime(2026, 12, 31, tzinfo=UTC)
FIRST_DAY = date(2026, 3, 1)  # a 60-day window inside 2026
SELF_MONITORING = ("self_reported", "device")

Event = tuple[str, datetime, dict[str, Any]]


def at(day: int, hour: int, minute: int) -> datetime:
    d = FIRST_DAY + timedelta(days=day)
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=TZ)


def iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


readings = st.dictionaries(
    st.integers(0, 59),
    st.lists(st.tuples(st.integers(0, 23), st.integers(0, 59), st.sampled_from(["self_reported", "device", "clinic"])),
             min_size=1, max_size=3),
    max_size=60)
referrals = st.lists(st.tuples(st.integers(0, 59), st.sampled_from(["R1", "R2", "R3", "R4", "R5"])), max_size=8)
reviews = st.lists(st.tuples(st.integers(0, 59), st.sampled_from(["A1", "A2", "A3", "A4"]), st.integers(45, 55),
                             st.booleans()), max_size=8)


@st.composite
def event_sets(draw: st.DrawFn) -> list[Event]:
    events: list[Event] = []
    for day, items in draw(readings).items():
        for hour, minute, provenance in items:
            events.append(("health.measurement", at(day, hour, minute), {
                "kind": "blood_pressure", "systolic": 130, "diastolic": 85, "provenance": provenance}))
    for day, referral_id in draw(referrals):
        events.append(("referral.visit", at(day, 10, 0), {"referral_id": referral_id, "from_institution": "CHC"}))
    for day, appointment_id, length, spaced in draw(reviews):
        text = "好" * length + ("\u3000\n " * 3 if spaced else "")
        events.append(("review.submitted", at(day, 20, 0), {"appointment_id": appointment_id, "rating": 4,
                                                             "text": text}))
    return events


def run(programmes: ProgrammeSet, events: list[Event]) -> tuple[Counter[str], list[tuple[Event, Any]], PatientState]:
    state = PatientState("p1")
    totals: Counter[str] = Counter()
    trace = []
    for n, (etype, when, attrs) in enumerate(events):
        decision = evaluate(programmes, EventView(f"e{n}", etype, when, attrs), state, NOW)
        apply(state, decision)
        for award in decision.awards:
            totals[award.rule] += award.points
        trace.append(((etype, when, attrs), decision))
    return totals, trace, state


def maximal_runs(days: set[date]) -> list[tuple[date, date]]:
    out: list[tuple[date, date]] = []
    for d in sorted(days):
        if out and out[-1][1] + timedelta(days=1) == d:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def expected_totals(events: list[Event]) -> Counter[str]:
    """The programme's arithmetic computed directly from the set of events."""
    per_day: Counter[date] = Counter()
    referral_ids: set[str] = set()
    reviewed: set[str] = set()
    for etype, when, attrs in events:
        if etype == "health.measurement" and attrs["provenance"] in SELF_MONITORING:
            per_day[when.astimezone(TZ).date()] += 1
        elif etype == "referral.visit":
            referral_ids.add(attrs["referral_id"])
        elif etype == "review.submitted" and attrs["text"].count("好") >= 50:
            reviewed.add(attrs["appointment_id"])
    lengths = [(end - start).days + 1 for start, end in maximal_runs(set(per_day))]
    totals = Counter({
        "first_checkin": 50 if per_day else 0,
        "health_checkin": sum(10 * min(2, n) for n in per_day.values()),
        "checkin_streak_7": 50 * sum(length // 7 for length in lengths),
        "checkin_streak_30": 200 * sum(length // 30 for length in lengths),
        "referral": 200 * len(referral_ids),
        "review": 20 * len(reviewed),
    })
    return +totals  # drop zeros


def health_points_per_local_day(trace: list[tuple[Event, Any]]) -> Counter[date]:
    out: Counter[date] = Counter()
    for (_etype, when, _attrs), decision in trace:
        for award in decision.awards:
            if award.rule == "health_checkin":
                out[when.astimezone(TZ).date()] += award.points
    return out


@given(st.data())
def test_per_rule_totals_do_not_depend_on_arrival_order(data: st.DataObject) -> None:
    events = data.draw(event_sets())
    first = data.draw(st.permutations(events))
    second = data.draw(st.permutations(events))
    totals_a, trace_a, state_a = run(PROGRAMMES, first)
    totals_b, trace_b, _ = run(PROGRAMMES, second)
    expected = expected_totals(events)
    assert totals_a == expected
    assert totals_b == expected
    assert sum(totals_a.values()) == sum(totals_b.values())
    assert state_a.counters.get("annual:2026", 0) == sum(expected.values())
    for trace in (trace_a, trace_b):
        assert all(points <= 20 for points in health_points_per_local_day(trace).values())


@given(st.data())
def test_annual_and_daily_caps_are_never_exceeded(data: st.DataObject) -> None:
    events = data.draw(event_sets())
    uncapped = sum(expected_totals(events).values())
    earned = []
    for _ in range(2):
        totals, trace, state = run(LOW_CAP_PROGRAMMES, data.draw(st.permutations(events)))
        per_year: defaultdict[int, int] = defaultdict(int)
        for (_etype, when, _attrs), decision in trace:
            per_year[when.astimezone(TZ).year] += sum(a.points for a in decision.awards if a.points > 0)
        assert all(points <= LOW_CAP for points in per_year.values())
        assert state.counters.get("annual:2026", 0) == sum(totals.values())
        assert all(points <= 20 for points in health_points_per_local_day(trace).values())
        for key, used in state.counters.items():
            if ":d:" in key:
                assert used <= 20, key
        earned.append(sum(totals.values()))
    assert earned == [min(LOW_CAP, uncapped)] * 2


@given(st.sets(st.integers(0, 90), max_size=70), st.data())
def test_streak_units_paid_in_any_insertion_order_are_the_sum_over_final_runs(
        offsets: set[int], data: st.DataObject) -> None:
    order = data.draw(st.permutations(sorted(offsets)))
    runs: list[tuple[date, date]] = []
    paid = {7: 0, 30: 0}
    for offset in order:
        day = FIRST_DAY + timedelta(days=offset)
        added = add_day(runs, day)
        assert added is not None
        runs, merged, length = added
        assert add_day(runs, day) is None  # now counted
        for n in paid:
            paid[n] += streak_units(n, merged, length)
    days = {FIRST_DAY + timedelta(days=o) for o in offsets}
    assert runs == maximal_runs(days)
    lengths = [(end - start).days + 1 for start, end in runs]
    assert paid == {n: sum(length // n for length in lengths) for n in paid}
    for d in days:
        assert remove_day(runs, d) == maximal_runs(days - {d})
