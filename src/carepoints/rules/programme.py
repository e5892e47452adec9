"""The programme document: rules and settings as typed, declarative data.

Conditions are a closed set of typed forms (no expressions, never `eval`) so
that the admin UI can edit them as forms. A programme file (YAML) validates
into `Programme`; the database stores the validated document per version."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from carepoints.tiers.schemas import (
    TierBenefit,
    check_benefits,
    check_thresholds,
    default_benefits,
    default_thresholds,
)

EVENT_TYPES = (
    "account.registered", "appointment.booked", "appointment.cancelled", "appointment.checked_in",
    "appointment.attended", "appointment.no_show", "exam.attended", "selfservice.used",
    "health.measurement", "medication.taken", "education.completed", "lecture.attended",
    "review.submitted", "survey.completed", "followup.completed", "profile.item_completed",
    "referral.visit", "public_health.completed", "photo.checkin", "community.post_approved",
    "invite.completed", "conduct.violation", "staff.offline_entry", "lab.critical_value",
    "encounter.discharged",
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Names(_Model):
    zh: str
    en: str


Op = Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "present"]


class AttrCondition(_Model):
    """An attribute compared with a constant; `default` stands in for a missing attribute."""

    type: Literal["attr"] = "attr"
    attr: str
    op: Op = "eq"
    value: str | int | float | bool | list[str] | None = None
    default: str | int | float | bool | None = None


class TextLengthCondition(_Model):
    """Unicode code points after NFC normalisation, whitespace ignored."""

    type: Literal["text_length"]
    attr: str
    min: int = Field(ge=0)


class HoursBetweenCondition(_Model):
    """`to` − `from` is at least `min` hours (timestamps; `occurred_at` names the event time)."""

    type: Literal["hours_between"]
    from_: str = Field(alias="from")
    to: str
    min: float

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class NotLaterCondition(_Model):
    """Timestamp `attr` is present and no later than timestamp `than`."""

    type: Literal["not_later"]
    attr: str
    than: str


class AttrCompareCondition(_Model):
    type: Literal["attr_compare"]
    attr: str
    op: Literal["eq", "gt", "gte", "lt", "lte"]
    other: str


class OffPeakCondition(_Model):
    """The timestamp `attr` falls in one of the programme's off-peak windows."""

    type: Literal["off_peak"]
    attr: str = "slot_start"


class LocalTimeCondition(_Model):
    """The event's local time of day is within [start, end)."""

    type: Literal["local_time"]
    start: time
    end: time


class PatientCondition(_Model):
    type: Literal["patient"]
    field: Literal["tier", "age"]
    op: Op
    value: str | int | list[str]


class InstitutionCondition(_Model):
    """(ops.alliance) The event's institution (attribute `institution`, a code; stamped by a key
    bound to one institution) is / is not one of `value`. An event without one is in no institution."""

    type: Literal["institution"]
    op: Literal["in", "not_in"] = "in"
    value: list[str] = Field(min_length=1)


Condition = Annotated[
    AttrCondition | TextLengthCondition | HoursBetweenCondition | NotLaterCondition
    | AttrCompareCondition | OffPeakCondition | LocalTimeCondition | PatientCondition | InstitutionCondition,
    Field(discriminator="type"),
]


class Limits(_Model):
    daily_points: int | None = Field(default=None, ge=1)
    per_day: int | None = Field(default=None, ge=1)
    per_month: int | None = Field(default=None, ge=1)
    per_year: int | None = Field(default=None, ge=1)
    lifetime: int | None = Field(default=None, ge=1)
    once_per: tuple[str, ...] | None = None


class Streak(_Model):
    days: int = Field(ge=2, le=366)
    group: str


class Rule(_Model):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    names: Names
    event: tuple[str, ...]
    points: int = 0
    multiplier: int | None = Field(default=None, ge=2, le=10)
    conditions: tuple[Condition, ...] = ()
    limits: Limits = Limits()
    streak: Streak | None = None
    message: Names | None = None
    unmet: Names | None = None
    status: Literal["active", "draft", "retired"] = "active"
    valid_from: date | None = None
    valid_to: date | None = None

    @field_validator("event", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("event")
    @classmethod
    def _known_events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in value if v not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event type(s): {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        if self.multiplier is None and self.points == 0:
            raise ValueError("a rule needs points or a multiplier")
        if self.multiplier is not None and (self.points or self.streak):
            raise ValueError("a multiplier rule has no points or streak of its own")
        if self.points < 0 and self.streak:
            raise ValueError("a penalty cannot be a streak")
        return self


class OffPeakWindow(_Model):
    weekdays: tuple[int, ...] = (1, 2, 3, 4, 5)  # ISO weekdays, Monday = 1
    start: time
    end: time


class SuspensionPolicy(_Model):
    threshold: int = Field(default=3, ge=1)
    window_days: int = Field(default=90, ge=1)
    duration_hours: int = Field(default=720, ge=1)
    consecutive: bool = False


class PointValue(_Model):
    points: int = 100
    cny: Decimal = Decimal("10.00")


class Budget(_Model):
    """The programme's annual budget: a CNY amount, or a share of the annual revenue."""

    cny: Decimal | None = Field(default=None, ge=0)
    share_of_revenue: Decimal | None = Field(default=Decimal("0.005"), ge=0, le=1)
    annual_revenue_cny: Decimal | None = Field(default=None, ge=0)
    alerts: tuple[int, ...] = (80, 100)  # percent of the budget that raise an alert
    hard_stop: bool = False  # refuse redemptions that would pass 100%

    def annual_cny(self) -> Decimal | None:
        if self.cny is not None:
            return self.cny
        if self.share_of_revenue is not None and self.annual_revenue_cny is not None:
            return (self.share_of_revenue * self.annual_revenue_cny).quantize(Decimal("0.01"))
        return None


RewardKind = Literal["fee_offset", "coupon", "pharmacy_voucher", "privilege", "lecture_seat"]
LimitPeriod = Literal["day", "week", "month", "year", "ever"]


class RewardLimit(_Model):
    count: int = Field(ge=1)
    period: LimitPeriod = "ever"


class RewardSpec(_Model):
    """A catalogue item as the programme file states it (积分商城)."""

    code: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")
    kind: RewardKind
    names: Names
    points: int = Field(ge=1, le=10_000_000)
    tier_points: dict[str, int] = Field(default_factory=dict, max_length=10)
    stock: int | None = Field(default=None, ge=0, le=10_000_000)
    limit: RewardLimit | None = None
    valid_from: date | None = Field(default=None, ge=date(2000, 1, 1), le=date(2100, 12, 31))
    valid_to: date | None = Field(default=None, ge=date(2000, 1, 1), le=date(2100, 12, 31))
    active: bool = True
    cost_cny: Decimal = Field(default=Decimal("0"), ge=0, le=100_000, max_digits=8, decimal_places=2)
    code_valid_days: int = Field(default=30, ge=1, le=3660)
    details: dict[str, str] = Field(default_factory=dict, max_length=20)
    # (ops.alliance) institution codes whose patients see and may redeem it; empty = the whole alliance
    institutions: list[str] = Field(default_factory=list, max_length=100)

    _tier_prices = field_validator("tier_points")(lambda v: check_tier_points(v))

    @model_validator(mode="after")
    def _window(self) -> RewardSpec:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        if self.kind == "fee_offset":
            check_fee_offset_terms(self.details)
        return self


def check_tier_points(prices: dict[str, int]) -> dict[str, int]:
    if any(not 1 <= p <= 10_000_000 for p in prices.values()):
        raise ValueError("tier prices must be from 1 to 10,000,000 points")
    return prices


def check_fee_offset_terms(details: dict[str, str]) -> None:
    """A fee offset's `max_share` of the fee (0 < share ≤ 1) and `step_points` (≥ 1)."""
    try:
        share = Decimal(details.get("max_share", "0.50"))
        step = int(details.get("step_points", "10"))
    except (ArithmeticError, ValueError) as exc:
        raise ValueError("max_share must be a decimal and step_points a whole number") from exc
    if not (Decimal(0) < share <= 1) or step < 1:
        raise ValueError("max_share must be in (0, 1] and step_points at least 1")


def _default_reasons() -> dict[str, Names]:
    return {"goodwill": Names(zh="关怀补偿", en="Goodwill"),
            "correction": Names(zh="积分更正", en="Correction"),
            "missed_award": Names(zh="补发积分", en="Missed award"),
            "system_error": Names(zh="系统差错", en="System error"),
            "duplicate_award": Names(zh="重复发放扣回", en="Duplicate award")}


class AdjustmentSettings(_Model):
    """(ops.adjustments) manual adjustments by staff: |points| above `approval_threshold` waits
    for a second person; Σ|points| one operator may adjust per local day (pending ones too);
    the reason codes staff choose from, with their names (the zh name is the ledger message)."""

    approval_threshold: int = Field(default=200, ge=0, le=10_000_000)
    operator_daily_cap: int = Field(default=1000, ge=1, le=10_000_000)
    reason_codes: dict[str, Names] = Field(default_factory=_default_reasons, min_length=1, max_length=50)


class Settings(_Model):
    annual_cap: int = Field(default=10000, ge=1)
    expiry_months: int = Field(default=24, ge=1)
    expiring_notice_days: int = Field(default=30, ge=1)
    point_value: PointValue = PointValue()
    max_event_age_days: int = Field(default=1095, ge=1)
    suspension: SuspensionPolicy = SuspensionPolicy()
    off_peak: tuple[OffPeakWindow, ...] = ()
    # tiers: earned points (trailing 12 months) from which each tier applies, and their benefits
    tiers: dict[str, int] = Field(default_factory=default_thresholds)
    tier_benefits: dict[str, TierBenefit] = Field(default_factory=default_benefits)
    budget: Budget = Budget()
    # (ops.alliance) institution code → annual CNY budget of the rewards scoped to it (always a hard stop)
    budgets: dict[str, Decimal] = Field(default_factory=dict, max_length=200)
    adjustments: AdjustmentSettings = AdjustmentSettings()  # (ops.adjustments)

    _tiers = field_validator("tiers")(check_thresholds)
    _tier_benefits = field_validator("tier_benefits")(check_benefits)


class Programme(_Model):
    name: Names
    effective_from: datetime | None = None
    settings: Settings = Settings()
    rules: tuple[Rule, ...]
    rewards: tuple[RewardSpec, ...] = ()

    @model_validator(mode="after")
    def _unique_codes(self) -> Programme:
        codes = [r.code for r in self.rules]
        dupes = {c for c in codes if codes.count(c) > 1}
        if dupes:
            raise ValueError(f"duplicate rule codes: {', '.join(sorted(dupes))}")
        rewards = [r.code for r in self.rewards]
        if len(set(rewards)) != len(rewards):
            raise ValueError("duplicate reward codes")
        return self
