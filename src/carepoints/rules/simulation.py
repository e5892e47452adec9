"""What a programme draft would have awarded: the last `days` days of real stored events
replayed through the pure `evaluate()` with the draft and with the programme it would
replace, totalled per rule (points awarded, events paid, patients reached) for both, with
the difference. Read only: nothing is written, no counter, no ledger entry.

The replay is the same for both sides, so the difference is the draft's alone:
- the accepted, unrevoked events that occurred in the window, per patient in time order;
- each patient starts the window from an empty rule state (limits, streaks and the annual
  cap count only what lies in the window; a suspension or no-show before it is not known);
- the patient's facts as they are now (consent, tier, birth date, active, earning frozen);
- one version per side, in force over the whole window (its `effective_from` ignored)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, String, column, select, table
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.kit.db import table as model_table
from carepoints.kit.types import UTCDateTime
from carepoints.patients.models import Consent, Patient
from carepoints.rules import service
from carepoints.rules.engine import EPOCH, CompiledProgramme, EventView, PatientState, ProgrammeSet, apply, evaluate
from carepoints.rules.programme import Programme

# The events table read by name (the events domain sits above rules: no import of its model).
_events = table("events", column("id", String), column("type", String), column("patient_id", String),
                column("occurred_at", UTCDateTime()), column("attributes", JSON), column("status", String),
                column("revoked_at", UTCDateTime()))
_patients = model_table(Patient)
_consents = model_table(Consent)
_CHUNK = 500


@dataclass(slots=True)
class Tally:
    points: int = 0
    events: int = 0
    patients: set[str] = field(default_factory=set)

    def add(self, patient_id: str, points: int) -> None:
        self.points += points
        self.events += 1
        self.patients.add(patient_id)

    def doc(self) -> dict[str, int]:
        return {"points": self.points, "events": self.events, "patients": len(self.patients)}


def _states(session: Session, patient_ids: list[str]) -> dict[str, PatientState]:
    conn = session.connection()
    out: dict[str, PatientState] = {}
    for start in range(0, len(patient_ids), _CHUNK):
        chunk = patient_ids[start:start + _CHUNK]
        consented = set(conn.execute(select(_consents.c.patient_id).where(
            _consents.c.patient_id.in_(chunk), _consents.c.purpose == "points_programme",
            _consents.c.withdrawn_at.is_(None))).scalars())
        rows = conn.execute(select(_patients.c.id, _patients.c.status, _patients.c.tier, _patients.c.birth_date,
                                   _patients.c.earning_frozen_at).where(_patients.c.id.in_(chunk)))
        for pid, status, tier, birth, frozen in rows:
            out[pid] = PatientState(pid, consent=pid in consented, tier=tier or "standard", birth_date=birth,
                                    inactive=status != "active", frozen=frozen is not None)
    return out


def _events_in(session: Session, since: datetime, until: datetime) -> Iterable[tuple[str, EventView]]:
    stmt = (select(_events.c.id, _events.c.type, _events.c.patient_id, _events.c.occurred_at,
                   _events.c.attributes)
            .where(_events.c.status == "accepted", _events.c.revoked_at.is_(None),
                   _events.c.occurred_at >= since, _events.c.occurred_at <= until)
            .order_by(_events.c.patient_id, _events.c.occurred_at, _events.c.id))
    for eid, etype, pid, at, attrs in session.connection().execute(stmt):
        yield pid, EventView(eid, etype, at, attrs if isinstance(attrs, dict) else {})


def _compiled(programme: Programme) -> ProgrammeSet:
    return ProgrammeSet([CompiledProgramme(0, programme, get_settings().tz, EPOCH)])


def _names(*programmes: Programme) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for p in programmes:
        for r in p.rules:
            out.setdefault(r.code, {"zh": r.names.zh, "en": r.names.en})
    return out


def simulate(session: Session, draft: Programme, now: datetime, days: int = 30,
             active: Programme | None = None) -> dict[str, Any]:
    """Replay the last `days` days of stored events with `draft` and with `active` (default: the
    programme in force at `now`). Answers the window, how many events and patients were
    replayed, per rule {code, names, active, draft, difference} (each {points, events,
    patients}) and the same totals over all rules."""
    if active is None:
        active = service.programmes(session).at(now).programme
    since = now - timedelta(days=days)
    sides = {"active": _compiled(active), "draft": _compiled(draft)}
    tallies: dict[str, dict[str, Tally]] = {"active": {}, "draft": {}}
    totals = {"active": Tally(), "draft": Tally()}
    by_patient: dict[str, list[EventView]] = {}
    for pid, ev in _events_in(session, since, now):
        by_patient.setdefault(pid, []).append(ev)
    facts = _states(session, sorted(by_patient))
    for pid, evs in by_patient.items():
        known = facts.get(pid)
        if known is None:
            continue  # erased since: nothing to replay
        for side, pset in sides.items():
            state = PatientState(pid, known.consent, known.tier, known.birth_date, known.inactive, known.frozen)
            for ev in evs:
                decision = evaluate(pset, ev, state, now)
                apply(state, decision)
                for award in decision.awards:
                    tallies[side].setdefault(award.rule, Tally()).add(pid, award.points)
                    totals[side].add(pid, award.points)
    names = _names(draft, active)
    order = [r.code for r in draft.rules] + [r.code for r in active.rules if r.code not in
                                             {d.code for d in draft.rules}]
    rules = []
    for code in order:
        a, d = tallies["active"].get(code, Tally()).doc(), tallies["draft"].get(code, Tally()).doc()
        rules.append({"code": code, "names": names[code], "active": a, "draft": d,
                      "difference": {k: d[k] - a[k] for k in a}})
    a, d = totals["active"].doc(), totals["draft"].doc()
    return {"days": days, "since": since, "until": now,
            "events": sum(len(v) for v in by_patient.values()), "patients": len(by_patient),
            "rules": rules, "total": {"active": a, "draft": d, "difference": {k: d[k] - a[k] for k in a}}}
