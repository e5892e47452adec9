"""Consultation payloads: opening a thread, a message, a rating, an adviser on the roster."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

MAX_TEXT = 2000
MAX_SUBJECT = 100


class Profession(StrEnum):
    clinician = "clinician"
    nurse = "nurse"
    pharmacist = "pharmacist"


PROFESSIONS = {Profession.clinician: ("医生", "Doctor"), Profession.nurse: ("护士", "Nurse"),
               Profession.pharmacist: ("药师", "Pharmacist")}


def _text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("请输入内容 / Write something")
    return value


Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT), AfterValidator(_text)]
Subject = Annotated[str, Field(min_length=1, max_length=MAX_SUBJECT), AfterValidator(_text)]
Key = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class ThreadOpen(BaseModel):
    """A new consultation. Exactly one of `department_id` (routed: any adviser of that
    department, of `profession` if given, takes it from the queue) and `adviser_id` (a named
    adviser's staff user id). The patient must have accepted the current disclaimer
    (`disclaimer_version`) at `disclaimer_accepted_at`, before this first message."""

    model_config = ConfigDict(extra="forbid")
    patient_id: str = Field(min_length=1, max_length=64)
    department_id: str | None = Field(default=None, max_length=36)
    adviser_id: str | None = Field(default=None, max_length=36)
    profession: Profession | None = None
    subject: Subject
    text: Text
    disclaimer_version: str = Field(min_length=1, max_length=32)
    disclaimer_accepted_at: AwareDatetime
    idempotency_key: Key


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text
    idempotency_key: Key | None = None


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stars: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=500)


class AdviserSet(BaseModel):
    """A staff user on the consultation roster of a department (again: updated)."""

    model_config = ConfigDict(extra="forbid")
    department_id: str = Field(min_length=1, max_length=36)
    profession: Profession
    display_name: str = Field(min_length=1, max_length=100)
    title: str = Field(default="", max_length=64)
    active: bool = True
