"""Request bodies of the admissions API."""

from __future__ import annotations

from datetime import date, time
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from carepoints.scheduling.schemas import OnePatient

Code = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
Key = Field(min_length=1, max_length=128)
Kind = Literal["elective", "day"]


class WardCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department_id: str = Field(max_length=64)
    code: str = Code
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(default="", max_length=100)
    daily_admissions: int = Field(ge=1, le=500)
    arrival_time: time = time(8, 30)
    instructions_zh: str = Field(min_length=1, max_length=2000)
    instructions_en: str = Field(default="", max_length=2000)


class WardDayCapacity(BaseModel):
    """The admissions a ward takes on one day instead of its usual number (0 closes the day)."""

    model_config = ConfigDict(extra="forbid")
    capacity: int = Field(ge=0, le=500)


class RoomCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department_id: str = Field(max_length=64)
    code: str = Code
    name: str = Field(min_length=1, max_length=100)
    minutes_per_day: int = Field(ge=30, le=1440)
    cases_per_day: int = Field(ge=1, le=100)
    elective: bool = True
    day_surgery: bool = False

    @model_validator(mode="after")
    def _a_kind(self) -> RoomCreate:
        if not (self.elective or self.day_surgery):
            raise ValueError("a room takes elective or day surgery (or both)")
        return self


class OrderCreate(OnePatient):
    """An admission order (住院证) for a patient and ward, bookable from `earliest_date` (default
    today) for `valid_days` days."""

    ward_id: str = Field(max_length=64)
    earliest_date: date | None = None
    valid_days: int | None = Field(default=None, ge=1, le=180)
    idempotency_key: str = Key


class OrderDate(BaseModel):
    """Book (or move) the admission to a local date."""

    model_config = ConfigDict(extra="forbid")
    date: date


class SurgeryCreate(OnePatient):
    department_id: str = Field(max_length=64)
    procedure: str = Field(min_length=1, max_length=100)
    kind: Kind
    expected_minutes: int = Field(ge=10, le=720)
    earliest_date: date | None = None
    admission_order_id: str | None = Field(default=None, max_length=64)
    idempotency_key: str = Key

    @field_validator("procedure")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name the procedure")
        return value


class SurgeryCheck(BaseModel):
    """Record a pre-op check as done: the pre-op exam (术前检查) or the anaesthesia assessment (麻醉评估)."""

    model_config = ConfigDict(extra="forbid")
    check: Literal["preop_exam", "anaesthesia"]


class SurgerySchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    room_id: str = Field(max_length=64)
    date: date


class PrevisitCreate(OnePatient):
    """预就诊: book the exam on `resource_id` (from `not_before`, default now) and the follow-up with
    `clinician_id` (default: the signed-in clinician) once the result is expected."""

    clinician_id: str | None = Field(default=None, max_length=64)
    resource_id: str = Field(max_length=64)
    exam: str = Field(min_length=1, max_length=100)
    result_hours: int = Field(ge=0, le=720)
    not_before: AwareDatetime | None = None
    idempotency_key: str = Key


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Literal["patient_request", "clinical", "no_bed", "other"] | None = None
