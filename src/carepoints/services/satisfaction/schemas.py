"""Request bodies of the satisfaction loop: a complaint, assigning an item, a note, closing."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ComplaintCategory(StrEnum):
    waiting = "waiting"  # 候诊时间
    attitude = "attitude"  # 服务态度
    process = "process"  # 就诊流程
    environment = "environment"  # 环境设施
    billing = "billing"  # 收费
    other = "other"  # 其他


CATEGORY_NAMES: dict[str, tuple[str, str]] = {
    "waiting": ("候诊时间", "Waiting time"), "attitude": ("服务态度", "Staff attitude"),
    "process": ("就诊流程", "Visit process"), "environment": ("环境设施", "Environment and facilities"),
    "billing": ("收费", "Billing"), "other": ("其他", "Other"),
}


def _text(value: str, least: int, most: int) -> str:
    value = value.strip()
    if not least <= len(value) <= most:
        raise ValueError(f"{least} to {most} characters")
    return value


class ComplaintIn(BaseModel):
    """A complaint about a visit (appointment_id: its department) or a department."""

    model_config = ConfigDict(extra="forbid")
    appointment_id: str | None = Field(default=None, max_length=36)
    department_id: str | None = Field(default=None, max_length=36)
    category: ComplaintCategory
    text: str = Field(max_length=2000)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("text")
    @classmethod
    def _words(cls, value: str) -> str:
        return _text(value, 5, 1000)

    @model_validator(mode="after")
    def _subject(self) -> ComplaintIn:
        if self.appointment_id is None and self.department_id is None:
            raise ValueError("name the visit (appointment_id) or the department (department_id)")
        return self


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_user_id: str = Field(min_length=1, max_length=36)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=4000)

    @field_validator("text")
    @classmethod
    def _words(cls, value: str) -> str:
        return _text(value, 2, 2000)


class CloseIn(BaseModel):
    """The resolution: what was done (a complaint's resolution is shown to its patient)."""

    model_config = ConfigDict(extra="forbid")
    resolution: str = Field(max_length=4000)

    @field_validator("resolution")
    @classmethod
    def _words(cls, value: str) -> str:
        return _text(value, 2, 2000)
