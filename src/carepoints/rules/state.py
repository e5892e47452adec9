"""Loading and saving the rules' state for a batch of events.

Counters are written as deltas through an upsert whose result the database
checks against the row's cap (CHECK used <= cap), so a cap can never be
exceeded whatever happens above; the wallet lock held by the caller makes
the in-memory view exact, so the check never fires in practice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, delete, insert, select, update
from sqlalchemy.engine import Connection

from carepoints.experiments import service as experiments
from carepoints.kit.bulk import as_date, as_datetime, fetch, insert_rows, marks, update_rows, values_clause
from carepoints.kit.db import table
from carepoints.rules.engine import (
    CompiledProgramme,
    Decision,
    EventView,
    NoShowRec,
    PatientState,
    ProgrammeSet,
    SuspensionRec,
    annual_key,
    day_key,
    effective,
    no_show_key,
    owed_key,
    remove_day,
    rule_limits,
)
from carepoints.rules.models import Counter, NoShow, StreakRun, Suspension

_counters = table(Counter)
_runs = table(StreakRun)


_COUNTER_CONFLICT = ("ON CONFLICT (patient_id, key) DO UPDATE SET used = rule_counters.used + excluded.used, "
                     "cap = excluded.cap")
_RUN_CONFLICT = "ON CONFLICT (patient_id, grp, start_day) DO UPDATE SET end_day = excluded.end_day"
_DELETE_RUN = delete(_runs).where(_runs.c.patient_id == bindparam("p"), _runs.c.grp == bindparam("g"),
                                  _runs.c.start_day == bindparam("s"))


def candidate_keys(programmes: ProgrammeSet, ev: EventView) -> tuple[set[str], set[str]]:
    """Counter keys and streak groups an event could touch (to load them in one query)."""
    prog = programmes.at(ev.occurred_at)
    inner = effective(ev)
    day = inner.occurred_at.astimezone(prog.tz).date()
    keys = {annual_key(day.year)}
    if inner.type == "appointment.no_show":
        keys.add(no_show_key(inner.attributes.get("appointment_id")))
    groups: set[str] = set()
    for rule in prog.rules.get(inner.type, ()):
        keys.update(key for key, _spec in rule_limits(prog, rule, inner, day))
        if rule.streak:
            groups.add(rule.streak.group)
            keys.add(owed_key(rule.code))
            keys.add(day_key(rule.streak.group, day))
    return keys, groups


class StateStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.states: dict[str, PatientState] = {}
        self._runs0: dict[tuple[str, str], list[tuple[date, date]]] = {}
        self._counter_deltas: dict[tuple[str, str], list[int | None]] = {}
        self._no_shows: list[dict[str, object]] = []
        self._no_show_updates: dict[str, str] = {}
        self._suspensions: dict[str, SuspensionRec] = {}
        self._new_suspensions: set[str] = set()
        self._suspension_patient: dict[str, str] = {}

    def load(self, patients: dict[str, PatientState], counter_keys: set[tuple[str, str]],
             run_windows: dict[str, tuple[date, date]], groups: set[str], no_shows: bool) -> None:
        """Fill the given states (consent, tier already set) from the database:
        exactly the counters the batch can touch, the streak runs around each
        patient's days, suspensions, (when needed) counted no-shows, and the
        experiment arms of those with a research consent."""
        conn = self.conn
        ids = list(patients)
        self.states.update(patients)
        if not ids:
            return
        for pid, arms in experiments.arms(conn, ids).items():
            patients[pid].arms = arms
        dialect = conn.dialect.name
        if counter_keys:
            pairs = sorted(counter_keys)
            for start in range(0, len(pairs), 400):
                chunk = pairs[start:start + 400]
                sql = (f"WITH k(p, key) AS ({values_clause(dialect, len(chunk), (None, None))}) "  # noqa: S608
                       "SELECT c.patient_id, c.key, c.used FROM k JOIN rule_counters c "
                       "ON c.patient_id = k.p AND c.key = k.key")
                for pid, key, used in fetch(conn, sql, [x for pair in chunk for x in pair]):
                    patients[pid].counters[key] = used
        if groups and run_windows:
            one = timedelta(days=1)
            spans = sorted(run_windows.items())
            grps = sorted(groups)
            mark = "?" if dialect == "sqlite" else "%s"
            for start in range(0, len(spans), 300):
                span_chunk = spans[start:start + 300]
                sql = (f"WITH w(p, lo, hi) AS ({values_clause(dialect, len(span_chunk), (None, 'DATE', 'DATE'))}) "  # noqa: S608
                       "SELECT r.patient_id, r.grp, r.start_day, r.end_day FROM w JOIN streak_runs r "
                       f"ON r.patient_id = w.p AND r.end_day >= w.lo AND r.start_day <= w.hi "
                       f"WHERE r.grp IN ({', '.join([mark] * len(grps))})")
                params: list[object] = []
                for pid, (lo, hi) in span_chunk:
                    params += [pid, (lo - one).isoformat(), (hi + one).isoformat()]
                for pid, grp, first, last in fetch(conn, sql, (*params, *grps)):
                    patients[pid].runs.setdefault(grp, []).append((as_date(first), as_date(last)))
            for pid in run_windows:
                st = patients[pid]
                for grp in groups:
                    runs = sorted(st.runs.get(grp, []))
                    st.runs[grp] = runs
                    self._runs0[(pid, grp)] = list(runs)
        sql = ("SELECT id, patient_id, starts_at, ends_at, trigger_event_id FROM suspensions "  # noqa: S608
               f"WHERE patient_id IN ({marks(conn, len(ids))})")
        for sid, pid, begin, end, trig in fetch(conn, sql, ids):
            patients[pid].suspensions.append(SuspensionRec(sid, as_datetime(begin), as_datetime(end), trig))
        if no_shows:
            n = table(NoShow)
            for eid, pid, slot, status in conn.execute(
                    select(n.c.event_id, n.c.patient_id, n.c.slot_start, n.c.status)
                    .where(n.c.patient_id.in_(ids), n.c.status == "counted")):
                patients[pid].no_shows.append(NoShowRec(eid, slot, status))

    def record(self, patient_id: str, decision: Decision) -> None:
        for key, (delta, cap) in decision.counters.items():
            slot = self._counter_deltas.get((patient_id, key))
            if slot is None:
                self._counter_deltas[(patient_id, key)] = [delta, cap]
            else:
                slot[0] = int(slot[0] or 0) + delta
                slot[1] = cap
        if decision.no_show is not None:
            ns = decision.no_show
            self._no_shows.append({"event_id": ns.event_id, "patient_id": patient_id, "slot_start": ns.slot_start,
                                   "status": ns.status})
        for eid, status in decision.no_show_updates.items():
            self._no_show_updates[eid] = status
        if decision.suspension is not None:
            self._suspensions[decision.suspension.id] = decision.suspension
            self._suspension_patient[decision.suspension.id] = patient_id

    def flush(self, now: object) -> None:
        conn = self.conn
        deltas = sorted(self._counter_deltas.items())
        insert_rows(conn, _counters, [{"patient_id": pid, "key": key, "used": d[0], "cap": d[1]}
                                      for (pid, key), d in deltas if (d[0] or 0) > 0],
                    on_conflict=_COUNTER_CONFLICT)
        # Taking room back never creates a row (and a negative insert would fail the CHECK).
        update_rows(conn, _counters, [(d[0], pid, key) for (pid, key), d in deltas if (d[0] or 0) < 0],
                    ("+used",), ("patient_id", "key"))
        gone: list[dict[str, object]] = []
        new: list[dict[str, object]] = []
        for (pid, grp), before in self._runs0.items():
            after = self.states[pid].runs.get(grp, [])
            if after == before:
                continue
            starts = {a for a, _b in after}
            gone.extend({"p": pid, "g": grp, "s": a} for a, _b in before if a not in starts)
            new.extend({"patient_id": pid, "grp": grp, "start_day": a, "end_day": b}
                       for a, b in after if (a, b) not in before)
        if gone:
            conn.execute(_DELETE_RUN, gone)
        insert_rows(conn, _runs, new, on_conflict=_RUN_CONFLICT)
        if self._no_shows:
            conn.execute(insert(table(NoShow)), self._no_shows)
        n = table(NoShow)
        for eid, status in self._no_show_updates.items():
            conn.execute(update(n).where(n.c.event_id == eid).values(status=status))
        s = table(Suspension)
        for sid, rec in self._suspensions.items():
            if sid in self._new_suspensions:
                conn.execute(insert(s), [{"id": sid, "patient_id": self._suspension_patient[sid],
                                          "starts_at": rec.starts_at, "ends_at": rec.ends_at,
                                          "trigger_event_id": rec.trigger_event_id, "created_at": now}])
            else:
                conn.execute(update(s).where(s.c.id == sid).values(ends_at=rec.ends_at))
        self._counter_deltas.clear()
        self._runs0 = {k: list(self.states[k[0]].runs.get(k[1], [])) for k in self._runs0}
        self._no_shows.clear()
        self._no_show_updates.clear()
        self._suspensions.clear()
        self._new_suspensions.clear()

    def mark_new_suspension(self, sid: str) -> None:
        self._new_suspensions.add(sid)


def undo(conn: Connection, patient_id: str, effects: dict[str, Any], prog: CompiledProgramme) -> None:
    """Take back the rule state an event produced (revoke): counter room,
    streak days no other event still counts (units paid for a run that a
    removed day splits become owed, so they are not paid twice), its no-show,
    and a suspension it triggered or extended."""
    for key, delta in effects.get("counters") or []:
        # never below 0: a record merge clamps summed counters at their cap, so an event
        # revoked afterwards may give back more than the merged counter still holds
        left = _counters.c.used - delta
        conn.execute(update(_counters).where(_counters.c.patient_id == patient_id, _counters.c.key == key)
                     .values(used=case((left < 0, 0), else_=left)))
    reversed_units: dict[str, int] = dict(effects.get("streak_units") or {})
    for grp, day_s in effects.get("days") or []:
        day = date.fromisoformat(day_s)
        others = conn.execute(select(_counters.c.used).where(
            _counters.c.patient_id == patient_id, _counters.c.key == day_key(grp, day))).scalar()
        if others:
            continue  # another event still counts this day
        run = conn.execute(select(_runs.c.start_day, _runs.c.end_day).where(
            _runs.c.patient_id == patient_id, _runs.c.grp == grp, _runs.c.start_day <= day,
            _runs.c.end_day >= day)).first()
        if run is None:
            continue
        start, end = as_date(run[0]), as_date(run[1])
        conn.execute(delete(_runs).where(_runs.c.patient_id == patient_id, _runs.c.grp == grp,
                                         _runs.c.start_day == run[0]))
        pieces = remove_day([(start, end)], day)
        insert_rows(conn, _runs, [{"patient_id": patient_id, "grp": grp, "start_day": a, "end_day": b}
                                  for a, b in pieces])
        for rule in prog.programme.rules:
            if rule.streak is None or rule.streak.group != grp:
                continue
            size = rule.streak.days
            lost = ((end - start).days + 1) // size - sum(((b - a).days + 1) // size for a, b in pieces)
            owed = lost - reversed_units.pop(rule.code, 0)
            if owed > 0:
                insert_rows(conn, _counters, [{"patient_id": patient_id, "key": owed_key(rule.code), "used": owed,
                                               "cap": None}], on_conflict=_COUNTER_CONFLICT)
    n = table(NoShow)
    conn.execute(update(n).where(n.c.event_id == effects.get("event_id")).values(status="revoked"))
    for eid in effects.get("no_show_updates") or {}:
        conn.execute(update(n).where(n.c.event_id == eid, n.c.status != "revoked").values(status="counted"))
    s = table(Suspension)
    if effects.get("suspension_created"):
        conn.execute(delete(s).where(s.c.id == effects["suspension_created"]))
    extended = effects.get("suspension_extended")
    if extended:
        sid, previous, applied = extended
        conn.execute(update(s).where(s.c.id == sid, s.c.ends_at == as_datetime(applied))
                     .values(ends_at=as_datetime(previous)))


def earned_bounds(conn: Connection, patient_ids: Sequence[str], year: int) -> dict[str, int]:
    """An upper bound of what each patient earned in the twelve months before now: the
    annual-cap counters of this local year and the last (primary-key lookups), which
    count every award and give back what a revoke reverses."""
    if not patient_ids:
        return {}
    ids = sorted(set(patient_ids))
    sql = ("SELECT patient_id, SUM(used) FROM rule_counters "  # noqa: S608
           f"WHERE patient_id IN ({marks(conn, len(ids))}) AND key IN ({marks(conn, 2)}) GROUP BY patient_id")
    found = dict.fromkeys(ids, 0)
    for pid, total in fetch(conn, sql, (*ids, annual_key(year - 1), annual_key(year))):
        found[pid] = int(total or 0)
    return found


def facts(conn: Connection, patient_id: str, year: int, now: datetime) -> tuple[int, datetime | None]:
    """Points earned in the local calendar year, and the end of the suspension in force now."""
    earned = conn.execute(select(_counters.c.used).where(_counters.c.patient_id == patient_id,
                                                         _counters.c.key == annual_key(year))).scalar()
    s = table(Suspension)
    until = conn.execute(select(s.c.ends_at).where(s.c.patient_id == patient_id, s.c.starts_at <= now,
                                                   s.c.ends_at > now).order_by(s.c.ends_at.desc())).scalar()
    return int(earned or 0), until
