"""Every query of the rewards domain. The guarded statements here are what keeps
stock, limits and the budget exact under concurrency: each checks and changes
its row in one statement, and the caller reads the row count."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from carepoints.kit.bulk import upsert
from carepoints.kit.db import table
from carepoints.kit.ids import is_id
from carepoints.rewards.models import (
    BudgetYear,
    Coupon,
    FeeOffset,
    InstitutionBudgetYear,
    Redemption,
    Reward,
    RewardUsage,
)

rewards = table(Reward)
redemptions = table(Redemption)
institution_budget = table(InstitutionBudgetYear)
usage = table(RewardUsage)
coupons = table(Coupon)
offsets = table(FeeOffset)
budget = table(BudgetYear)


def reward_by_code(conn: Connection, code: str) -> dict[str, Any] | None:
    row = conn.execute(select(rewards).where(rewards.c.code == code)).mappings().first()
    return dict(row) if row else None


def all_rewards(conn: Connection, *, active_only: bool) -> list[dict[str, Any]]:
    stmt = select(rewards).order_by(rewards.c.points, rewards.c.code)
    if active_only:
        stmt = stmt.where(rewards.c.active.is_(True))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def _greatest(conn: Connection, a: Any, b: Any) -> Any:
    return func.max(a, b) if conn.dialect.name == "sqlite" else func.greatest(a, b)


def at_least_used(conn: Connection, stock: int) -> Any:
    """A stock total that the UPDATE itself keeps at or above the row's `stock_used`."""
    return _greatest(conn, stock, rewards.c.stock_used)


def take_stock(conn: Connection, reward_id: str, quantity: int) -> bool:
    """Take `quantity` from a counted stock; False when it does not cover them."""
    result = conn.execute(update(rewards).where(
        rewards.c.id == reward_id, rewards.c.stock_total.is_not(None),
        rewards.c.stock_used + quantity <= rewards.c.stock_total).values(stock_used=rewards.c.stock_used + quantity))
    return result.rowcount == 1


def return_stock(conn: Connection, reward_id: str, quantity: int) -> None:
    conn.execute(update(rewards).where(rewards.c.id == reward_id, rewards.c.stock_total.is_not(None),
                                       rewards.c.stock_used >= quantity)
                 .values(stock_used=rewards.c.stock_used - quantity))


def take_usage(conn: Connection, reward_id: str, patient_id: str, period_key: str, quantity: int,
               limit: int) -> bool:
    """Count `quantity` against a patient's limit in one period; False when over it."""
    if quantity > limit:
        return False
    ins = upsert(conn, usage).values(reward_id=reward_id, patient_id=patient_id, period_key=period_key,
                                      used=quantity)
    stmt = ins.on_conflict_do_update(
        index_elements=["reward_id", "patient_id", "period_key"],
        set_={"used": usage.c.used + quantity}, where=usage.c.used + quantity <= limit).returning(usage.c.used)
    return conn.execute(stmt).first() is not None  # an INSERT's rowcount is not reliable across drivers


def return_usage(conn: Connection, reward_id: str, patient_id: str, period_key: str, quantity: int) -> None:
    conn.execute(update(usage).where(usage.c.reward_id == reward_id, usage.c.patient_id == patient_id,
                                     usage.c.period_key == period_key, usage.c.used >= quantity)
                 .values(used=usage.c.used - quantity))


def add_budget(conn: Connection, year: int, fen: int, cap_fen: int | None) -> int | None:
    """Add `fen` to the year's redeemed cost (negative to give back); with a cap, only
    while the total stays within it. Returns the new total, or None when refused."""
    conn.execute(upsert(conn, budget).values(year=year, used_fen=0, alerted=0)
                 .on_conflict_do_nothing(index_elements=["year"]))
    stmt = update(budget).where(budget.c.year == year).values(used_fen=budget.c.used_fen + fen)
    if cap_fen is not None and fen > 0:
        stmt = stmt.where(budget.c.used_fen + fen <= cap_fen)
    if conn.execute(stmt).rowcount != 1:
        return None
    return int(conn.execute(select(budget.c.used_fen).where(budget.c.year == year)).scalar_one())


def add_institution_budget(conn: Connection, code: str, year: int, fen: int, cap_fen: int) -> bool:
    """(ops.alliance) Add `fen` to the institution's year (negative to give back); a positive
    amount only while the total stays within `cap_fen`. False when refused."""
    conn.execute(upsert(conn, institution_budget).values(institution_code=code, year=year, used_fen=0)
                 .on_conflict_do_nothing(index_elements=["institution_code", "year"]))
    where = [institution_budget.c.institution_code == code, institution_budget.c.year == year]
    if fen > 0:
        where.append(institution_budget.c.used_fen + fen <= cap_fen)
    else:
        where.append(institution_budget.c.used_fen + fen >= 0)
    stmt = update(institution_budget).where(*where).values(used_fen=institution_budget.c.used_fen + fen)
    return bool(conn.execute(stmt).rowcount == 1)


def institution_budget_used(conn: Connection, code: str, year: int) -> int:
    return int(conn.execute(select(institution_budget.c.used_fen).where(
        institution_budget.c.institution_code == code, institution_budget.c.year == year)).scalar() or 0)


def raise_alert(conn: Connection, year: int, percent: int) -> bool:
    """Record that the `percent` alert went out this year; True only for the first caller."""
    result = conn.execute(update(budget).where(budget.c.year == year, budget.c.alerted < percent)
                          .values(alerted=percent))
    return result.rowcount == 1


def budget_used(conn: Connection, year: int) -> tuple[int, int]:
    row = conn.execute(select(budget.c.used_fen, budget.c.alerted).where(budget.c.year == year)).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def insert_redemption(conn: Connection, row: dict[str, Any]) -> bool:
    """False when the idempotency key is already taken (by a request committed meanwhile)."""
    stmt = (upsert(conn, redemptions).values(**row).on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(redemptions.c.id))
    return conn.execute(stmt).first() is not None


def redemption_by_key(conn: Connection, key: str) -> dict[str, Any] | None:
    row = conn.execute(select(redemptions).where(redemptions.c.idempotency_key == key)).mappings().first()
    return dict(row) if row else None


def redemption(conn: Connection, redemption_id: str) -> dict[str, Any] | None:
    if not is_id(redemption_id):
        return None
    row = conn.execute(select(redemptions).where(redemptions.c.id == redemption_id)).mappings().first()
    return dict(row) if row else None


def redemptions_of(conn: Connection, patient_id: str, limit: int) -> list[dict[str, Any]]:
    stmt = (select(redemptions, rewards.c.code.label("reward_code"), rewards.c.kind, rewards.c.names)
            .join(rewards, rewards.c.id == redemptions.c.reward_id)
            .where(redemptions.c.patient_id == patient_id)
            .order_by(redemptions.c.created_at.desc(), redemptions.c.id.desc()).limit(limit))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def mark_refunded(conn: Connection, redemption_id: str, transfer_id: str, points: int, now: datetime) -> bool:
    result = conn.execute(update(redemptions).where(redemptions.c.id == redemption_id,
                                                    redemptions.c.status == "redeemed")
                          .values(status="refunded", refund_transfer_id=transfer_id, refunded_points=points,
                                  refunded_at=now))
    return result.rowcount == 1


def insert_coupons(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(coupons), rows)


def coupons_of_redemption(conn: Connection, redemption_id: str) -> list[dict[str, Any]]:
    stmt = select(coupons).where(coupons.c.redemption_id == redemption_id).order_by(coupons.c.code)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def coupons_of(conn: Connection, patient_id: str, limit: int) -> list[dict[str, Any]]:
    stmt = (select(coupons, rewards.c.code.label("reward_code"), rewards.c.kind, rewards.c.names)
            .join(rewards, rewards.c.id == coupons.c.reward_id).where(coupons.c.patient_id == patient_id)
            .order_by(coupons.c.created_at.desc(), coupons.c.code).limit(limit))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def coupon(conn: Connection, code: str) -> dict[str, Any] | None:
    stmt = (select(coupons, rewards.c.code.label("reward_code"), rewards.c.kind, rewards.c.names)
            .join(rewards, rewards.c.id == coupons.c.reward_id).where(coupons.c.code == code))
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def use_coupon(conn: Connection, code: str, staff_id: str, now: datetime) -> bool:
    """Mark a code used, once, and only inside its validity."""
    result = conn.execute(update(coupons).where(
        coupons.c.code == code, coupons.c.status == "issued", coupons.c.valid_from <= now, coupons.c.expires_at > now)
        .values(status="used", used_at=now, used_by=staff_id))
    return result.rowcount == 1


def refund_coupons(conn: Connection, redemption_id: str) -> int:
    """Void the codes of a redemption; returns how many were already used (then nothing
    changes). The codes are locked first, so a verification committing meanwhile is seen."""
    stmt = select(coupons.c.status).where(coupons.c.redemption_id == redemption_id).order_by(coupons.c.id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    used = sum(1 for (status,) in conn.execute(stmt) if status == "used")
    if used:
        return used
    conn.execute(update(coupons).where(coupons.c.redemption_id == redemption_id, coupons.c.status == "issued")
                 .values(status="refunded"))
    return 0


# --- fee offsets ----------------------------------------------------------------------

def insert_offset(conn: Connection, row: dict[str, Any]) -> bool:
    stmt = (upsert(conn, offsets).values(**row).on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(offsets.c.id))
    return conn.execute(stmt).first() is not None


def offset_by_key(conn: Connection, key: str) -> dict[str, Any] | None:
    row = conn.execute(select(offsets).where(offsets.c.idempotency_key == key)).mappings().first()
    return dict(row) if row else None


def offset(conn: Connection, offset_id: str) -> dict[str, Any] | None:
    if not is_id(offset_id):
        return None
    row = conn.execute(select(offsets).where(offsets.c.id == offset_id)).mappings().first()
    return dict(row) if row else None


def set_offset_status(conn: Connection, offset_id: str, old: str, new: str, now: datetime,
                      **values: Any) -> bool:
    result = conn.execute(update(offsets).where(offsets.c.id == offset_id, offsets.c.status == old)
                          .values(status=new, settled_at=now, **values))
    return result.rowcount == 1


def offsets_between(conn: Connection, start: datetime, end: datetime,
                    institution_id: str | None) -> list[dict[str, Any]]:
    """Offsets created or settled between `start` and `end`."""
    stmt = select(offsets).where(or_(and_(offsets.c.created_at >= start, offsets.c.created_at < end),
                                     and_(offsets.c.settled_at >= start, offsets.c.settled_at < end))).order_by(
        offsets.c.created_at, offsets.c.id)
    if institution_id is not None:
        stmt = stmt.where(offsets.c.institution_id == institution_id)
    return [dict(r) for r in conn.execute(stmt).mappings()]
