"""The estimate's arithmetic, pure and in integers (fen and basis points).

- A line's amount is unit price × quantity.
- Its self-pay part is amount × share / 10000, rounded half up to the fen, per line; the
  totals add the lines' rounded parts, and the insured part is total − self-pay.
- The share: 甲 0%, 丙 100%, 乙 the item's own share when the catalogue sets one, otherwise
  the institution's (default 10%).
- A cheaper equivalent is another item of the same `equivalent_group`, in effect on the day,
  whose amount or self-pay part for the same quantity is lower; the three best are offered,
  lowest self-pay first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from carepoints.services.pricing.schemas import CLASS_FIXED_BP

BP = 10_000
MAX_EQUIVALENTS = 3


@dataclass(frozen=True, slots=True)
class Priced:
    """An item as the estimate needs it."""

    code: str
    name_zh: str
    name_en: str | None
    category: str
    unit: str
    price_fen: int
    insurance_class: str
    self_pay_bp: int  # in effect for this item
    equivalent_group: str | None = None


@dataclass(frozen=True, slots=True)
class Equivalent:
    item: Priced
    amount_fen: int
    self_pay_fen: int
    saving_per_unit_fen: int  # may be negative when only the self-pay part is lower
    saving_fen: int
    self_pay_saving_fen: int


@dataclass(frozen=True, slots=True)
class Line:
    item: Priced
    qty: int
    amount_fen: int
    self_pay_fen: int
    package: str | None = None
    equivalents: tuple[Equivalent, ...] = ()

    @property
    def insured_fen(self) -> int:
        return self.amount_fen - self.self_pay_fen


@dataclass(frozen=True, slots=True)
class Totals:
    total_fen: int
    self_pay_fen: int
    lines: int = 0
    by_package: dict[str, tuple[int, int]] = field(default_factory=dict)  # code → (total, self-pay)

    @property
    def insured_fen(self) -> int:
        return self.total_fen - self.self_pay_fen


def share_of(amount_fen: int, bp: int) -> int:
    """amount × bp / 10000 rounded half up to the fen (both non-negative)."""
    if amount_fen < 0 or not 0 <= bp <= BP:
        raise ValueError("amount and share must not be negative; the share is at most 10000 bp")
    return (amount_fen * bp + BP // 2) // BP


def self_pay_bp(insurance_class: str, item_bp: int | None, class_b_bp: int) -> int:
    """The share the patient pays themself: fixed for 甲 and 丙, the item's or the institution's for 乙."""
    fixed = CLASS_FIXED_BP.get(insurance_class)
    if fixed is not None:
        return fixed
    if insurance_class != "b":
        raise ValueError(f"unknown insurance class {insurance_class!r}")
    return class_b_bp if item_bp is None else item_bp


def in_effect(active: bool, valid_from: date | None, valid_to: date | None, day: date) -> bool:
    """Active, and `day` within the optional validity (both ends inclusive)."""
    return active and (valid_from is None or valid_from <= day) and (valid_to is None or day <= valid_to)


def cheaper(item: Priced, qty: int, candidates: list[Priced]) -> tuple[Equivalent, ...]:
    """The items of `item`'s group among `candidates` that cost less, or leave less to pay, for `qty`."""
    if item.equivalent_group is None:
        return ()
    amount = item.price_fen * qty
    own = share_of(amount, item.self_pay_bp)
    found = []
    for other in candidates:
        if other.code == item.code or other.equivalent_group != item.equivalent_group:
            continue
        other_amount = other.price_fen * qty
        other_self = share_of(other_amount, other.self_pay_bp)
        if other_amount < amount or other_self < own:
            found.append(Equivalent(other, other_amount, other_self, item.price_fen - other.price_fen,
                                    amount - other_amount, own - other_self))
    found.sort(key=lambda e: (e.self_pay_fen, e.amount_fen, e.item.code))
    return tuple(found[:MAX_EQUIVALENTS])


def line(item: Priced, qty: int, candidates: list[Priced], package: str | None = None) -> Line:
    amount = item.price_fen * qty
    return Line(item, qty, amount, share_of(amount, item.self_pay_bp), package, cheaper(item, qty, candidates))


def totals(lines: list[Line]) -> Totals:
    by_package: dict[str, tuple[int, int]] = {}
    for ln in lines:
        if ln.package is not None:
            total, own = by_package.get(ln.package, (0, 0))
            by_package[ln.package] = (total + ln.amount_fen, own + ln.self_pay_fen)
    return Totals(sum(ln.amount_fen for ln in lines), sum(ln.self_pay_fen for ln in lines), len(lines), by_package)
