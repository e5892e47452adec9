from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from carepoints.scheduling.schemas import OnePatient


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")




class PostKind(StrEnum):
    post = "post"
    answer = "answer"


class PostStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class RejectReason(StrEnum):
    spam = "spam"
    medical_misinformation = "medical_misinformation"
    privacy = "privacy"
    offensive = "offensive"
    off_topic = "off_topic"
    other = "other"


class PostCreate(OnePatient):
    kind: PostKind = PostKind.post
    parent_id: str | None = Field(default=None, min_length=1, max_length=36)
    title: str | None = Field(default=None, min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=5000)
    topic: str | None = Field(default=None, pattern=r"^[a-z0-9_\-]{1,50}$")

    @model_validator(mode="after")
    def _parent(self) -> PostCreate:
        if (self.kind is PostKind.answer) != (self.parent_id is not None):
            raise ValueError("an answer needs parent_id; a post has none")
        if not self.text.strip():
            raise ValueError("text is blank")
        return self


class Reject(_In):
    reason_code: RejectReason
    note: str | None = Field(default=None, min_length=1, max_length=500)


class Localised(_In):
    zh: str = Field(min_length=1, max_length=200)
    en: str | None = Field(default=None, min_length=1, max_length=200)


class LocalisedText(_In):
    zh: str = Field(min_length=1, max_length=2000)
    en: str | None = Field(default=None, min_length=1, max_length=2000)


class PhotoTarget(StrEnum):
    child = "child"
    any = "any"


class PhotoTaskCreate(_In):
    code: str = Field(pattern=r"^[a-z0-9_\-]{1,50}$")
    title: Localised
    description: LocalisedText | None = None
    per_day: int = Field(default=1, ge=1, le=3)
    target: PhotoTarget = PhotoTarget.any
    active: bool = True


class InviteAccept(OnePatient):
    code: str = Field(min_length=4, max_length=16)
