"""The rewards mall: catalogue, redemption, refund and verification (核销).

Lock order, the same in every use case so that none can deadlock another:
the patient row, then the reward's stock row, the patient's usage counter,
the wallet (inside the ledger service), and the budget row last."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor, record
from carepoints.config import get_settings
from carepoints.kit.ids import new_id, request_digest
from carepoints.kit.money import cny, to_fen
from carepoints.kit.outbox import enqueue
from carepoints.kit.time import add_months, day_start_utc, local_date
from carepoints.ledger import service as ledger
from carepoints.patients import institutions, proxies
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.rewards import budget
from carepoints.rewards import repository as repo
from carepoints.rewards.errors import (
    CouponExpiredError,
    CouponNotFoundError,
    CouponNotYetValidError,
    CouponRefundedError,
    CouponUsedError,
    CouponUsedRefundError,
    IdempotencyConflictError,
    LimitReachedError,
    NotRedeemableError,
    OutOfStockError,
    PatientInactiveError,
    RedemptionNotFoundError,
    RewardExistsError,
    RewardInactiveError,
    RewardNotAvailableError,
    RewardNotFoundError,
    RewardNotValidError,
    StockUnlimitedError,
)
from carepoints.rewards.schemas import RedemptionCreate, RewardCreate, RewardUpdate
from carepoints.rules.programme import Programme, RewardSpec
from carepoints.rules.service import current_settings
from carepoints.scheduling.schemas import ForPatient, PatientRef

# Codes are read aloud and typed at the desk: no 0/O or 1/I. 12 of 32 symbols = 60 bits.
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_CODE_LEN = 12
_CODED_KINDS = frozenset({"coupon", "pharmacy_voucher", "privilege", "lecture_seat"})
_PERIOD_WORDS = {"day": ("每天", "a day"), "week": ("每周", "a week"), "month": ("每月", "a month"),
                 "year": ("每年", "a year"), "ever": ("每人限", "per person")}


def patient_of(session: Session, patient_id: str | None, ref: PatientRef | None) -> patients.Resolved:
    """The patient a request names, locked for the rest of the transaction."""
    return patients.locked(session, patient_id, ref)


# --- catalogue ----------------------------------------------------------------------------

def _spec_row(spec: RewardSpec) -> dict[str, Any]:
    return {
        "kind": spec.kind, "names": spec.names.model_dump(), "points": spec.points,
        "tier_points": dict(spec.tier_points), "stock_total": spec.stock,
        "limit_count": spec.limit.count if spec.limit else None,
        "limit_period": spec.limit.period if spec.limit else None,
        "valid_from": spec.valid_from, "valid_to": spec.valid_to, "active": spec.active,
        "cost_fen": to_fen(spec.cost_cny), "code_valid_days": spec.code_valid_days, "details": dict(spec.details),
        "institution_codes": sorted(set(spec.institutions)) or None}


def sync_catalogue(session: Session, programme: Programme, now: datetime, *, only_missing: bool = False) -> int:
    """Create or update the programme file's rewards by code (stock never below what is
    already redeemed); with `only_missing`, only create the ones not there yet (start-up
    must never undo an admin's change). Items the file does not name are left as they are."""
    conn = session.connection()
    changed = 0
    for spec in programme.rewards:
        row = _spec_row(spec)
        existing = repo.reward_by_code(conn, spec.code)
        if existing is None:
            conn.execute(insert(repo.rewards), [{**row, "id": new_id(), "code": spec.code, "stock_used": 0,
                                                 "institution_id": None, "source": "programme",
                                                 "created_at": now, "updated_at": now}])
        elif not only_missing:
            if row["stock_total"] is not None:
                row["stock_total"] = max(row["stock_total"], existing["stock_used"])
            conn.execute(update(repo.rewards).where(repo.rewards.c.id == existing["id"])
                         .values(**row, updated_at=now))
        else:
            continue
        changed += 1
    return changed


def create_reward(session: Session, data: RewardCreate, actor: Actor, now: datetime) -> dict[str, Any]:
    conn = session.connection()
    if repo.reward_by_code(conn, data.code) is not None:
        raise RewardExistsError()
    rid = new_id()
    conn.execute(insert(repo.rewards), [{**_spec_row(data), "id": rid, "code": data.code, "stock_used": 0,
                                         "institution_id": data.institution_id, "source": "admin",
                                         "created_at": now, "updated_at": now}])
    record(session, actor, "rewards:reward:create", now, subject_id=rid, code=data.code)
    return reward_doc(_reward(conn, data.code), None)


def update_reward(session: Session, code: str, data: RewardUpdate, actor: Actor, now: datetime) -> dict[str, Any]:
    conn = session.connection()
    current = _reward(conn, code)
    values: dict[str, Any] = {}
    for name in ("points", "tier_points", "valid_from", "valid_to", "active", "code_valid_days"):
        if name in data.model_fields_set:
            values[name] = getattr(data, name)
    if data.names is not None:
        values["names"] = data.names.model_dump()
    if data.cost_cny is not None:
        values["cost_fen"] = to_fen(data.cost_cny)
    if data.unlimited_stock:
        values["stock_total"] = None
    elif data.stock is not None:
        values["stock_total"] = repo.at_least_used(conn, data.stock)  # never below what a racer just took
    if data.no_limit:
        values["limit_count"] = values["limit_period"] = None
    elif data.limit is not None:
        values["limit_count"], values["limit_period"] = data.limit.count, data.limit.period
    start = values.get("valid_from", current["valid_from"])
    end = values.get("valid_to", current["valid_to"])
    if start and end and end < start:
        raise RewardNotValidError(valid_from=start, valid_to=end)
    if values:
        conn.execute(update(repo.rewards).where(repo.rewards.c.id == current["id"]).values(**values, updated_at=now))
        record(session, actor, "rewards:reward:update", now, subject_id=current["id"], fields=sorted(values))
    return reward_doc(_reward(conn, code), None)


def add_stock(session: Session, code: str, quantity: int, actor: Actor, now: datetime) -> dict[str, Any]:
    """Add `quantity` to a counted stock in one UPDATE (stock_total + n, so two admins adding at
    once both count); 409 `rewards.stock_unlimited` for a reward without a counted stock."""
    conn = session.connection()
    current = _reward(conn, code)
    done = conn.execute(update(repo.rewards).where(repo.rewards.c.id == current["id"],
                                                   repo.rewards.c.stock_total.is_not(None))
                        .values(stock_total=repo.rewards.c.stock_total + quantity, updated_at=now)).rowcount
    if not done:
        raise StockUnlimitedError()
    record(session, actor, "rewards:reward:stock", now, subject_id=current["id"], added=quantity)
    return reward_doc(_reward(conn, code), None)


def _reward(conn: Any, code: str) -> dict[str, Any]:
    found = repo.reward_by_code(conn, code)
    if found is None:
        raise RewardNotFoundError()
    return found


def price(reward: dict[str, Any], tier: str | None) -> int:
    """A reward's points for a patient of `tier` (the base price when the tier has none)."""
    return int(reward["tier_points"].get(tier or "", reward["points"]))


def reward_doc(r: dict[str, Any], tier: str | None) -> dict[str, Any]:
    stock = None if r["stock_total"] is None else r["stock_total"] - r["stock_used"]
    return {
        "code": r["code"], "kind": r["kind"], "names": r["names"], "points": price(r, tier),
        "base_points": r["points"], "tier_points": r["tier_points"], "stock": stock,
        "valid_from": r["valid_from"], "valid_to": r["valid_to"], "active": r["active"],
        "limit": {"count": r["limit_count"], "period": r["limit_period"]} if r["limit_count"] else None,
        "cost_cny": cny(r["cost_fen"]), "code_valid_days": r["code_valid_days"], "details": r["details"],
        "institution_id": r["institution_id"], "institutions": r.get("institution_codes") or []}


def catalogue(session: Session, patient_id: str | None, now: datetime, *, include_inactive: bool = False
              ) -> dict[str, Any]:
    """The catalogue, priced for the patient's tier when one is named; items outside their
    validity window are left out unless `include_inactive`."""
    conn = session.connection()
    tier = None
    mine: set[str] | None = None  # (ops.alliance) the patient's institution codes
    if patient_id is not None:
        if not patients.exists(session, patient_id):
            raise PatientNotFoundError()
        tier = patients.tier_of(session, patient_id)
        mine = institutions.patient_codes(session, patient_id)
    today = local_date(now, get_settings().tz)
    items = [reward_doc(r, tier) for r in repo.all_rewards(conn, active_only=not include_inactive)
             if (include_inactive or _in_window(r, today)) and (mine is None or _offered(r, mine))]
    return {"items": items}


def _offered(r: dict[str, Any], codes: set[str]) -> bool:
    """(ops.alliance) Offered to a patient of these institutions (an unscoped reward is offered to all)."""
    scoped = r.get("institution_codes")
    return not scoped or bool(codes & set(scoped))


def _in_window(r: dict[str, Any], today: date) -> bool:
    return (r["valid_from"] is None or r["valid_from"] <= today) and (r["valid_to"] is None or today <= r["valid_to"])


def period_key(period: str, day: date) -> str:
    if period == "day":
        return day.isoformat()
    if period == "week":
        iso = day.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    if period == "year":
        return str(day.year)
    return "ever"


# --- redemption ---------------------------------------------------------------------------

def _new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_LEN))


def replay(prior: dict[str, Any] | None, digest: str) -> dict[str, Any] | None:
    """The earlier request under the same idempotency key, if it was this same request;
    the key used for a different request is a conflict."""
    if prior is not None and prior["request_hash"] != digest:
        raise IdempotencyConflictError()
    return prior


def normalise_code(raw: str) -> str:
    return "".join(ch for ch in raw.upper() if ch.isalnum())


def redeem(session: Session, data: RedemptionCreate, actor: Actor, now: datetime) -> tuple[dict[str, Any], bool]:
    """Spend points on a reward in one transaction: balance, stock, per-patient limit,
    validity and budget are all decided by the database (locks: patient, wallet, reward,
    usage, budget). Returns (redemption, created);
    the same idempotency key again answers the first redemption. Audited; the patient
    is told through the outbox."""
    conn = session.connection()
    patient = patient_of(session, data.patient_id, data.patient)
    pid = patient.patient_id
    digest = request_digest({"patient": pid, "reward": data.reward, "quantity": data.quantity,
                             "household": data.household, "proxy": data.proxy_patient_id,
                             "window": data.service_window, "institution": data.institution_id})
    on_behalf, authorisation = proxy_check(session, pid, data, now)  # a replay shows codes: checked first
    prior = replay(repo.redemption_by_key(conn, data.idempotency_key), digest)
    if prior is not None:
        return redemption_doc(session, prior), False
    if patient.status != "active":
        raise PatientInactiveError()
    wallet = ledger.spending_wallet(session, pid, household=data.household, now=now)  # locked
    reward = _reward(conn, data.reward)
    if not reward["active"]:
        raise RewardInactiveError()
    if reward["kind"] == "fee_offset":
        raise NotRedeemableError()
    if reward.get("institution_codes") and not _offered(reward, institutions.patient_codes(session, pid)):
        raise RewardNotAvailableError()  # (ops.alliance) another institution's reward
    today = local_date(now, get_settings().tz)
    if not _in_window(reward, today):
        raise RewardNotValidError(valid_from=reward["valid_from"] or "—", valid_to=reward["valid_to"] or "—")
    quantity = data.quantity
    if reward["stock_total"] is not None and not repo.take_stock(conn, reward["id"], quantity):
        raise OutOfStockError()
    key = None
    if reward["limit_count"]:
        key = period_key(reward["limit_period"] or "ever", today)
        if not repo.take_usage(conn, reward["id"], pid, key, quantity, reward["limit_count"]):
            zh, en = _PERIOD_WORDS[reward["limit_period"] or "ever"]
            raise LimitReachedError(count=reward["limit_count"], period_zh=zh, period_en=en)
    points = price(reward, patient.tier) * quantity
    budget_code = budget.institution_budget(session, reward, institutions.patient_codes(session, pid), now) \
        if reward.get("institution_codes") else None  # (ops.alliance)
    rid = new_id()
    posted = ledger.spend(session, wallet, points, now, message=f"兑换{reward['names']['zh']}", reference=rid,
                          member=pid if data.household else None)
    cost = reward["cost_fen"] * quantity
    row = {"id": rid, "patient_id": pid, "wallet_id": wallet, "reward_id": reward["id"], "quantity": quantity,
           "points": points, "cost_fen": cost, "status": "redeemed", "period_key": key, "transfer_id": posted.id,
           "refund_transfer_id": None, "refunded_points": None, "institution_id": data.institution_id,
           "budget_institution": budget_code,
           "actor_kind": actor.kind, "actor_id": actor.id, "proxy_patient_id": on_behalf,
           "idempotency_key": data.idempotency_key, "request_hash": digest, "created_at": now, "refunded_at": None}
    if not repo.insert_redemption(conn, row):
        raise IdempotencyConflictError()  # another patient's request took this key meanwhile
    if reward["kind"] in _CODED_KINDS:
        # valid for `code_valid_days` local days counting today: until the end of the last one
        expires = day_start_utc(today + timedelta(days=reward["code_valid_days"]), get_settings().tz)
        repo.insert_coupons(conn, [{
            "id": new_id(), "code": _new_code(), "redemption_id": rid, "patient_id": pid,
            "reward_id": reward["id"], "status": "issued", "valid_from": now, "expires_at": expires,
            "used_at": None, "used_by": None, "created_at": now} for _ in range(quantity)])
    record(session, actor, "rewards:redemption:create", now, subject_id=rid, patient_id=pid,
           on_behalf_of=pid if on_behalf else None, reward=reward["code"], quantity=quantity, points=points,
           proxy=on_behalf, authorisation_id=authorisation)
    enqueue(conn, "rewards.redeemed", {"patient_id": pid, "redemption_id": rid}, key=pid)
    budget.charge(session, cost, now)
    if budget_code is not None:
        budget.charge_institution(session, budget_code, cost, now)
    return redemption_doc(session, repo.redemption(conn, rid) or row), True


def proxy_check(session: Session, patient_id: str, data: ForPatient, now: datetime
                ) -> tuple[str | None, str | None]:
    """(who acted for the patient, the authorisation that lets them) once checked for `redeem`;
    (None, None) when the patient acts themselves."""
    if data.proxy_patient_id is None and not data.service_window:
        return None, None
    proxy = proxies.Proxy(data.proxy_patient_id)
    return proxy.label, proxies.check(session, patient_id, proxy, "redeem", now)


def redemption_doc(session: Session, r: dict[str, Any]) -> dict[str, Any]:
    conn = session.connection()
    codes = repo.coupons_of_redemption(conn, r["id"])
    reward = r.get("reward_code")
    if reward is None:
        found = conn.execute(repo.rewards.select().where(repo.rewards.c.id == r["reward_id"])).mappings().first()
        reward = found["code"] if found else None
    return {
        "id": r["id"], "patient_id": r["patient_id"], "reward": reward, "quantity": r["quantity"],
        "points": r["points"], "cost_cny": cny(r["cost_fen"]), "status": r["status"],
        "coupon_code": codes[0]["code"] if codes else None,
        "coupons": [coupon_doc(c) for c in codes],
        "created_at": r["created_at"], "refunded_at": r["refunded_at"], "refunded_points": r["refunded_points"],
        "proxy_patient_id": r["proxy_patient_id"], "institution_id": r["institution_id"]}


def coupon_doc(c: dict[str, Any]) -> dict[str, Any]:
    doc = {"code": c["code"], "status": c["status"], "valid_from": c["valid_from"], "expires_at": c["expires_at"],
           "used_at": c["used_at"], "redemption_id": c["redemption_id"], "patient_id": c["patient_id"]}
    if "reward_code" in c:
        doc |= {"reward": c["reward_code"], "kind": c["kind"], "names": c["names"]}
    return doc


def refund(session: Session, redemption_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """Return a redemption: the unexpired part of each consumed lot comes back (the part
    that expired meanwhile goes to expiry), with the stock, the limit room and the budget.
    Refused once any of its codes was used; a second refund answers the first."""
    conn = session.connection()
    found = repo.redemption(conn, redemption_id)
    if found is None:
        raise RedemptionNotFoundError()
    patients.lock(session, found["patient_id"])
    r = repo.redemption(conn, redemption_id) or found
    if r["status"] == "refunded":
        return redemption_doc(session, r)
    before = ledger.lock_wallet(session, r["wallet_id"], now).balance
    if repo.refund_coupons(conn, r["id"]):  # locks the codes: a verification in flight decides first
        raise CouponUsedRefundError()
    reward = conn.execute(repo.rewards.select().where(repo.rewards.c.id == r["reward_id"])).mappings().one()
    if reward["stock_total"] is not None:
        repo.return_stock(conn, reward["id"], r["quantity"])
    if r["period_key"] is not None:
        repo.return_usage(conn, reward["id"], r["patient_id"], r["period_key"], r["quantity"])
    months = current_settings(session).programme.settings.expiry_months
    posted = ledger.refund(session, r["transfer_id"], now, expires_at=add_months(now, months))
    restored = ledger.lock_wallet(session, r["wallet_id"], now).balance - before  # what expired stays gone
    repo.mark_refunded(conn, r["id"], posted.id, restored, now)
    record(session, actor, "rewards:redemption:refund", now, subject_id=r["id"], patient_id=r["patient_id"],
           points=restored)
    budget.charge(session, -r["cost_fen"], now, year_of=r["created_at"])
    if r.get("budget_institution"):  # (ops.alliance)
        budget.charge_institution(session, r["budget_institution"], -r["cost_fen"], now, year_of=r["created_at"])
    return redemption_doc(session, repo.redemption(conn, r["id"]) or r)


def redemption(session: Session, redemption_id: str) -> dict[str, Any]:
    found = repo.redemption(session.connection(), redemption_id)
    if found is None:
        raise RedemptionNotFoundError()
    return redemption_doc(session, found)


def redemptions_of(session: Session, patient_id: str, limit: int = 50) -> dict[str, Any]:
    if not patients.exists(session, patient_id):
        raise PatientNotFoundError()
    return {"items": [redemption_doc(session, r) for r in repo.redemptions_of(session.connection(), patient_id,
                                                                               limit)]}


def coupons_of(session: Session, patient_id: str, limit: int = 50) -> dict[str, Any]:
    if not patients.exists(session, patient_id):
        raise PatientNotFoundError()
    return {"items": [coupon_doc(c) for c in repo.coupons_of(session.connection(), patient_id, limit)]}


# --- verification (核销) -------------------------------------------------------------------

def coupon(session: Session, raw_code: str) -> dict[str, Any]:
    found = repo.coupon(session.connection(), normalise_code(raw_code))
    if found is None:
        raise CouponNotFoundError()
    return coupon_doc(found)


def verify(session: Session, raw_code: str, actor: Actor, now: datetime, *,
           institution_id: str | None = None) -> dict[str, Any]:
    """Use a code once (核销). Used, expired, refunded and unknown codes are refused with
    their own error; a verification leaves an audit row naming the staff member."""
    conn = session.connection()
    code = normalise_code(raw_code)
    if not code or len(code) > 24:
        raise CouponNotFoundError()
    if repo.use_coupon(conn, code, actor.id, now):
        found = repo.coupon(conn, code)
        assert found is not None  # noqa: S101 - just updated
        record(session, actor, "rewards:coupon:verify", now, subject_id=found["id"], patient_id=found["patient_id"],
               redemption_id=found["redemption_id"], institution_id=institution_id)
        return coupon_doc(found)
    found = repo.coupon(conn, code)
    if found is None:
        raise CouponNotFoundError()
    if found["status"] == "used":
        raise CouponUsedError(used_at=found["used_at"].isoformat() if found["used_at"] else "")
    if found["status"] == "refunded":
        raise CouponRefundedError()
    if found["expires_at"] <= now:
        raise CouponExpiredError(expires_at=found["expires_at"].isoformat())
    raise CouponNotYetValidError(valid_from=found["valid_from"].isoformat())
