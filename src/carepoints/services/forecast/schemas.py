"""Forecast payloads."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class RunCreate(BaseModel):
    """A new forecast: the next `weeks` weeks from today; capacities = forecast demand × `headroom`
    (default CAREPOINTS_FORECAST_HEADROOM)."""

    model_config = ConfigDict(extra="forbid")
    weeks: int = Field(default=2, ge=1, le=8)
    headroom: Decimal | None = Field(default=None, ge=Decimal("1.00"), le=Decimal("2.00"), max_digits=3,
                                     decimal_places=2)
