"""Tiers (普通 / 银卡 / 金卡) by points earned in the trailing 12 months, never by
balance. An earning upgrades at once, in the ingest's own transaction
(`upgrade_after_earning`); only the nightly job (`recompute`) lowers a tier.
Benefits: the share of the registration fee the patient pays, and an assigned
health advisor. Every change leaves a `tier_changes` row and a `tiers.changed`
outbox message (ids only) in the same transaction.

Lock order: a tier writer that waits takes the patient row before the wallet,
as scheduling does; ingest, which already holds wallets, takes patient rows
with SKIP LOCKED (a patient another transaction holds is upgraded by the next
earning or the nightly recompute), so neither can deadlock the other."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import add_months, utc_now
from carepoints.ledger import service as ledger
from carepoints.ledger.posting import Poster
from carepoints.patients.errors import PatientNotFoundError
from carepoints.security import service as security
from carepoints.tiers import repository as repo
from carepoints.tiers.errors import AdvisorNotIncludedError, StaffNotFoundError
from carepoints.tiers.schemas import (
    RANK,
    TIERS,
    TOP,
    Tier,
    TierBenefit,
    default_benefits,
    default_thresholds,
)

WINDOW_MONTHS = 12
HISTORY = 20
FEN = Decimal("0.01")


class TierSettings(Protocol):
    """The programme settings tiers need (rules.programme.Settings is one)."""

    @property
    def tiers(self) -> Mapping[str, int]: ...

    @property
    def tier_benefits(self) -> Mapping[str, TierBenefit]: ...


@dataclass(frozen=True, slots=True)
class StoredSettings:
    tiers: Mapping[str, int]
    tier_benefits: Mapping[str, TierBenefit]


def settings_at(session: Session, at: datetime) -> StoredSettings:
    """The tier settings of the programme in force at `at` (defaults where it names none)."""
    raw = repo.programme_settings(session, at)
    benefits = raw.get("tier_benefits")
    return StoredSettings(
        tiers=dict(raw.get("tiers") or default_thresholds()),
        tier_benefits={k: TierBenefit.model_validate(v) for k, v in benefits.items()}
        if isinstance(benefits, dict) else default_benefits())


# --- the pure core ---------------------------------------------------------------------

def tier_for(earned: int, thresholds: Mapping[str, int]) -> str:
    """The highest tier whose threshold the earned points reach."""
    tier = Tier.standard.value
    for t in TIERS[1:]:
        if t.value in thresholds and earned >= thresholds[t.value]:
            tier = t.value
    return tier


def next_tier(tier: str, earned: int, thresholds: Mapping[str, int]) -> dict[str, Any] | None:
    """The tier above `tier` and the points still to earn for it; None at the top."""
    for t in TIERS[RANK.get(tier, 0) + 1:]:
        need = thresholds.get(t.value)
        if need is not None:
            return {"tier": t.value, "points_needed": max(0, need - earned)}
    return None


def fee_share(tier: str, settings: TierSettings) -> Decimal:
    """The share of the registration fee a patient of this tier pays (1 = all of it)."""
    benefit = settings.tier_benefits.get(tier)
    return benefit.fee_share if benefit is not None else Decimal(1)


def discount(session_or_settings: Session | TierSettings, tier: str, fee: Decimal) -> Decimal:
    """The tier's discount on a fee, in CNY rounded to the fen (ROUND_HALF_UP). With a
    session, the settings of the programme in force now are read."""
    settings = (settings_at(session_or_settings, utc_now()) if isinstance(session_or_settings, Session)
                else session_or_settings)
    return (fee * (1 - fee_share(tier, settings))).quantize(FEN, rounding=ROUND_HALF_UP)


def has_advisor(tier: str, settings: TierSettings) -> bool:
    benefit = settings.tier_benefits.get(tier)
    return benefit is not None and benefit.advisor


def window_start(now: datetime) -> datetime:
    """The start of the trailing 12 calendar months (the hospital's calendar)."""
    return add_months(now.astimezone(get_settings().tz), -WINDOW_MONTHS)


# --- changes ---------------------------------------------------------------------------

def upgrade_after_earning(session: Session, patient_ids: Iterable[str], now: datetime, settings: TierSettings, *,
                          known: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Raise the tier of these patients (who have just earned) where their earned points
    now reach a higher one; never lowers. `known` (patient → tier as the caller read
    it) spares the patients already at the top and the lookup when nobody rises: one
    grouped query then. Answers the changes made."""
    ids = [p for p in set(patient_ids) if known is None or RANK.get(known.get(p, ""), 0) < RANK[TOP]]
    if not ids:
        return []
    earned = ledger.earned_by(session, ids, window_start(now))
    wanted = {pid: tier_for(e, settings.tiers) for pid, e in earned.items()}
    rising = {pid: t for pid, t in wanted.items()
              if RANK[t] > (RANK.get(known.get(pid, ""), 0) if known is not None else 0)}
    if not rising:
        return []
    # Under the wallet locks ingest holds: the row's tier is read fresh, and a row another
    # transaction holds is skipped rather than waited for (see the module's lock order).
    current = repo.tiers_of(session, rising, lock=True, skip_locked=True)
    changes = [(pid, current[pid], t) for pid, t in sorted(rising.items())
               if pid in current and RANK[t] > RANK.get(current[pid], 0)]
    return _apply(session, changes, earned, now, "upgrade", settings)


def recompute(session: Session, now: datetime, settings: TierSettings, *, limit: int = 500,
              after: str = "") -> dict[str, Any]:
    """The nightly job's step: the next `limit` patients in id order after `after` get
    the tier their earned points give, up or down. Those that change are locked
    (patient row, then wallet: an earning in flight commits first and is counted) and
    their earned points read again under the locks. Answers {examined, changed, last}."""
    page = repo.patients_after(session, after, limit)
    if not page:
        return {"examined": 0, "changed": 0, "last": after}
    since = window_start(now)
    tiers = dict(page)
    earned = ledger.earned_by(session, tiers, since)
    moving = [pid for pid, tier in tiers.items() if tier_for(earned[pid], settings.tiers) != tier]
    changes: list[tuple[str, str, str]] = []
    if moving:
        current = repo.tiers_of(session, moving, lock=True)
        Poster(session, now).lock_patients(set(current))
        earned.update(ledger.earned_by(session, current, since))
        changes = [(pid, tier, target) for pid, tier in sorted(current.items())
                   if (target := tier_for(earned[pid], settings.tiers)) != tier]
    made = _apply(session, changes, earned, now, "recompute", settings)
    return {"examined": len(page), "changed": len(made), "last": page[-1][0]}


def _apply(session: Session, changes: list[tuple[str, str, str]], earned: Mapping[str, int], now: datetime,
           reason: str, settings: TierSettings) -> list[dict[str, Any]]:
    """Write (patient, from, to) changes under the rows' locks: the tier, its history row,
    the outbox message; an advisor ends with the last tier that included one."""
    if not changes:
        return []
    ids = {pid: new_id() for pid, _old, _new in changes}
    rows: list[dict[str, Any]] = [{"id": ids[pid], "patient_id": pid, "from_tier": old, "to_tier": new,
                                   "reason": reason, "earned": earned.get(pid, 0), "at": now}
                                  for pid, old, new in changes]
    repo.set_tiers(session, [(pid, new) for pid, _old, new in changes])
    repo.add_changes(session, rows)
    released = set(repo.drop_advisors(session, [pid for pid, old, new in changes
                                                if has_advisor(old, settings) and not has_advisor(new, settings)]))
    messages: list[tuple[str, str | None, dict[str, Any]]] = [
        ("tiers.changed", pid, {"patient_id": pid, "change_id": ids[pid], "from": old, "to": new, "reason": reason,
                                "advisor_released": pid in released})
        for pid, old, new in changes]
    enqueue_many(session.connection(), messages, now)
    return rows


# --- advisors and the patient's view ------------------------------------------------------

def _advisor_doc(found: tuple[str, str] | None) -> dict[str, str] | None:
    return {"id": found[0], "name": found[1]} if found is not None else None


def advisor_of(session: Session, patient_id: str) -> dict[str, str] | None:
    """The patient's health advisor {id, name} (name: the staff user's login name), or None."""
    return _advisor_doc(repo.advisor_of(session, patient_id)) if is_id(patient_id) else None


def assign_advisor(session: Session, patient_id: str, staff_user_id: str | None, now: datetime,
                   settings: TierSettings, *, actor: Actor) -> dict[str, str] | None:
    """Assign an active staff user as the patient's health advisor (replacing any other),
    or end the assignment with None. Only a tier whose benefits include an advisor may
    have one. Audited (`tiers:advisor:assign` / `tiers:advisor:end`) and announced
    (`tiers.advisor_changed`, ids only) in the caller's transaction."""
    current = repo.tiers_of(session, [patient_id], lock=True) if is_id(patient_id) else {}
    if patient_id not in current:
        raise PatientNotFoundError()
    if staff_user_id is None:
        if repo.drop_advisors(session, [patient_id]):
            audit.record(session, actor, "tiers:advisor:end", now, patient_id=patient_id)
            enqueue_many(session.connection(), [("tiers.advisor_changed", patient_id,
                                                 {"patient_id": patient_id, "staff_user_id": None})], now)
        return None
    staff = security.active_staff(session, staff_user_id) if is_id(staff_user_id) else None
    if staff is None:
        raise StaffNotFoundError()
    tier = current[patient_id]
    if not has_advisor(tier, settings):
        raise AdvisorNotIncludedError(tier=tier)
    repo.put_advisor(session, patient_id, staff[0], actor.id, now)
    audit.record(session, actor, "tiers:advisor:assign", now, subject_id=staff[0], patient_id=patient_id,
                 tier=tier)
    enqueue_many(session.connection(), [("tiers.advisor_changed", patient_id,
                                         {"patient_id": patient_id, "staff_user_id": staff[0]})], now)
    return _advisor_doc(staff[:2])


def view(session: Session, patient_id: str, now: datetime, settings: TierSettings) -> dict[str, Any]:
    """`GET /patients/{id}/tier`: the tier, points earned in the last 12 months, the next
    tier and what it still needs, the advisor and the latest changes (newest first)."""
    tier = repo.tiers_of(session, [patient_id]).get(patient_id) if is_id(patient_id) else None
    if tier is None:
        raise PatientNotFoundError()
    earned = ledger.earned_by(session, [patient_id], window_start(now))[patient_id]
    return {"tier": tier, "earned_12m": earned, "next": next_tier(tier, earned, settings.tiers),
            "advisor": advisor_of(session, patient_id), "history": repo.history(session, patient_id, HISTORY)}
