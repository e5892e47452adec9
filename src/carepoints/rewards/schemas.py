"""Request bodies of the rewards API."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from carepoints.rules.programme import Names, RewardLimit, RewardSpec, check_tier_points
from carepoints.scheduling.schemas import ForPatient

Key = Field(min_length=1, max_length=128)


class RedemptionCreate(ForPatient):
    reward: str = Field(min_length=1, max_length=64)
    quantity: int = Field(default=1, ge=1, le=20)
    idempotency_key: str = Key
    institution_id: str | None = Field(default=None, max_length=36)
    # spend from the household's pooled wallet instead of the patient's own
    household: bool = False


class FeeOffsetCreate(ForPatient):
    fee_cny: Decimal = Field(ge=0, le=100000, max_digits=9, decimal_places=2)
    idempotency_key: str = Key
    institution_id: str | None = Field(default=None, max_length=36)
    reference: str | None = Field(default=None, min_length=1, max_length=100)


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    institution_id: str | None = Field(default=None, max_length=36)


class RewardUpdate(BaseModel):
    """Fields an admin may change on a catalogue item; what is left out stays. The
    validity dates may be set to null (no bound); the other fields may not."""

    model_config = ConfigDict(extra="forbid")
    names: Names | None = None
    points: int | None = Field(default=None, ge=1, le=10_000_000)
    tier_points: dict[str, int] | None = Field(default=None, max_length=10)
    stock: int | None = Field(default=None, ge=0, le=10_000_000)
    unlimited_stock: bool = False
    limit: RewardLimit | None = None
    no_limit: bool = False
    valid_from: date | None = Field(default=None, ge=date(2000, 1, 1), le=date(2100, 12, 31))
    valid_to: date | None = Field(default=None, ge=date(2000, 1, 1), le=date(2100, 12, 31))
    active: bool | None = None
    cost_cny: Decimal | None = Field(default=None, ge=0, le=100_000, max_digits=8, decimal_places=2)
    code_valid_days: int | None = Field(default=None, ge=1, le=3660)

    _tier_prices = field_validator("tier_points")(lambda v: v if v is None else check_tier_points(v))

    @model_validator(mode="after")
    def _no_nulls(self) -> RewardUpdate:
        nulls = [f for f in self.model_fields_set - {"valid_from", "valid_to", "stock", "limit"}
                 if getattr(self, f) is None]
        if nulls:
            raise ValueError(f"may not be null: {', '.join(sorted(nulls))}")
        return self


class RewardCreate(RewardSpec):
    """A new catalogue item, as the programme file would state it."""

    institution_id: str | None = Field(default=None, max_length=36)
