"""Experiment documents: variants and the rule overrides each applies.

An override changes one rule of the programme for the patients of a variant, in a small,
typed set that maps onto the engine's rule objects: its `points` (same sign, so a penalty
stays a penalty), whether it is `enabled`, and its `daily_points` cap (only for a rule that
has one, so the counters the engine loads stay the same). The first variant is the control,
usually without overrides."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CODE = r"^[a-z][a-z0-9_]{0,63}$"
MAX_POINTS = 100_000
Status = Literal["draft", "running", "stopped"]
Outcome = Literal["participation", "checkin_completeness", "no_show_rate"]
OUTCOMES: tuple[Outcome, ...] = ("participation", "checkin_completeness", "no_show_rate")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Names(_Model):
    zh: str = Field(min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=200)


class RuleOverride(_Model):
    """One rule changed for a variant (frozen, so the engine caches what it compiles from it)."""

    rule: str = Field(pattern=CODE)
    points: int | None = Field(default=None, ge=-MAX_POINTS, le=MAX_POINTS)
    enabled: bool | None = None
    daily_points: int | None = Field(default=None, ge=1, le=MAX_POINTS)

    @model_validator(mode="after")
    def _shape(self) -> RuleOverride:
        if self.points is None and self.enabled is None and self.daily_points is None:
            raise ValueError("an override changes points, enabled or daily_points")
        if self.points == 0:
            raise ValueError("points must not be zero (use enabled: false)")
        if self.enabled is False and (self.points is not None or self.daily_points is not None):
            raise ValueError("a disabled rule has no points or cap to change")
        return self


class VariantIn(_Model):
    code: str = Field(pattern=CODE)
    weight: int = Field(default=1, ge=1, le=10_000)
    overrides: tuple[RuleOverride, ...] = Field(default=(), max_length=50)

    @model_validator(mode="after")
    def _one_per_rule(self) -> VariantIn:
        rules = [o.rule for o in self.overrides]
        if len(set(rules)) != len(rules):
            raise ValueError("a variant overrides each rule at most once")
        return self


class ExperimentCreate(_Model):
    """`ethics_ref` (伦理审批号) is required; it is optional here only so that its absence is
    answered with its own error code (`experiments.ethics_ref_required`)."""

    code: str = Field(pattern=CODE)
    names: Names
    ethics_ref: str | None = Field(default=None, max_length=100)
    variants: tuple[VariantIn, ...] = Field(min_length=2, max_length=10)

    @model_validator(mode="after")
    def _distinct_variants(self) -> ExperimentCreate:
        codes = [v.code for v in self.variants]
        if len(set(codes)) != len(codes):
            raise ValueError("variant codes must be distinct")
        if not any(v.overrides for v in self.variants):
            raise ValueError("no variant overrides any rule")
        return self

    def covered_rules(self) -> set[str]:
        return {o.rule for v in self.variants for o in v.overrides}
