"""The price catalogue (收费项目目录) of each institution, its packages (套餐), the institution's
insurance settings and the uploads the admin page stages between preview and confirm.

Money is integer fen. An item's self-pay share (自付比例) is in basis points (10000 = 100%):
甲 items 0, 丙 items 10000, 乙 items their own `self_pay_bp` when the catalogue sets one and
otherwise the institution's `class_b_self_pay_bp` (pricing.estimate.self_pay_bp decides).
Items are never deleted, only deactivated, so that packages and past answers keep their names."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class PriceItem(Base):
    """One chargeable item (检查, 检验, 药品, …) at one institution; `code` is the hospital's own."""

    __tablename__ = "price_items"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"))
    code: Mapped[str] = mapped_column(String(40))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(16))  # schemas.Category
    unit: Mapped[str] = mapped_column(String(20))
    price_fen: Mapped[int] = mapped_column(Integer)
    insurance_class: Mapped[str] = mapped_column(String(1))  # a 甲 | b 乙 | c 丙
    self_pay_bp: Mapped[int | None] = mapped_column(Integer)  # 乙 only: this item's share, else the institution's
    equivalent_group: Mapped[str | None] = mapped_column(String(40))  # interchangeable items share a group
    active: Mapped[bool] = mapped_column(Boolean)
    valid_from: Mapped[date | None] = mapped_column(Date)  # local days, both inclusive
    valid_to: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("institution_id", "code"),
        Index("ix_price_items_group", "institution_id", "equivalent_group"),
        CheckConstraint("price_fen >= 0", name="price_not_negative"),
        CheckConstraint("insurance_class IN ('a', 'b', 'c')", name="insurance_class"),
        CheckConstraint("self_pay_bp IS NULL OR (self_pay_bp BETWEEN 0 AND 10000 AND insurance_class = 'b')",
                        name="self_pay_bp_range"),
    )


class PricePackage(Base):
    """A named set of items with quantities (体检套餐, 手术套餐)."""

    __tablename__ = "price_packages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"))
    code: Mapped[str] = mapped_column(String(40))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("institution_id", "code"),)


class PricePackageItem(Base):
    __tablename__ = "price_package_items"

    package_id: Mapped[str] = mapped_column(ForeignKey("price_packages.id"), primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("price_items.id"), primary_key=True)
    qty: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)  # the file's order

    __table_args__ = (CheckConstraint("qty BETWEEN 1 AND 999", name="qty_range"),)


class PricingSetting(Base):
    """An institution's share of 乙 items the patient pays themself (local policy)."""

    __tablename__ = "pricing_settings"

    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"), primary_key=True)
    class_b_self_pay_bp: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("class_b_self_pay_bp BETWEEN 0 AND 10000", name="class_b_range"),)


class PriceImportUpload(Base):
    """A catalogue file the admin page previewed, kept until it is confirmed (then deleted) or a day
    has passed; the confirm imports exactly these bytes."""

    __tablename__ = "price_import_uploads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"))
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of content
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
