"""The fraud detectors as pure functions over event rows (no I/O, `tz` for the local day):
each answers candidate signals, which the caller raises at most once per
(kind, subject_key, window_key). Nothing here penalises anyone.

Rules (thresholds in config.py, `fraud_*`):

- `velocity`: more than N events of one patient *occurring* within any M minutes
  (one signal per patient and local day of the window's first event).
- `repeated_reading`: K readings in a row, by occurrence, of one patient and kind with
  identical values (systolic/diastolic/pulse, or glucose), provenance device or
  self_reported (clinic readings are taken by staff and exempt).
- `implausible_reading`, two crisp rules for device / self-reported readings, one signal
  per patient and local day: `daily_count` — more than D readings in the local day;
  `jump` — two consecutive readings of one kind at most J minutes apart whose systolic
  differs by more than S mmHg or whose glucose differs by more than G mmol/L (a body
  does not do that; a second person or a tampered device does).
- `staff_outlier`: per local day of *entry* (reception), a staff member (`staff_id` of
  `staff.offline_entry` and `conduct.violation`, and manual adjustments when that table
  exists) entering more than N, or at least the minimum and more than X times the median
  of every staff member who entered anything that day.
- `shared_device`: more than N distinct patients on one `device_id` (or, with its own
  higher threshold, one self-service `kiosk_id`) in a local day of occurrence.

`details` carry ids and counts only, never a reading's value."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from carepoints.kit.time import local_date

MAX_EVENT_IDS = 100  # event ids kept on a signal
MAX_PATIENT_IDS = 50  # patient ids kept in a signal's details
READING_PROVENANCES = frozenset({"device", "self_reported"})
STAFF_TYPES = ("staff.offline_entry", "conduct.violation")
DEVICE_TYPES = ("health.measurement", "selfservice.used")


@dataclass(frozen=True, slots=True)
class Ev:
    id: str
    type: str
    patient_id: str
    occurred_at: datetime
    received_at: datetime
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Thresholds:
    velocity_events: int = 30
    velocity_minutes: int = 10
    repeated_readings: int = 5
    daily_readings: int = 12
    jump_minutes: int = 10
    jump_systolic: int = 60
    jump_glucose: float = 10.0
    staff_daily_entries: int = 50
    staff_median_factor: float = 5.0
    staff_median_min_entries: int = 10
    shared_phone_patients: int = 5
    shared_device_patients: int = 5
    shared_kiosk_patients: int = 200


@dataclass(slots=True)
class Candidate:
    kind: str
    subject_key: str
    window_key: str
    details: dict[str, Any]
    event_ids: list[str]
    patient_id: str | None = None
    staff_id: str | None = None
    key: tuple[str, str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.kind, self.subject_key, self.window_key)


def _by_patient(events: Iterable[Ev]) -> dict[str, list[Ev]]:
    out: dict[str, list[Ev]] = defaultdict(list)
    for ev in events:
        out[ev.patient_id].append(ev)
    for evs in out.values():
        evs.sort(key=lambda e: (e.occurred_at, e.id))
    return out


# --- velocity ------------------------------------------------------------------------------

def velocity(events: Iterable[Ev], t: Thresholds, tz: ZoneInfo) -> list[Candidate]:
    """The densest M-minute window per patient and local day, when it holds more than N."""
    span = timedelta(minutes=t.velocity_minutes)
    out: list[Candidate] = []
    for pid, evs in sorted(_by_patient(events).items()):
        best: dict[str, tuple[int, int]] = {}  # local day -> (count, start index)
        j = 0
        for i, ev in enumerate(evs):
            j = max(j, i)
            while j + 1 < len(evs) and evs[j + 1].occurred_at - ev.occurred_at <= span:
                j += 1
            n = j - i + 1
            if n > t.velocity_events:
                day = local_date(ev.occurred_at, tz).isoformat()
                if n > best.get(day, (0, 0))[0]:
                    best[day] = (n, i)
        for day, (n, i) in sorted(best.items()):
            out.append(Candidate("velocity", pid, day, {"events": n, "minutes": t.velocity_minutes,
                                                        "threshold": t.velocity_events},
                                 [e.id for e in evs[i:i + n]][:MAX_EVENT_IDS], patient_id=pid))
    return out


# --- readings ------------------------------------------------------------------------------

def _reading(ev: Ev) -> tuple[str, tuple[Any, ...]] | None:
    """(kind, values) of a device / self-reported reading; None for anything else, or a
    reading whose values retention has already removed."""
    a = ev.attributes
    if ev.type != "health.measurement" or a.get("provenance") not in READING_PROVENANCES:
        return None
    kind = a.get("kind")
    if kind == "blood_pressure" and a.get("systolic") is not None:
        return str(kind), (a.get("systolic"), a.get("diastolic"), a.get("pulse"))
    if kind == "blood_glucose" and a.get("glucose_mmol_l") is not None:
        return str(kind), (float(a["glucose_mmol_l"]),)
    return None


def _readings(events: Iterable[Ev]) -> dict[str, list[tuple[Ev, str, tuple[Any, ...]]]]:
    out: dict[str, list[tuple[Ev, str, tuple[Any, ...]]]] = {}
    for pid, evs in _by_patient(events).items():
        rows = [(ev, *r) for ev in evs if (r := _reading(ev)) is not None]
        if rows:
            out[pid] = rows
    return out


def repeated_readings(events: Iterable[Ev], t: Thresholds, tz: ZoneInfo) -> list[Candidate]:
    """K or more identical readings of one kind in a row; one signal per patient and the
    local day the run started."""
    out: dict[tuple[str, str], Candidate] = {}
    for pid, rows in sorted(_readings(events).items()):
        by_kind: dict[str, list[tuple[Ev, tuple[Any, ...]]]] = defaultdict(list)
        for ev, kind, values in rows:
            by_kind[kind].append((ev, values))
        for kind, seq in sorted(by_kind.items()):
            start = 0
            for i in range(1, len(seq) + 1):
                if i < len(seq) and seq[i][1] == seq[start][1]:
                    continue
                run = seq[start:i]
                if len(run) >= t.repeated_readings:
                    day = local_date(run[0][0].occurred_at, tz).isoformat()
                    if (pid, day) not in out or len(run) > out[(pid, day)].details["run"]:
                        out[(pid, day)] = Candidate(
                            "repeated_reading", pid, day, {"run": len(run), "kind": kind,
                                                           "threshold": t.repeated_readings},
                            [e.id for e, _ in run][:MAX_EVENT_IDS], patient_id=pid)
                start = i
    return [out[k] for k in sorted(out)]


def _jumped(a: tuple[str, tuple[Any, ...]], b: tuple[str, tuple[Any, ...]], t: Thresholds) -> bool:
    if a[0] == "blood_pressure":
        return abs(int(a[1][0]) - int(b[1][0])) > t.jump_systolic
    return abs(float(a[1][0]) - float(b[1][0])) > t.jump_glucose


def implausible_readings(events: Iterable[Ev], t: Thresholds, tz: ZoneInfo) -> list[Candidate]:
    """`daily_count` and `jump` (module docstring); one signal per patient and local day."""
    gap = timedelta(minutes=t.jump_minutes)
    out: list[Candidate] = []
    for pid, rows in sorted(_readings(events).items()):
        days: dict[str, list[Ev]] = defaultdict(list)
        for ev, _kind, _values in rows:
            days[local_date(ev.occurred_at, tz).isoformat()].append(ev)
        jumps: dict[str, list[str]] = defaultdict(list)
        last: dict[str, tuple[Ev, tuple[str, tuple[Any, ...]]]] = {}
        for ev, kind, values in rows:
            prev = last.get(kind)
            if prev is not None and ev.occurred_at - prev[0].occurred_at <= gap and _jumped(prev[1], (kind, values), t):
                day = local_date(ev.occurred_at, tz).isoformat()
                jumps[day].extend(i for i in (prev[0].id, ev.id) if i not in jumps[day])
            last[kind] = (ev, (kind, values))
        for day in sorted(set(days) | set(jumps)):
            rules: list[str] = []
            ids: list[str] = []
            if len(days[day]) > t.daily_readings:
                rules.append("daily_count")
                ids.extend(e.id for e in days[day])
            if jumps.get(day):
                rules.append("jump")
                ids.extend(i for i in jumps[day] if i not in ids)
            if rules:
                out.append(Candidate("implausible_reading", pid, day,
                                     {"rules": rules, "readings": len(days[day]), "jumps": len(jumps.get(day, [])) // 2,
                                      "daily_threshold": t.daily_readings},
                                     ids[:MAX_EVENT_IDS], patient_id=pid))
    return out


# --- staff ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Entry:
    """One entry a staff member made: an event (offline entry, violation) or an adjustment."""

    staff_id: str
    day: str  # local day of entry
    ref: str  # event id, or "adjustment:<id>"


def staff_entries(events: Iterable[Ev], tz: ZoneInfo) -> list[Entry]:
    out = []
    for ev in events:
        staff = ev.attributes.get("staff_id")
        if ev.type in STAFF_TYPES and isinstance(staff, str) and staff:
            out.append(Entry(staff[:200], local_date(ev.received_at, tz).isoformat(), ev.id))
    return out


def staff_outliers(entries: Iterable[Entry], days: set[str], t: Thresholds) -> list[Candidate]:
    """Outliers among the staff of each of `days` (the days the new events touched: a day
    is judged only with all its entries at hand)."""
    per_day: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for e in entries:
        if e.day in days:
            per_day[e.day][e.staff_id].append(e.ref)
    out: list[Candidate] = []
    for day, staff in sorted(per_day.items()):
        median = statistics.median(len(refs) for refs in staff.values())
        for sid, refs in sorted(staff.items()):
            n = len(refs)
            rule = "daily_max" if n > t.staff_daily_entries else "median" if (
                n >= t.staff_median_min_entries and n > t.staff_median_factor * median) else None
            if rule is not None:
                out.append(Candidate("staff_outlier", "staff:" + sid, day,
                                     {"rule": rule, "entries": n, "median": median, "staff_count": len(staff),
                                      "adjustments": sum(1 for r in refs if r.startswith("adjustment:"))},
                                     sorted(r for r in refs if not r.startswith("adjustment:"))[:MAX_EVENT_IDS],
                                     staff_id=sid))
    return out


# --- shared devices and phones -------------------------------------------------------------

def _device_keys(ev: Ev) -> list[tuple[str, str]]:
    out = []
    for attr, kind in (("device_id", "device"), ("kiosk_id", "kiosk")):
        value = ev.attributes.get(attr)
        if isinstance(value, str) and value:
            out.append((kind, value[:200]))
    return out


def shared_devices(events: Sequence[Ev], new: Iterable[Ev], t: Thresholds, tz: ZoneInfo) -> list[Candidate]:
    """More than N patients on one device (kiosk: its own threshold) in a local day, for
    the (device, day) pairs the `new` events touched."""
    wanted = {(k, local_date(ev.occurred_at, tz).isoformat()) for ev in new for k in _device_keys(ev)}
    seen: dict[tuple[tuple[str, str], str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for ev in events:
        day = local_date(ev.occurred_at, tz).isoformat()
        for k in _device_keys(ev):
            if (k, day) in wanted:
                seen[(k, day)][ev.patient_id].append(ev.id)
    out: list[Candidate] = []
    for ((kind, value), day), patients in sorted(seen.items()):
        limit = t.shared_kiosk_patients if kind == "kiosk" else t.shared_device_patients
        if len(patients) > limit:
            ids = sorted(i for refs in patients.values() for i in refs)
            out.append(Candidate("shared_device", f"{kind}:{value}", day,
                                 {"device_kind": kind, "patients": len(patients), "threshold": limit,
                                  "patient_ids": sorted(patients)[:MAX_PATIENT_IDS]},
                                 ids[:MAX_EVENT_IDS]))
    return out


def shared_phone(subject_key: str, patient_ids: Sequence[str], window_key: str, t: Thresholds) -> Candidate | None:
    """More than N active patients on one phone (its blind index, hashed again: the key)."""
    if len(patient_ids) <= t.shared_phone_patients:
        return None
    return Candidate("shared_phone", subject_key, window_key,
                     {"patients": len(patient_ids), "threshold": t.shared_phone_patients,
                      "patient_ids": sorted(patient_ids)[:MAX_PATIENT_IDS]}, [])
