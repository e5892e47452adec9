"""From a decision to its effects: the rule state an event takes, the ledger
entries of its awards, and the outcome and row stored for it. Shared by the
bulk path and the in-order path of ingest (events.service)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from carepoints.events.schemas import EventIn
from carepoints.kit.errors import AppError
from carepoints.kit.ids import new_id
from carepoints.kit.time import add_months
from carepoints.ledger.accounts import System
from carepoints.ledger.posting import Poster
from carepoints.patients import service as patients
from carepoints.rules.engine import Decision, EventView, PatientState, ProgrammeSet, apply, effective, evaluate
from carepoints.rules.state import StateStore, candidate_keys


@dataclass(slots=True)
class Item:
    """One event of a request on its way through ingest."""

    index: int
    event: EventIn | None = None
    error: AppError | None = None
    patient_id: str = ""
    wallet_id: str = ""
    payload_hash: str = ""
    outcome: dict[str, Any] | None = None
    row: dict[str, Any] | None = None
    deferred: bool = False
    messages: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)


def replay_group(programmes: ProgrammeSet, ev: EventIn | EventView) -> str | None:
    """The replay group of an event an order-sensitive rule scores (engine.replay_groups), else None."""
    view = ev if isinstance(ev, EventView) else EventView("", ev.type, ev.occurred_at, ev.attributes)
    return programmes.at(ev.occurred_at).replay_groups.get(effective(view).type)


def load_state(store: StateStore, programmes: ProgrammeSet, items: list[Item],
                found: dict[str, patients.Resolved]) -> None:
    keys: set[tuple[str, str]] = set()
    groups: set[str] = set()
    windows: dict[str, tuple[date, date]] = {}
    no_shows = False
    states: dict[str, PatientState] = {}
    tz = programmes.latest.tz
    for item in items:
        ev = item.event
        assert ev is not None  # noqa: S101
        pid = item.patient_id
        k, g = candidate_keys(programmes, EventView("", ev.type, ev.occurred_at, ev.attributes))
        keys.update((pid, key) for key in k)
        if g:
            groups |= g
            day = ev.occurred_at.astimezone(tz).date()
            lo, hi = windows.get(pid, (day, day))
            windows[pid] = (min(lo, day), max(hi, day))
        if effective(EventView("", ev.type, ev.occurred_at, ev.attributes)).type in (
                "appointment.no_show", "appointment.attended"):
            no_shows = True  # offline entries count as the behaviour they stand for
        if pid not in states:
            p = found[pid]
            states[pid] = PatientState(pid, p.programme_consent, p.tier, p.birth_date,
                                       inactive=p.status != "active", frozen=p.earning_frozen)
    store.load(states, keys, windows, groups, no_shows)


def decide(poster: Poster, store: StateStore, programmes: ProgrammeSet, item: Item,
            now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    ev = item.event
    assert ev is not None  # noqa: S101
    view = EventView(new_id(), ev.type, ev.occurred_at, ev.attributes)
    decision = evaluate(programmes, view, store.states[item.patient_id], now)
    outcome, effects = book(poster, store, programmes, item.patient_id, item.wallet_id, view, decision)
    if outcome["awards"]:
        item.messages.append(points_changed(item.patient_id, view.id, sum(a["points"] for a in outcome["awards"]),
                                             outcome["balance"]))
    row = {"id": view.id, "type": ev.type, "patient_id": item.patient_id, "source": ev.source,
           "source_event_id": ev.source_event_id, "payload_hash": item.payload_hash, "occurred_at": ev.occurred_at,
           "received_at": now, "attributes": ev.attributes, "status": "accepted", "outcome": outcome,
           "effects": effects, "revoked_at": None, "revoke_reason": None,
           "replay_group": replay_group(programmes, view)}
    return outcome, row


def points_changed(patient_id: str, event_id: str, points: int, balance: int) -> tuple[str, str, dict[str, Any]]:
    return ("points.changed", patient_id, {"patient_id": patient_id, "event_id": event_id, "points": points,
                                           "balance": balance})


def book(poster: Poster, store: StateStore, programmes: ProgrammeSet, patient_id: str, wallet_id: str,
          view: EventView, decision: Decision, transfers: list[str] | None = None,
          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fold a decision into the rule state and post its awards (unless `transfers`,
    the entries already posted for exactly these awards, are given); the event's
    outcome and recorded effects."""
    state = store.states[patient_id]
    judged = {"suspended": state.suspended_at(view.occurred_at) is not None, "tier": state.tier}
    created_suspension = None
    if decision.suspension is not None and not decision.suspension.id:
        decision.suspension.id = created_suspension = new_id()
        store.mark_new_suspension(created_suspension)
    apply(state, decision)
    store.record(patient_id, decision)
    awards = [{"rule": a.rule, "points": a.points, "message": a.message} for a in decision.awards]
    if transfers is None:
        transfers = post_awards(poster, programmes, wallet_id, view, decision, member=patient_id)
    outcome = {"event_id": view.id, "duplicate": False, "awards": awards,
               "notices": [{"code": n.code, "message": n.message} for n in decision.notices],
               "balance": poster.wallet(wallet_id).balance}
    if decision.experiments:  # the experiment variants it was judged under (experiments)
        outcome["experiments"] = decision.experiments
    effects = {
        "event_id": view.id, "version": decision.version, "transfers": transfers,
        "counters": [[k, d] for k, (d, _c) in decision.counters.items()],
        "days": [[g, d.isoformat()] for g, d in decision.days],
        "no_show_updates": decision.no_show_updates, "suspension_created": created_suspension,
        "suspension_extended": [decision.suspension.id, decision.suspension_previous_end.isoformat(),
                                decision.suspension.ends_at.isoformat()]
        if decision.suspension is not None and decision.suspension_previous_end is not None else None,
        "streak_units": decision.streak_units, "judged": judged,
    }
    return outcome, effects


def post_awards(poster: Poster, programmes: ProgrammeSet, wallet_id: str, view: EventView,
                 decision: Decision, member: str | None = None) -> list[str]:
    """`member`: whose the awards are, recorded when `wallet_id` is their household's wallet."""
    prog = programmes.at(view.occurred_at)
    expires = add_months(view.occurred_at.astimezone(prog.tz), prog.settings.expiry_months)
    transfers = []
    for award in decision.awards:
        if award.points > 0:
            posted = poster.credit(wallet_id, award.points, kind="earn", counterparty=System.issuance,
                                   at=view.occurred_at, expires_at=expires, rule=award.rule,
                                   version=decision.version, event_id=view.id, message=award.message,
                                   member=member)
        else:
            posted = poster.debit(wallet_id, -award.points, kind="penalty", counterparty=System.penalties,
                                  at=view.occurred_at, allow_debt=True, rule=award.rule, version=decision.version,
                                  event_id=view.id, message=award.message, member=member)
        transfers.append(posted.id)
    return transfers
