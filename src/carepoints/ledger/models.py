"""Double-entry, append-only ledger tables.

Every transfer moves a positive amount from one account to another; exactly
one side is a wallet (whose hash chain it extends), the other a system
account. System balances are derived from transfers, never updated per event.
A wallet row carries its cached balance, debt, held total and chain head and is
the row locked by every use case that changes it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # wallet | system
    code: Mapped[str | None] = mapped_column(String(32), unique=True)
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"), unique=True)
    # A household's pooled wallet (家庭积分) has no patient; while a patient is a member, their
    # own wallet points at it (set and cleared under both row locks). Plain columns with a
    # unique index rather than constraints: SQLite would have to rebuild `accounts` to add those.
    household_id: Mapped[str | None] = mapped_column(String(36))
    pool_id: Mapped[str | None] = mapped_column(String(36))
    balance: Mapped[int] = mapped_column(Integer, default=0)
    debt: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(Integer, default=0)
    chain_seq: Mapped[int] = mapped_column(Integer, default=0)
    chain_head: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("debt >= 0", name="debt_nonneg"),
        CheckConstraint("held >= 0 AND held <= balance + debt", name="held_covered"),
        Index("uq_accounts_household", "household_id", unique=True,
              sqlite_where=text("household_id IS NOT NULL"), postgresql_where=text("household_id IS NOT NULL")),
        Index("ix_accounts_pool", "pool_id",
              sqlite_where=text("pool_id IS NOT NULL"), postgresql_where=text("pool_id IS NOT NULL")),
    )


class Transfer(Base):
    __tablename__ = "transfers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    wallet_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    seq: Mapped[int] = mapped_column(Integer)
    from_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    to_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    rule_code: Mapped[str | None] = mapped_column(String(64))
    rule_version: Mapped[int | None] = mapped_column(Integer)
    event_id: Mapped[str | None] = mapped_column(String(36))
    reverses_id: Mapped[str | None] = mapped_column(String(36))
    hold_id: Mapped[str | None] = mapped_column(String(36))
    member_id: Mapped[str | None] = mapped_column(String(36))  # in a household wallet: the member it is for
    message: Mapped[str | None] = mapped_column(String(200))
    balance_after: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("wallet_id", "seq"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("from_account_id <> to_account_id", name="two_accounts"),
        Index("ix_transfers_reverses", "reverses_id", sqlite_where=text("reverses_id IS NOT NULL"),
              postgresql_where=text("reverses_id IS NOT NULL")),
        Index("ix_transfers_member", "member_id", "at", sqlite_where=text("member_id IS NOT NULL"),
              postgresql_where=text("member_id IS NOT NULL")),
    )


class Lot(Base):
    """Points earned together, spent first-expiring first; its id is the id of the transfer that created it."""

    __tablename__ = "lots"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    wallet_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    held: Mapped[int] = mapped_column(Integer, default=0)
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    member_id: Mapped[str | None] = mapped_column(String(36))  # in a household wallet: who earned it
    moved_from: Mapped[str | None] = mapped_column(String(36))  # the pooled lot a leaving member took this from

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_range"),
        CheckConstraint("held >= 0 AND held <= remaining", name="held_range"),
        Index("ix_lots_open", "wallet_id", "expires_at",
              sqlite_where=text("remaining > 0"), postgresql_where=text("remaining > 0")),
        Index("ix_lots_expiry", "expires_at",
              sqlite_where=text("remaining > 0"), postgresql_where=text("remaining > 0")),
        Index("ix_lots_moved_from", "moved_from", sqlite_where=text("moved_from IS NOT NULL"),
              postgresql_where=text("moved_from IS NOT NULL")),
    )


class Allocation(Base):
    """Which lots a transfer consumed (amount > 0) or restored (amount < 0)."""

    __tablename__ = "lot_allocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(String(36), index=True)
    lot_id: Mapped[str] = mapped_column(String(36), index=True)
    amount: Mapped[int] = mapped_column(Integer)


class Hold(Base):
    __tablename__ = "holds"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    wallet_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open")
    reference: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    transfer_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_holds_open", "expires_at",
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
    )


class HoldLot(Base):
    __tablename__ = "hold_lots"

    hold_id: Mapped[str] = mapped_column(ForeignKey("holds.id"), primary_key=True)
    lot_id: Mapped[str] = mapped_column(ForeignKey("lots.id"), primary_key=True)
    amount: Mapped[int] = mapped_column(Integer)


class Checkpoint(Base):
    __tablename__ = "ledger_checkpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    chains: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    heads: Mapped[dict[str, Any]] = mapped_column(JSON)
    signature: Mapped[str] = mapped_column(String(64))
