from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

Purpose = Literal["points_programme", "health_data", "notifications", "research"]
DEFAULT_PURPOSES: tuple[Purpose, ...] = ("points_programme", "health_data")


class ExternalIdIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str = Field(min_length=1, max_length=200)
    value: str = Field(min_length=1, max_length=200)


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1, max_length=32)
    accepted_at: AwareDatetime
    purposes: list[Purpose] | None = None
    source: Literal["patient", "guardian", "institution"] = "patient"


class PatientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(pattern=r"^\+?[0-9]{5,20}$")
    id_number: str | None = Field(default=None, pattern=r"^[0-9]{17}[0-9Xx]$|^[A-Za-z0-9]{6,20}$")
    birth_date: date | None = None
    sex: Literal["male", "female", "other", "unknown"] = "unknown"
    external_ids: list[ExternalIdIn] = Field(default_factory=list, max_length=20)
    consent: ConsentIn
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name is empty")
        return value


class PatientRead(BaseModel):
    id: str
    name: str
    phone: str
    id_number: str | None
    birth_date: date | None
    sex: str
    status: str
    tier: str
    external_ids: list[ExternalIdIn]
    consents: list[dict[str, object]]
    created_at: AwareDatetime
