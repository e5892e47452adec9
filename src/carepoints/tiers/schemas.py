"""Tier settings as the programme file states them, and the API's bodies.

The defaults live here so that the programme document (rules.programme) and
the tiers service agree on them without tiers importing the rules domain."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise

from pydantic import BaseModel, ConfigDict, Field


class Tier(StrEnum):
    """普通 / 银卡 / 金卡, lowest first."""

    standard = "standard"
    silver = "silver"
    gold = "gold"


TIERS: tuple[Tier, ...] = (Tier.standard, Tier.silver, Tier.gold)
RANK: dict[str, int] = {t.value: i for i, t in enumerate(TIERS)}
TOP: Tier = TIERS[-1]


class TierBenefit(BaseModel):
    """What a tier gives: the share of the registration fee the patient pays, and an
    assigned health advisor (专属健康顾问)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fee_share: Decimal = Field(default=Decimal("1"), gt=0, le=1, max_digits=5, decimal_places=4)
    advisor: bool = False


def default_thresholds() -> dict[str, int]:
    return {Tier.silver.value: 2000, Tier.gold.value: 5000}


def default_benefits() -> dict[str, TierBenefit]:
    return {Tier.gold.value: TierBenefit(fee_share=Decimal("0.80"), advisor=True)}


def check_thresholds(thresholds: Mapping[str, int]) -> Mapping[str, int]:
    """Earned points from which each tier above standard applies: every such tier, rising."""
    wanted = [t.value for t in TIERS[1:]]
    if sorted(thresholds) != sorted(wanted):
        raise ValueError(f"tier thresholds are needed for exactly: {', '.join(wanted)}")
    values = [thresholds[t] for t in wanted]
    if values[0] < 1 or any(b <= a for a, b in pairwise(values)):
        raise ValueError("tier thresholds must be positive and rise with the tier")
    return thresholds


def check_benefits(benefits: Mapping[str, TierBenefit]) -> Mapping[str, TierBenefit]:
    unknown = sorted(set(benefits) - set(RANK))
    if unknown:
        raise ValueError(f"unknown tier(s): {', '.join(unknown)}")
    return benefits


class AdvisorAssign(BaseModel):
    """`PUT /patients/{id}/advisor`: a staff user, or null to end the assignment."""

    model_config = ConfigDict(extra="forbid")

    staff_user_id: str | None = Field(max_length=36)
