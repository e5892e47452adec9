"""`GET /api/v1/analytics/care` (health KPIs) on a small world built through the real services
(enrolment, the chronic-disease registry, readings and public-health events through ingest, a
paper entry, a revoked reading, follow-up plans answered and cancelled), rolled up by the job.

The world (ages hold on every day of the test; everyone enrolled at T0 except C7):
C1 70 M hypertension, C2 50 M diabetes, C3 30 F, C4 66 F, C5 30 F, C6 64 M, and C7 45 M, enrolled
on W2's Thursday with hypertension recorded that day.
Self-measured readings: C1 every day of W1, on Monday, Wednesday (twice) and Friday of W2 (a
clinic reading on Tuesday and a revoked one on Saturday do not count); C2 on W1's Tuesday; C3
on W2's Monday and Tuesday; C7 on W2's Friday.
Public health: C1 vaccination in W1; in W2 C4 an elderly checkup and a vaccination (from a
paper sheet), C5 a prenatal exam and a vaccination, C6 (64: not eligible) an elderly checkup.
Follow-ups: C1 two steps due in W2 (Wednesday answered, Sunday not); C3 one due in W1, answered;
C2 one due in W2 whose plan was cancelled (no part).

W2 by hand: follow-ups 1/2; chronic patient-days C1 7 + C2 7 + C7 4 = 18 with readings on C1 3 +
C7 1 = 4 → 0.2222; every patient: 6 × 7 + 4 = 46 days, 3 + 2 + 1 = 6 with readings → 0.1304;
vaccination C4, C5 of 7 enrolled → 0.2857; elderly checkup C4 of C1, C4 (≥ 65) → 0.5; prenatal
C5 of C3, C5 (women 15-49) → 0.5. W1: 1/1; chronic 14 days, 8 with readings → 0.5714; all 8/42
→ 0.1905; vaccination C1 of 6 → 0.1667; elderly 0/2; prenatal 0/2."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from carepoints.engagement.followups import service as followups
from carepoints.engagement.followups.schemas import PlanCancel
from carepoints.events import service as events
from carepoints.kit.db import write_tx
from tests.analytics import visits_kit as kit
from tests.analytics.visits_kit import T0, W1, W2, at, born, window
from tests.helpers import bp, enrol, error, event, ingest_one

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

KPIS = ("followups_due", "followups_completed", "followup_completion", "checkin_days", "enrolled_days",
        "checkin_completeness", "checkin_completeness_all", "vaccination_coverage", "elderly_checkup_coverage",
        "prenatal_coverage")
NOW_KPIS = tuple(f"value_{k}" for k in KPIS)
BEFORE_KPIS = tuple(f"previous_{k}" for k in KPIS)
WEEK2 = window(W2, W2 + timedelta(days=6))


def day(week: date, i: int) -> date:
    return week + timedelta(days=i)


def reading(pid: str, d: date, hhmm: str = "08:00", provenance: str = "device") -> dict[str, Any]:
    when = at(d, hhmm)
    return ingest_one(when, event(pid, "health.measurement", when, bp(provenance, 122, 78)))


def public_health(pid: str, d: date, programme: str, offline: bool = False) -> None:
    when = at(d, "10:00")
    attrs = {"programme": programme, "item": f"{programme}-1"}
    if offline:
        ev = event(pid, "staff.offline_entry", when, {"behaviour": "public_health.completed", "attributes": attrs,
                                                      "sheet_ref": "S-1", "staff_id": "desk-1"}, source="staff:desk-1")
    else:
        ev = event(pid, "public_health.completed", when, attrs, source="his")
    ingest_one(when, ev)


def care_world() -> dict[str, str]:
    h = kit.Hospital(at(T0 - timedelta(days=1), "09:00"))
    h.institution("h1")
    enrolled = at(T0, "09:00")
    people = {"C1": (70, "male"), "C2": (50, "male"), "C3": (30, "female"), "C4": (66, "female"),
              "C5": (30, "female"), "C6": (64, "male")}
    p = {name: enrol(enrolled, birth_date=born(age), sex=sex) for name, (age, sex) in people.items()}
    kit.condition(p["C1"], "hypertension", enrolled, T0 - timedelta(days=10))
    kit.condition(p["C2"], "diabetes", enrolled, T0 - timedelta(days=10))
    thursday = day(W2, 3)
    p["C7"] = enrol(at(thursday, "09:00"), birth_date=born(45), sex="male")
    kit.condition(p["C7"], "hypertension", at(thursday, "10:00"))
    for i in range(7):
        reading(p["C1"], day(W1, i))
    reading(p["C2"], day(W1, 1))
    for i in (0, 2, 4):
        reading(p["C1"], day(W2, i))
    reading(p["C1"], day(W2, 2), "20:00")
    reading(p["C1"], day(W2, 1), provenance="clinic")
    revoked = reading(p["C1"], day(W2, 5))
    with write_tx() as s:
        events.revoke(s, now=at(day(W2, 5), "12:00"), reason="wrong cuff", event_id=revoked["event_id"])
    reading(p["C3"], day(W2, 0))
    reading(p["C3"], day(W2, 1))
    reading(p["C7"], day(W2, 4))
    public_health(p["C1"], day(W1, 2), "vaccination")
    public_health(p["C4"], day(W2, 1), "elderly_checkup")
    public_health(p["C4"], day(W2, 1), "vaccination", offline=True)
    public_health(p["C5"], day(W2, 2), "prenatal")
    public_health(p["C5"], day(W2, 2), "vaccination")
    public_health(p["C6"], day(W2, 3), "elderly_checkup")
    steps = kit.plan(p["C1"], W2 - timedelta(days=1), [3, 7], at(W2 - timedelta(days=1), "09:00"))["steps"]
    kit.answer(steps[0]["id"], at(day(W2, 2), "09:00"))
    steps = kit.plan(p["C3"], W1, [3], at(W1, "09:00"))["steps"]
    kit.answer(steps[0]["id"], at(day(W1, 3), "09:00"))
    cancelled = kit.plan(p["C2"], W2, [3], at(W2, "09:00"))
    with write_tx() as s:
        followups.cancel_plan(s, cancelled["id"], PlanCancel.model_validate({"reason": "readmitted"}), kit.STAFF,
                              at(day(W2, 1), "09:00"))
    return p


def care(api: Api, **params: Any) -> dict[str, Any]:
    r = api.get("/analytics/care", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_health_kpis_with_the_previous_week_by_age_band_and_condition(api: Api) -> None:
    care_world()
    kit.rollup()
    doc = care(api, **WEEK2)
    total = doc["rows"][0]
    assert kit.pick(total, *NOW_KPIS) == (2, 1, 0.5, 4, 18, 0.2222, 0.1304, 0.2857, 0.5, 0.5)
    assert kit.pick(total, *BEFORE_KPIS) == (1, 1, 1.0, 8, 14, 0.5714, 0.1905, 0.1667, 0.0, 0.0)
    assert [c["type"] for c in doc["charts"]] == ["gauge", "bar"]

    bands = kit.rows_by_key(care(api, by="age_band", **WEEK2))
    assert [k for k in bands if k] == ["30-39", "40-49", "50-59", "60-69", "70-79"]
    assert {k: kit.pick(r, *NOW_KPIS) for k, r in bands.items() if k} == {
        "30-39": (0, 0, None, 0, 0, None, 0.1429, 0.5, None, 0.5),  # C3 read on 2 of 14 days; C5 vaccinated
        "40-49": (0, 0, None, 1, 4, 0.25, 0.25, 0.0, None, None),  # C7 from Thursday
        "50-59": (0, 0, None, 0, 7, 0.0, 0.0, 0.0, None, None),  # C2; the cancelled step takes no part
        "60-69": (0, 0, None, 0, 0, None, 0.0, 0.5, 1.0, None),  # C4 (66) and C6 (64: not eligible)
        "70-79": (2, 1, 0.5, 3, 7, 0.4286, 0.4286, 0.0, 0.0, None),  # C1
    }
    assert kit.pick(bands["30-39"], *BEFORE_KPIS) == (1, 1, 1.0, 0, 0, None, 0.0, 0.0, None, 0.0)

    conds = kit.rows_by_key(care(api, by="condition", **WEEK2))
    assert {k: kit.pick(r, *NOW_KPIS) for k, r in conds.items() if k} == {
        "hypertension": (2, 1, 0.5, 4, 11, 0.3636, 0.3636, 0.0, 0.0, None),  # C1 and C7
        "diabetes": (0, 0, None, 0, 7, 0.0, 0.0, 0.0, None, None),
        "none": (0, 0, None, 0, 0, None, 0.0714, 0.5, 1.0, 0.5),  # C3, C4, C5, C6
    }
    assert conds["none"]["name"] == "无慢病 / No chronic condition"

    # a filter on the band and a breakdown by condition; department and channel do not apply to health data
    doc = care(api, age_band="70-79", by="condition", department_id="x", **WEEK2)
    assert doc["ignored_filters"] == ["department_id"]
    rows = kit.rows_by_key(doc)
    assert kit.pick(rows[None], *NOW_KPIS) == (2, 1, 0.5, 3, 7, 0.4286, 0.4286, 0.0, 0.0, None)
    assert kit.pick(rows["hypertension"], *NOW_KPIS) == (2, 1, 0.5, 3, 7, 0.4286, 0.4286, 0.0, 0.0, None)
    assert kit.pick(care(api, condition="diabetes", **WEEK2)["rows"][0], *NOW_KPIS) == (
        0, 0, None, 0, 7, 0.0, 0.0, 0.0, None, None)

    # the two weeks together, counted live from the facts (not a single week): vaccinated C1, C4, C5 of 7
    both = care(api, start=W1.isoformat(), end=WEEK2["end"])["rows"][0]
    assert kit.pick(both, *NOW_KPIS) == (3, 2, 0.6667, 12, 32, 0.375, 0.1591, 0.4286, 0.5, 0.5)


def test_a_rerun_changes_nothing(api: Api) -> None:
    care_world()
    kit.rollup()
    before = kit.stored()
    assert before["analytics_care_daily"]
    assert before["analytics_public_health"]
    kit.rollup()
    assert kit.stored() == before


def test_today_is_live_on_yesterdays_population(api: Api) -> None:
    today, yesterday = kit.today(), kit.today() - timedelta(days=1)
    kit.Hospital(at(yesterday, "08:00")).institution("h1")
    chronic = enrol(at(yesterday, "09:00"), birth_date=born(70))
    kit.condition(chronic, "hypertension", at(yesterday, "09:00"), yesterday - timedelta(days=30))
    other = enrol(at(yesterday, "09:00"), birth_date=born(30), sex="female")
    only_today = {"start": today.isoformat(), "end": today.isoformat()}
    # nothing rolled up yet: today's population is counted live
    reading(chronic, today, "00:10")
    assert kit.pick(care(api, **only_today)["rows"][0], *NOW_KPIS)[3:7] == (1, 1, 1.0, 0.5)
    kit.rollup()
    # rolled up: today reuses yesterday's population (2 enrolled, 1 chronic); today's new patient and
    # their reading count from tomorrow
    newcomer = enrol(at(today, "00:01"), birth_date=born(40))
    reading(newcomer, today, "00:20")
    reading(other, today, "00:30")
    public_health(other, today, "prenatal")
    doc = care(api, **only_today)
    assert kit.pick(doc["rows"][0], *NOW_KPIS) == (0, 0, None, 1, 1, 1.0, 1.0, 0.0, 0.0, 1.0)
    # yesterday, rolled up: both enrolled, no reading
    assert kit.pick(doc["rows"][0], *BEFORE_KPIS) == (0, 0, None, 0, 1, 0.0, 0.0, 0.0, 0.0, 0.0)


def test_bad_input(api: Api) -> None:
    error(api.get("/analytics/care", params={"by": "department"}), 422, "analytics.bad_breakdown")
    error(api.get("/analytics/care", params={"condition": "flu"}), 422, "analytics.bad_filter")
    error(api.get("/analytics/care", params={"outcome": "x"}), 422, "analytics.unknown_parameter")
