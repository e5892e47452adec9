"""Loading and saving the rules' state for a batch of events.

Counters are written as deltas through an upsert whose result the database
checks against the row's cap (CHECK used <= cap), so a cap can never be
exceeded whatever happens above; the wallet lock held by the caller makes
the in-memory view exact, so the check never fires in practice."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from carepoints.kit.db import table
from carepoints.rules.engine import (
    Decision,
    EventView,
    NoShowRec,
    PatientState,
    ProgrammeSet,
    SuspensionRec,
    annual_key,
    effective,
    remove_day,
    rule_limits,
)
from carepoints.rules.models import Counter, NoShow, StreakDay, StreakRun, Suspension

_counters = table(Counter)
_days = table(StreakDay)
_runs = table(StreakRun)


def _upserts(dialect: str) -> tuple[object, object]:
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    c = ins(_counters)
    counters = c.on_conflict_do_update(index_elements=["patient_id", "key"],
                                       set_={"used": _counters.c.used + c.excluded.used, "cap": c.excluded.cap})
    d = ins(_days)
    days = d.on_conflict_do_update(index_elements=["patient_id", "grp", "day"], set_={"n": _days.c.n + d.excluded.n})
    return counters, days


_UPSERT = {name: _upserts(name) for name in ("sqlite", "postgresql")}


def candidate_keys(programmes: ProgrammeSet, ev: EventView) -> tuple[set[str], set[str]]:
    """Counter keys and streak groups an event could touch (to load them in one query)."""
    prog = programmes.at(ev.occurred_at)
    inner = effective(ev)
    day = inner.occurred_at.astimezone(prog.tz).date()
    keys = {annual_key(day.year)}
    groups: set[str] = set()
    for rule in prog.rules.get(inner.type, ()):
        keys.update(lim.key for lim in rule_limits(rule, inner, day))
        if rule.streak:
            groups.add(rule.streak.group)
    return keys, groups


class StateStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.states: dict[str, PatientState] = {}
        self._runs0: dict[tuple[str, str], list[tuple[date, date]]] = {}
        self._counter_deltas: dict[tuple[str, str], list[int | None]] = {}
        self._day_deltas: dict[tuple[str, str, date], int] = {}
        self._no_shows: list[dict[str, object]] = []
        self._no_show_updates: dict[str, str] = {}
        self._suspensions: dict[str, SuspensionRec] = {}
        self._new_suspensions: set[str] = set()
        self._suspension_patient: dict[str, str] = {}

    def load(self, patients: dict[str, PatientState], keys: set[str], groups: set[str],
             days: tuple[date, date] | None, no_shows: bool) -> None:
        """Fill the given states (consent, tier already set) from the database."""
        conn = self.conn
        ids = list(patients)
        self.states.update(patients)
        if not ids:
            return
        if keys:
            for pid, key, used in conn.execute(select(_counters.c.patient_id, _counters.c.key, _counters.c.used)
                                               .where(_counters.c.patient_id.in_(ids), _counters.c.key.in_(keys))):
                patients[pid].counters[key] = used
        if groups and days:
            lo, hi = days
            for pid, grp, day, n in conn.execute(
                    select(_days.c.patient_id, _days.c.grp, _days.c.day, _days.c.n)
                    .where(_days.c.patient_id.in_(ids), _days.c.grp.in_(groups),
                           _days.c.day >= lo, _days.c.day <= hi)):
                patients[pid].days[(grp, day)] = n
            for pid, grp, start, end in conn.execute(
                    select(_runs.c.patient_id, _runs.c.grp, _runs.c.start_day, _runs.c.end_day)
                    .where(_runs.c.patient_id.in_(ids), _runs.c.grp.in_(groups),
                           _runs.c.end_day >= lo - timedelta(days=1), _runs.c.start_day <= hi + timedelta(days=1))):
                patients[pid].runs.setdefault(grp, []).append((start, end))
            for pid, st in patients.items():
                for grp in groups:
                    runs = sorted(st.runs.get(grp, []))
                    st.runs[grp] = runs
                    self._runs0[(pid, grp)] = list(runs)
        s = table(Suspension)
        for sid, pid, start, end, trig in conn.execute(
                select(s.c.id, s.c.patient_id, s.c.starts_at, s.c.ends_at, s.c.trigger_event_id)
                .where(s.c.patient_id.in_(ids))):
            patients[pid].suspensions.append(SuspensionRec(sid, start, end, trig))
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
        for grp, day in decision.days:
            k = (patient_id, grp, day)
            self._day_deltas[k] = self._day_deltas.get(k, 0) + 1
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
        counters_upsert, days_upsert = _UPSERT[conn.dialect.name]
        if self._counter_deltas:
            conn.execute(counters_upsert, [  # type: ignore[call-overload]
                {"patient_id": pid, "key": key, "used": d[0], "cap": d[1]}
                for (pid, key), d in sorted(self._counter_deltas.items()) if d[0]])
        if self._day_deltas:
            conn.execute(days_upsert, [  # type: ignore[call-overload]
                {"patient_id": pid, "grp": grp, "day": day, "n": n}
                for (pid, grp, day), n in sorted(self._day_deltas.items())])
        for (pid, grp), before in self._runs0.items():
            after = self.states[pid].runs.get(grp, [])
            gone = [r for r in before if r not in after]
            new = [r for r in after if r not in before]
            if gone:
                conn.execute(delete(_runs).where(_runs.c.patient_id == pid, _runs.c.grp == grp,
                                                 _runs.c.start_day.in_([s for s, _ in gone])))
            if new:
                conn.execute(insert(_runs), [{"patient_id": pid, "grp": grp, "start_day": s, "end_day": e}
                                             for s, e in new])
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
        self._day_deltas.clear()
        self._runs0 = {k: list(self.states[k[0]].runs.get(k[1], [])) for k in self._runs0}
        self._no_shows.clear()
        self._no_show_updates.clear()
        self._suspensions.clear()
        self._new_suspensions.clear()

    def mark_new_suspension(self, sid: str) -> None:
        self._new_suspensions.add(sid)


def undo(conn: Connection, patient_id: str, effects: dict[str, object]) -> None:
    """Take back the rule state an event produced (revoke): counter room,
    streak days, its no-show and any suspension it triggered."""
    counters = effects.get("counters") or []
    for key, delta in counters:  # type: ignore[attr-defined]
        conn.execute(update(_counters).where(_counters.c.patient_id == patient_id, _counters.c.key == key)
                     .values(used=_counters.c.used - delta))
    for grp, day_s in effects.get("days") or []:  # type: ignore[attr-defined]
        day = date.fromisoformat(day_s)
        row = conn.execute(select(_days.c.n).where(_days.c.patient_id == patient_id, _days.c.grp == grp,
                                                   _days.c.day == day)).first()
        if row is None:
            continue
        if row[0] > 1:
            conn.execute(update(_days).where(_days.c.patient_id == patient_id, _days.c.grp == grp, _days.c.day == day)
                         .values(n=_days.c.n - 1))
            continue
        conn.execute(delete(_days).where(_days.c.patient_id == patient_id, _days.c.grp == grp, _days.c.day == day))
        run = conn.execute(select(_runs.c.start_day, _runs.c.end_day).where(
            _runs.c.patient_id == patient_id, _runs.c.grp == grp, _runs.c.start_day <= day,
            _runs.c.end_day >= day)).first()
        if run is not None:
            conn.execute(delete(_runs).where(_runs.c.patient_id == patient_id, _runs.c.grp == grp,
                                             _runs.c.start_day == run[0]))
            pieces = remove_day([(run[0], run[1])], day)
            if pieces:
                conn.execute(insert(_runs), [{"patient_id": patient_id, "grp": grp, "start_day": a, "end_day": b}
                                             for a, b in pieces])
    n = table(NoShow)
    event_id = effects.get("event_id")
    conn.execute(update(n).where(n.c.event_id == event_id).values(status="revoked"))
    restored = effects.get("no_show_updates") or {}
    for eid in restored:  # type: ignore[attr-defined]
        conn.execute(update(n).where(n.c.event_id == eid, n.c.status != "revoked").values(status="counted"))
    s = table(Suspension)
    if effects.get("suspension_created"):
        conn.execute(delete(s).where(s.c.id == effects["suspension_created"]))



def facts(conn: Connection, patient_id: str, year: int, now: datetime) -> tuple[int, datetime | None]:
    """Points earned in the local calendar year, and the end of the suspension in force now."""
    earned = conn.execute(select(_counters.c.used).where(_counters.c.patient_id == patient_id,
                                                         _counters.c.key == annual_key(year))).scalar()
    s = table(Suspension)
    until = conn.execute(select(s.c.ends_at).where(s.c.patient_id == patient_id, s.c.starts_at <= now,
                                                   s.c.ends_at > now).order_by(s.c.ends_at.desc())).scalar()
    return int(earned or 0), until
