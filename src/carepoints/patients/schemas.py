from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

Purpose = Literal["points_programme", "health_data", "notifications", "research"]
DEFAULT_PURPOSES: tuple[Purpose, ...] = ("points_programme", "health_data")
# (trust.privacy) every purpose a patient consents to separately (PIPL), and who gives consent
PURPOSES: tuple[Purpose, ...] = ("points_programme", "health_data", "notifications", "research")
ConsentSource = Literal["patient", "guardian", "institution"]
GuardianRelation = Literal["parent", "legal_guardian", "other"]


class GuardianIn(BaseModel):
    """Who consents for a child under 14 (监护人): a relation, and the guardian's patient id
    when they are registered too; the name is stored encrypted under the child's key."""

    model_config = ConfigDict(extra="forbid")
    relation: GuardianRelation
    name: str | None = Field(default=None, min_length=1, max_length=100)
    patient_id: str | None = Field(default=None, max_length=64)


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
    guardian: GuardianIn | None = None  # (trust.privacy) with source guardian


class PatientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(pattern=r"^\+?[0-9]{5,20}$")
    id_number: str | None = Field(default=None, pattern=r"^[0-9]{17}[0-9Xx]$|^[A-Za-z0-9]{6,20}$")
    birth_date: date | None = None
    sex: Literal["male", "female", "other", "unknown"] = "unknown"
    address: str | None = Field(default=None, min_length=1, max_length=200)
    external_ids: list[ExternalIdIn] = Field(default_factory=list, max_length=20)
    consent: ConsentIn
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)
    # (ops.alliance) the institution (code) enrolling, for a caller bound to several
    institution: str | None = Field(default=None, min_length=1, max_length=32)

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
    phone: str | None  # None once erased
    id_number: str | None
    address: str | None = None
    birth_date: date | None
    sex: str
    status: str  # active | deceased | closed | merged | erased
    tier: str
    merged_into: str | None = None  # status merged: the record it now lives on as
    earning_frozen: bool = False  # a reviewer froze earning (fraud review)
    external_ids: list[ExternalIdIn]
    consents: list[dict[str, object]]
    created_at: AwareDatetime
