"""Demand forecast benchmark (智能号源): how far off is the forecast on a held-back month?

    .venv/bin/python bench/forecast.py [--weeks 26] [--seed 11] [--keep PATH]

Generates a booking history in a temporary SQLite database (migrated like any install) through
the real tables: four departments, each with its own weekly and daily pattern, a trend, Poisson
noise, a holiday week (春节-like: demand down to a fifth) and a few single quiet days, one clinician
per department with a morning and an afternoon session a day (10-minute slots). Demand above a
session's capacity is censored the way a hospital sees it: 70% of the patients turned away join
the waitlist (候补, recorded), the rest leave without a trace. Then it runs the forecast exactly as
the admin does (services.forecast.prepare: the demand per department, day and hour read back from
the tables, the last 28 days held back) and prints WAPE and MAE per model and department,
the model chosen for each, and the pooled WAPE over every department's held-back hours.

WAPE = Σ|actual − forecast| / Σ actual over every held-back day × hour cell; the "actual" is the
recorded demand (bookings + waitlist entries), not the true one, since nothing else is known."""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time as clock
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

# name, code, per ISO weekday a day's mean patients, hour weights of the two sessions, trend per week
DEPARTMENTS: list[tuple[str, str, str, dict[int, float], dict[int, float], float]] = [
    ("心内科", "Cardiology", "card", {1: 70, 2: 55, 3: 52, 4: 50, 5: 58, 6: 20, 7: 0},
     {8: 1.3, 9: 1.6, 10: 1.2, 11: 0.7, 14: 1.0, 15: 0.9, 16: 0.5}, 0.006),
    ("儿科", "Paediatrics", "paed", {1: 48, 2: 40, 3: 38, 4: 40, 5: 45, 6: 62, 7: 55},
     {8: 1.0, 9: 1.4, 10: 1.3, 11: 0.9, 14: 1.1, 15: 1.2, 16: 1.0}, 0.0),
    ("骨科", "Orthopaedics", "orth", {1: 30, 2: 34, 3: 36, 4: 33, 5: 28, 6: 8, 7: 0},
     {8: 1.1, 9: 1.2, 10: 1.0, 11: 0.6, 14: 0.9, 15: 0.7, 16: 0.4}, -0.004),
    ("皮肤科", "Dermatology", "derm", {1: 12, 2: 9, 3: 10, 4: 9, 5: 11, 6: 14, 7: 0},
     {8: 0.8, 9: 1.2, 10: 1.2, 11: 0.8, 14: 1.0, 15: 1.0, 16: 0.6}, 0.01),
]
SESSIONS = ((time(8), time(12)), (time(14), time(17)))
SLOT_MINUTES = 10  # 24 slots in the morning, 18 in the afternoon
WAITLIST_SHARE = 0.7


def _setup(path: Path) -> None:
    import os

    os.environ["CAREPOINTS_DATABASE_URL"] = f"sqlite:///{path}"
    os.environ.setdefault("CAREPOINTS_SCHEDULER", "off")
    from carepoints import bootstrap
    from carepoints.config import reset_settings
    from carepoints.kit.db import dispose_engines

    dispose_engines()
    reset_settings()
    bootstrap.prepare()


def _daily_demand(rng: np.random.Generator, days: list[date], week: dict[int, float], trend: float) -> list[float]:
    holiday = set(days[len(days) // 3: len(days) // 3 + 7])  # a holiday week a third of the way in
    quiet = {days[int(i)] for i in rng.choice(len(days), size=4, replace=False)}
    out = []
    for i, day in enumerate(days):
        mean = week[day.isoweekday()] * (1 + trend * i / 7)
        if day in holiday:
            mean *= 0.2
        elif day in quiet:
            mean *= 0.5
        out.append(max(0.0, mean))
    return out


def generate(weeks: int, seed: int, now: datetime) -> dict[str, Any]:
    """The hospital and its history in the configured database; returns counts."""
    from sqlalchemy import select, update

    from carepoints.config import get_settings
    from carepoints.enrolment import service as enrolment
    from carepoints.kit.bulk import insert_rows
    from carepoints.kit.db import write_tx
    from carepoints.kit.time import as_utc
    from carepoints.patients.schemas import PatientCreate
    from carepoints.scheduling import repository as sched
    from carepoints.scheduling import service as sch
    from carepoints.scheduling.schemas import ClinicianCreate, DepartmentCreate, InstitutionCreate, SessionCreate

    rng = np.random.default_rng(seed)
    tz = get_settings().tz
    today = now.astimezone(tz).date()
    days = [today - timedelta(days=d) for d in range(7 * weeks, 0, -1)]
    with write_tx() as s:
        patients = [enrolment.enrol(s, PatientCreate.model_validate({
            "name": "测试患者", "phone": f"1390001{k:04d}",
            "consent": {"version": "1.0", "accepted_at": (now - timedelta(days=400)).isoformat()}}),
            now - timedelta(days=400))[0] for k in range(20)]
        inst = sch.create_institution(s, InstitutionCreate(code="bench", name_zh="示范医院", name_en="Bench Hospital"),
                                      now)
    counts: dict[str, Any] = {"sessions": 0, "bookings": 0, "waitlist": 0, "turned_away": 0, "true_demand": 0,
                              "truth": {}}
    n = 0
    for name_zh, name_en, code, week, hours, trend in DEPARTMENTS:
        with write_tx() as s:
            dep = sch.create_department(s, DepartmentCreate(institution_id=inst["id"], code=code, name_zh=name_zh,
                                                            name_en=name_en), now)
            doc = sch.create_clinician(s, ClinicianCreate(department_id=dep["id"], code=f"{code}1", name="王医生",
                                                          title="主任医师"), now)
            totals = _daily_demand(rng, days, week, trend)
            scale = sum(hours.values())
            truth = counts["truth"].setdefault(name_en, {})
            appts: list[dict[str, Any]] = []
            entries: list[dict[str, Any]] = []
            for day, total in zip(days, totals, strict=True):
                if week[day.isoweekday()] == 0:
                    continue
                for start, end in SESSIONS:
                    sess = sch.create_session(s, SessionCreate(
                        clinician_id=doc["id"], date=day, start=start, end=end, slot_minutes=SLOT_MINUTES,
                        fee_cny=Decimal("20"), level="general", pattern=["online"], referral_share=Decimal(0),
                        release_at=now - timedelta(days=800)), now)
                    counts["sessions"] += 1
                    conn = s.connection()
                    slots = conn.execute(select(sched.slots).where(sched.slots.c.session_id == sess["id"])
                                         .order_by(sched.slots.c.seq)).mappings().all()
                    by_hour: dict[int, list[Any]] = {}
                    for slot in slots:
                        by_hour.setdefault(as_utc(slot["starts_at"]).astimezone(tz).hour, []).append(slot)
                    excess = 0
                    for h, hs in by_hour.items():
                        mean = total * hours.get(h, 0.0) / scale  # the true mean of that hour
                        wanted = int(rng.poisson(mean))
                        truth[(day, h)] = (mean, wanted)
                        counts["true_demand"] += wanted
                        # patients beyond the hour's slots join the waitlist (70%) or leave unrecorded
                        take = min(wanted, len(hs))
                        excess += wanted - take
                        for slot in hs[:take]:
                            n += 1
                            aid = str(uuid.uuid4())
                            conn.execute(update(sched.slots).where(sched.slots.c.id == slot["id"])
                                         .values(appointment_id=aid))
                            appts.append(_appointment(aid, patients[n % len(patients)], sess, slot, doc["id"], day, n))
                    joined = round(excess * WAITLIST_SHARE)
                    counts["waitlist"] += joined
                    counts["turned_away"] += excess - joined
                    entries.extend({"id": str(uuid.uuid4()), "session_id": sess["id"],
                                    "patient_id": patients[(n + k) % len(patients)], "channel": "online",
                                    "referral_id": None, "status": "lapsed", "idempotency_key": f"bw{n}-{k}",
                                    "joined_at": now - timedelta(days=400), "offered_at": None,
                                    "offer_expires_at": None, "slot_id": None, "appointment_id": None,
                                    "closed_at": None} for k in range(joined))
            insert_rows(s.connection(), sched.appointments, appts)
            insert_rows(s.connection(), sched.waitlist, entries)
            counts["bookings"] += len(appts)
    return counts


def _appointment(aid: str, pid: str, sess: dict[str, Any], slot: Any, clinician: str, day: date,
                 n: int) -> dict[str, Any]:
    status = "no_show" if n % 19 == 0 else "attended"
    return {"id": aid, "patient_id": pid, "session_id": sess["id"], "slot_id": slot["id"], "clinician_id": clinician,
            "resource_id": None, "clinician_guard": None, "day": day, "day_rank": 1, "seq": slot["seq"],
            "slot_start": slot["starts_at"], "slot_end": slot["ends_at"], "channel": "online", "referral_id": None,
            "booked_by": "patient", "status": status, "idempotency_key": f"b{n}", "request_hash": "bench",
            "booked_at": slot["starts_at"] - timedelta(days=2), "checked_in_at": None, "late": None,
            "priority": False, "attended_at": slot["starts_at"] if status == "attended" else None,
            "cancelled_at": None, "cancelled_by": None, "no_show_at": None, "history": []}


def _yardsticks(now: datetime, truth: dict[str, dict[tuple[date, int], tuple[float, int]]]
                ) -> list[tuple[str, float | None, float | None]]:
    """Per department: the chosen model's WAPE on the held-back daily totals, and the noise floor:
    the WAPE of the true hourly means against the patients who really wanted each hour (uncensored)."""
    from carepoints.config import get_settings
    from carepoints.kit.db import read_tx
    from carepoints.scheduling import service as sch
    from carepoints.services.forecast import model, service

    tz = get_settings().tz
    end = now.astimezone(tz).date() - timedelta(days=1)
    start = end - timedelta(weeks=get_settings().forecast_history_weeks) + timedelta(days=1)
    with read_tx() as session:
        history = service.demand_history(session, start, end)
        names = {d["id"]: d["name_en"] for d in sch.departments(session)}
    out: list[tuple[str, float | None, float | None]] = []
    for dep_id, cells in sorted(history.items(), key=lambda kv: names[kv[0]]):
        grid = model.build_grid(cells, min(d for d, _ in cells), end)
        ev = model.evaluate(grid)
        held = grid.tail(ev.holdout)
        days = model.wape(held.daily(), ev.predicted.sum(axis=1)) if ev.predicted is not None else None
        known = truth[names[dep_id]]
        cells_true = [known.get((held.day(i), h), (0.0, 0)) for i in range(held.days) for h in held.hours]
        means = np.array([m for m, _ in cells_true], dtype=np.float64)
        wanted = np.array([w for _, w in cells_true], dtype=np.float64)
        out.append((names[dep_id], days, model.wape(wanted, means)))
    return out


def _pct(value: float | None) -> str:
    return "    —" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value * 100:5.1f}%"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=26, help="weeks of history (default 26)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", type=Path, help="keep the SQLite database at this path")
    args = parser.parse_args()
    workdir = tempfile.TemporaryDirectory(prefix="cp-forecast-")
    path = args.keep or Path(workdir.name) / "forecast.db"
    _setup(path)
    import os

    os.environ["CAREPOINTS_FORECAST_HISTORY_WEEKS"] = str(args.weeks)
    from carepoints.config import reset_settings

    reset_settings()
    from carepoints.kit.db import read_tx
    from carepoints.services.forecast import model, service
    from carepoints.services.forecast.schemas import RunCreate

    now = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai
    t0 = clock.perf_counter()
    counts = generate(args.weeks, args.seed, now)
    t1, c1 = clock.perf_counter(), clock.process_time()
    with read_tx() as session:
        plan = service.prepare(session, RunCreate(weeks=2), now)
    t2, cpu = clock.perf_counter(), clock.process_time() - c1
    print(f"history: {args.weeks} weeks, {counts['sessions']} sessions, {counts['bookings']} bookings, "
          f"{counts['waitlist']} waitlist entries, {counts['turned_away']} turned away unrecorded "
          f"({counts['true_demand']} patients wanted a slot); generated in {t1 - t0:.1f} s")
    names = model.CANDIDATES
    print(f"held back: the last {model.HOLDOUT_DAYS} days; forecast (read + fit + suggest) in {t2 - t1:.1f} s "
          f"({cpu:.1f} s CPU)\n")
    print("WAPE (and MAE, patients per hour) of each model on the held-back day × hour cells:")
    print(f"{'department':<14}" + "".join(f"{n:>20}" for n in names) + "   chosen")
    for d in plan.run["result"]["departments"]:
        cells = "".join(f"{_pct(d['models'].get(n, {}).get('wape')):>12} {d['models'].get(n, {}).get('mae', 0):>5.2f}  "
                        for n in names)
        print(f"{d['name_en']:<14}{cells}   {d['chosen']}")
    overall = plan.run["result"]["overall"]
    print("\npooled over every department's held-back hours:")
    for n in names:
        print(f"  {n:<20} {_pct(overall['models'].get(n))}")
    print(f"  {'chosen per dept.':<20} {_pct(overall['wape'])}")
    print("\nyardsticks: the chosen model's WAPE on whole days (what a session's capacity needs), and the")
    print("noise floor: the hourly WAPE of the true means against the patients who really wanted each hour")
    print("(uncensored Poisson noise no model removes; the recorded demand is censored by capacity):")
    for name_en, days_wape, floor in _yardsticks(now, counts["truth"]):
        print(f"  {name_en:<14} per day {_pct(days_wape)}   noise floor per hour {_pct(floor)}")
    workdir.cleanup() if args.keep is None else print(f"\ndatabase kept at {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
