"""Request bodies of the scheduling API."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

Code = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
Pool = Literal["online", "onsite", "referral"]


class InstitutionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Code
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(default="", max_length=100)


class DepartmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    institution_id: str
    code: str = Code
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(default="", max_length=100)


class ClinicianCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department_id: str
    code: str = Code
    name: str = Field(min_length=1, max_length=100)
    title: str = Field(default="", max_length=64)
    staff_user_id: str | None = None


class ResourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department_id: str
    code: str = Code
    modality: Literal["ct", "mri", "ultrasound", "xray", "endoscopy", "other"]
    name: str = Field(min_length=1, max_length=100)


Channel = Literal["online", "onsite"]


class _SessionShape(BaseModel):
    """What a session and a weekly template share: whose it is, when, and its slots."""

    model_config = ConfigDict(extra="forbid")
    clinician_id: str | None = None
    resource_id: str | None = None
    start: time
    end: time
    slot_minutes: int = Field(ge=1, le=60)
    capacity: int | None = Field(default=None, ge=1, le=2000)
    level: Literal["general", "expert"] = "general"
    fee_cny: Decimal = Field(ge=0, le=100000, max_digits=9, decimal_places=2)
    # the interleaving of the general pools; referral slots come from referral_share
    pattern: list[Channel] | None = Field(default=None, min_length=1, max_length=20)
    referral_share: Decimal | None = Field(default=None, ge=0, le=1, max_digits=5, decimal_places=4)

    @model_validator(mode="after")
    def _shape(self) -> _SessionShape:
        if (self.clinician_id is None) == (self.resource_id is None):
            raise ValueError("give exactly one of clinician_id and resource_id")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class SessionCreate(_SessionShape):
    """A session on a local `date` from `start` to `end` (local times)."""

    date: date
    release_at: AwareDatetime | None = None
    referral_release_hours: int | None = Field(default=None, ge=0, le=24 * 90)


class TemplateCreate(_SessionShape):
    """A weekly session: every `weekday` (ISO, 1 = Monday) from `start` to `end` local time."""

    weekday: int = Field(ge=1, le=7)


class SessionCancel(BaseModel):
    """停诊: the hospital cancels a session; every booking is cancelled `by: hospital`."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=200)


class PatientRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, max_length=64)
    system: str | None = Field(default=None, min_length=1, max_length=200)
    value: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one(self) -> PatientRef:
        if self.id is None and (self.system is None or self.value is None):
            raise ValueError("give id, or system and value")
        return self


class OnePatient(BaseModel):
    """A request about one patient, named by id or by external reference (exactly one)."""

    model_config = ConfigDict(extra="forbid")
    patient_id: str | None = Field(default=None, max_length=64)
    patient: PatientRef | None = None

    @model_validator(mode="after")
    def _one_patient(self) -> OnePatient:
        if (self.patient_id is None) == (self.patient is None):
            raise ValueError("give exactly one of patient_id and patient")
        return self


class ForPatient(OnePatient):
    """A request for one patient (by id or external reference), made by the patient or by
    a caregiver (another patient) or the service window acting for them (代办), checked
    against the patient's authorisations and recorded as a proxy action."""

    proxy_patient_id: str | None = Field(default=None, max_length=64)
    service_window: bool = False

    @model_validator(mode="after")
    def _patient(self) -> ForPatient:
        if self.proxy_patient_id is not None and self.service_window:
            raise ValueError("a proxy is a patient or the service window, not both")
        return self


class AppointmentCreate(ForPatient):
    session_id: str
    slot_id: str | None = None
    channel: Pool = "online"
    referral_id: str | None = Field(default=None, min_length=1, max_length=64)
    idempotency_key: str = Field(min_length=1, max_length=128)

    @model_validator(mode="after")
    def _referral(self) -> AppointmentCreate:
        if self.channel == "referral" and not self.referral_id:
            raise ValueError("a referral booking needs referral_id")
        return self


class WaitlistJoin(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: str
    channel: Pool = "online"
    referral_id: str | None = Field(default=None, min_length=1, max_length=64)
    idempotency_key: str = Field(min_length=1, max_length=128)

    @model_validator(mode="after")
    def _referral(self) -> WaitlistJoin:
        if self.channel == "referral" and not self.referral_id:
            raise ValueError("a referral booking needs referral_id")
        return self


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: Literal["patient", "hospital"] = "patient"
    reason: str | None = Field(default=None, max_length=200)


class CheckInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: bool | None = None  # staff flag a disabled patient; the elderly are flagged by age
    channel: Literal["desk", "kiosk", "app"] = "desk"


class AttendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attended_at: AwareDatetime | None = None

    def at(self, now: datetime) -> datetime:
        return self.attended_at or now


class CheckupPackageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Code
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(default="", max_length=100)
    items: list[str] = Field(min_length=1, max_length=100)
    price_cny: Decimal = Field(ge=0, le=1000000, max_digits=10, decimal_places=2)
    daily_capacity: int = Field(ge=1, le=10000)

    @field_validator("items")
    @classmethod
    def _items(cls, value: list[str]) -> list[str]:
        items = [v.strip() for v in value]
        if any(not v or len(v) > 100 for v in items):
            raise ValueError("each item is 1 to 100 characters")
        return items


class CheckupBookingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: str
    package: str = Field(min_length=1, max_length=32)  # the package's code
    date: date
    idempotency_key: str = Field(min_length=1, max_length=128)
