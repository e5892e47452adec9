"""Request bodies of the health API: readings, conditions, medication plans."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from carepoints.events.schemas import (
    DIASTOLIC_RANGE,
    GLUCOSE_RANGE,
    MG_DL_PER_MMOL_L,
    PULSE_RANGE,
    SYSTOLIC_RANGE,
    PatientRef,
)

Kind = Literal["blood_pressure", "blood_glucose"]
Provenance = Literal["self_reported", "device", "clinic"]
SELF_MONITORING: tuple[str, ...] = ("self_reported", "device")


class ConditionCode(StrEnum):
    hypertension = "hypertension"
    diabetes = "diabetes"
    coronary_heart_disease = "coronary_heart_disease"
    heart_failure = "heart_failure"
    copd = "copd"
    asthma = "asthma"
    stroke = "stroke"
    ckd = "ckd"
    hyperlipidemia = "hyperlipidemia"
    osteoporosis = "osteoporosis"


CONDITION_NAMES: dict[ConditionCode, tuple[str, str]] = {
    ConditionCode.hypertension: ("高血压", "Hypertension"),
    ConditionCode.diabetes: ("糖尿病", "Diabetes"),
    ConditionCode.coronary_heart_disease: ("冠心病", "Coronary heart disease"),
    ConditionCode.heart_failure: ("心力衰竭", "Heart failure"),
    ConditionCode.copd: ("慢性阻塞性肺疾病", "COPD"),
    ConditionCode.asthma: ("哮喘", "Asthma"),
    ConditionCode.stroke: ("脑卒中", "Stroke"),
    ConditionCode.ckd: ("慢性肾脏病", "Chronic kidney disease"),
    ConditionCode.hyperlipidemia: ("高脂血症", "Hyperlipidaemia"),
    ConditionCode.osteoporosis: ("骨质疏松症", "Osteoporosis"),
}


class MeasurementCreate(BaseModel):
    """One reading. Glucose in mg/dL is converted (÷ 18.0, one decimal) before the
    plausibility check; the ranges are those of every entry path (events.schemas)."""

    model_config = ConfigDict(extra="forbid")
    patient: PatientRef | None = None  # POST /measurements only; the path names the patient otherwise
    kind: Kind
    systolic: int | None = Field(default=None, ge=SYSTOLIC_RANGE[0], le=SYSTOLIC_RANGE[1])
    diastolic: int | None = Field(default=None, ge=DIASTOLIC_RANGE[0], le=DIASTOLIC_RANGE[1])
    pulse: int | None = Field(default=None, ge=PULSE_RANGE[0], le=PULSE_RANGE[1])
    glucose: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)
    unit: Literal["mmol/L", "mg/dL"] = "mmol/L"
    taken_at: AwareDatetime
    provenance: Provenance
    device_id: str | None = Field(default=None, min_length=1, max_length=64)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _values(self) -> MeasurementCreate:
        if self.kind == "blood_pressure":
            if self.systolic is None or self.diastolic is None:
                raise ValueError("blood_pressure needs systolic and diastolic")
            if self.diastolic >= self.systolic:
                raise ValueError("diastolic must be below systolic")
            if self.glucose is not None:
                raise ValueError("glucose belongs to a blood_glucose reading")
        else:
            if self.glucose is None:
                raise ValueError("blood_glucose needs glucose")
            if self.systolic is not None or self.diastolic is not None or self.pulse is not None:
                raise ValueError("systolic, diastolic and pulse belong to a blood_pressure reading")
            mmol = self.glucose_mmol_l
            if mmol is None or not GLUCOSE_RANGE[0] <= mmol <= GLUCOSE_RANGE[1]:
                raise ValueError(f"glucose must be {GLUCOSE_RANGE[0]}-{GLUCOSE_RANGE[1]} mmol/L")
        return self

    @property
    def glucose_mmol_l(self) -> float | None:
        if self.glucose is None:
            return None
        return round(self.glucose / MG_DL_PER_MMOL_L, 1) if self.unit == "mg/dL" else round(self.glucose, 2)


class ConditionSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Literal["staff", "his"] = "staff"
    diagnosed_on: date | None = None
    note: str | None = Field(default=None, max_length=500)


class PlanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    medicine_name: str = Field(min_length=1, max_length=100)
    dose_text: str | None = Field(default=None, min_length=1, max_length=100)
    times: list[str] = Field(min_length=1, max_length=6)
    start_date: date
    end_date: date | None = None

    @field_validator("medicine_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("medicine_name is empty")
        return value.strip()

    @field_validator("times")
    @classmethod
    def _times(cls, value: list[str]) -> list[str]:
        for t in value:
            if len(t) != 5 or t[2] != ":" or not (t[:2].isdigit() and t[3:].isdigit()) \
                    or int(t[:2]) > 23 or int(t[3:]) > 59:
                raise ValueError("times are HH:MM (00:00-23:59)")
        if len(set(value)) != len(value):
            raise ValueError("times must be distinct")
        return sorted(value)

    @model_validator(mode="after")
    def _dates(self) -> PlanCreate:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class DoseCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scheduled_for: AwareDatetime | None = None
    taken_at: AwareDatetime | None = None
