"""The rewards mall (积分商城): catalogue, redemptions, coupon codes, cashier fee
offsets and the budget. Money is integer fen; points are integers.

Every money-like quantity is guarded by the database: stock by a guarded
update and a check constraint, per-patient limits by a guarded upsert on a
usage counter, idempotency by unique keys, the yearly budget by a guarded
update of its row when the hard stop is on."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class Reward(Base):
    __tablename__ = "rewards"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(24))  # fee_offset | coupon | pharmacy_voucher | privilege | lecture_seat
    names: Mapped[dict[str, str]] = mapped_column(JSON)
    points: Mapped[int] = mapped_column(Integer)
    tier_points: Mapped[dict[str, int]] = mapped_column(JSON)  # price per tier; missing tiers pay `points`
    stock_total: Mapped[int | None] = mapped_column(Integer)  # NULL = unlimited
    stock_used: Mapped[int] = mapped_column(Integer, default=0)
    limit_count: Mapped[int | None] = mapped_column(Integer)
    limit_period: Mapped[str | None] = mapped_column(String(8))  # day | week | month | year | ever
    valid_from: Mapped[date | None] = mapped_column(Date)  # local dates, both ends inclusive
    valid_to: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    cost_fen: Mapped[int] = mapped_column(Integer, default=0)  # the hospital's CNY cost of one, for the budget
    code_valid_days: Mapped[int] = mapped_column(Integer, default=30)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)  # e.g. {"discount_share": "0.80"}, {"privilege": ...}
    institution_id: Mapped[str | None] = mapped_column(String(36))
    # (ops.alliance) institution codes whose patients see and may redeem it; None = the whole alliance
    institution_codes: Mapped[list[str] | None] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16), default="admin")  # programme | admin
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("stock_used >= 0 AND (stock_total IS NULL OR stock_used <= stock_total)",
                        name="stock_covered"),
        CheckConstraint("cost_fen >= 0", name="cost_nonneg"),
    )


class Redemption(Base):
    __tablename__ = "redemptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    wallet_id: Mapped[str] = mapped_column(String(36))
    reward_id: Mapped[str] = mapped_column(ForeignKey("rewards.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    cost_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="redeemed")  # redeemed | refunded
    period_key: Mapped[str | None] = mapped_column(String(16))
    transfer_id: Mapped[str] = mapped_column(String(36))
    refund_transfer_id: Mapped[str | None] = mapped_column(String(36))
    refunded_points: Mapped[int | None] = mapped_column(Integer)
    institution_id: Mapped[str | None] = mapped_column(String(36))
    # (ops.alliance) the institution (code) whose budget the cost was counted against, if any
    budget_institution: Mapped[str | None] = mapped_column(String(32))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(36))
    proxy_patient_id: Mapped[str | None] = mapped_column(String(36))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("points > 0", name="points_positive"),
        Index("ix_redemptions_created", "created_at"),
    )


class RewardUsage(Base):
    """How many of a reward a patient holds in one limit period; the guarded
    upsert on this row is what makes a per-patient limit exact."""

    __tablename__ = "reward_usage"

    reward_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    period_key: Mapped[str] = mapped_column(String(16), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (CheckConstraint("used >= 0", name="used_nonneg"),)


class Coupon(Base):
    """One unguessable code per unit redeemed; verified (核销) once at the desk."""

    __tablename__ = "coupons"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    redemption_id: Mapped[str] = mapped_column(ForeignKey("redemptions.id"), index=True)
    patient_id: Mapped[str] = mapped_column(String(36), index=True)
    reward_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16), default="issued")  # issued | used | refunded
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FeeOffset(Base):
    """A cashier fee offset: a ledger hold the HIS commits or voids."""

    __tablename__ = "fee_offsets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    wallet_id: Mapped[str] = mapped_column(String(36))
    hold_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    institution_id: Mapped[str | None] = mapped_column(String(36))
    reference: Mapped[str | None] = mapped_column(String(100))  # the HIS's bill / registration number
    tier: Mapped[str] = mapped_column(String(16))
    fee_fen: Mapped[int] = mapped_column(Integer)
    tier_discount_fen: Mapped[int] = mapped_column(Integer)
    offset_fen: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    # none (nothing to offset) | held | committed | voided | refunded; an expired hold reads as expired
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))  # why nothing was offset, when it is a rule
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refund_transfer_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        CheckConstraint("points >= 0 AND offset_fen >= 0 AND tier_discount_fen >= 0 AND fee_fen >= 0",
                        name="amounts_nonneg"),
        Index("ix_fee_offsets_created", "created_at"),
    )


class BudgetYear(Base):
    """The CNY cost redeemed in one local calendar year, and which alerts went out."""

    __tablename__ = "budget_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    used_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    alerted: Mapped[int] = mapped_column(Integer, default=0)  # highest alert threshold sent, in percent

    __table_args__ = (CheckConstraint("used_fen >= 0", name="used_nonneg"),)


# --- alliance ---


class InstitutionBudgetYear(Base):
    """(ops.alliance) The CNY cost of an institution's scoped rewards redeemed in one local year:
    changed by a guarded update in the redeeming transaction, which refuses to pass its budget."""

    __tablename__ = "institution_budget_years"

    institution_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    used_fen: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (CheckConstraint("used_fen >= 0", name="used_nonneg"),)
