"""Request bodies of the learning API. Every string and number is bounded, so that a
bad input is a 422 (`request.invalid`), never a 5xx.

A quiz's `pass_mark` is a percentage (1–100) of the questions answered right; an
attempt's `score` is that percentage rounded down, and it passes when
`score >= pass_mark` (the `education` rule compares the same two numbers)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from carepoints.scheduling.schemas import OnePatient

MAX_QUESTIONS = 20
MAX_CHOICES = 6
Label = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Title(_In):
    zh: str = Field(min_length=1, max_length=200)
    en: str | None = Field(default=None, min_length=1, max_length=200)


class ContentKind(StrEnum):
    video = "video"
    article = "article"


class ContentStatus(StrEnum):
    draft = "draft"
    published = "published"
    retired = "retired"


class Question(_In):
    id: str | None = Field(default=None, min_length=1, max_length=36)
    text: str = Field(min_length=1, max_length=500)
    choices: list[str] = Field(min_length=2, max_length=MAX_CHOICES)
    correct: list[int] = Field(min_length=1, max_length=MAX_CHOICES)
    multi: bool = False

    @model_validator(mode="after")
    def _check(self) -> Question:
        if any(not c.strip() or len(c) > 200 for c in self.choices):
            raise ValueError("choices are 1 to 200 characters")
        if len(set(self.correct)) != len(self.correct) or any(not 0 <= i < len(self.choices) for i in self.correct):
            raise ValueError("correct holds distinct indexes of choices")
        if not self.multi and len(self.correct) != 1:
            raise ValueError("a single-choice question has exactly one correct choice")
        return self


class Quiz(_In):
    pass_mark: int = Field(ge=1, le=100, description="percent of the questions answered right")
    questions: list[Question] = Field(min_length=1, max_length=MAX_QUESTIONS)

    @model_validator(mode="after")
    def _ids(self) -> Quiz:
        ids = [q.id for q in self.questions if q.id is not None]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids are distinct")
        return self


class _Content(_In):
    title: Title | None = None
    body_url: str | None = Field(default=None, min_length=1, max_length=2000, pattern=r"^https?://\S+$")
    body_text: str | None = Field(default=None, min_length=1, max_length=50_000)
    duration_seconds: int | None = Field(default=None, ge=1, le=4 * 3600)
    tags: list[str] | None = Field(default=None, max_length=20)
    conditions: list[str] | None = Field(default=None, max_length=20)
    quiz: Quiz | None = None

    @model_validator(mode="after")
    def _labels(self) -> _Content:
        for name in ("tags", "conditions"):
            for value in getattr(self, name) or []:
                if not (1 <= len(value) <= 64) or not all(c.isalnum() or c in "_.:-" for c in value):
                    raise ValueError(f"{name} are codes of 1 to 64 letters, digits or _.:-")
        return self


class ContentCreate(_Content):
    kind: ContentKind
    title: Title
    duration_seconds: int = Field(ge=1, le=4 * 3600)
    quiz: Quiz
    status: Literal["draft", "published"] = "draft"

    @model_validator(mode="after")
    def _body(self) -> ContentCreate:
        if (self.body_url is None) == (self.body_text is None):
            raise ValueError("give exactly one of body_url and body_text")
        return self


class ContentUpdate(_Content):
    """What is left out stays; the body is replaced by whichever of body_url / body_text is given."""

    @model_validator(mode="after")
    def _one_body(self) -> ContentUpdate:
        if self.body_url is not None and self.body_text is not None:
            raise ValueError("give at most one of body_url and body_text")
        return self




class AttemptCreate(OnePatient):
    answers: list[list[int]] = Field(max_length=MAX_QUESTIONS)
    watched_seconds: int | None = Field(default=None, ge=0, le=24 * 3600)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _answers(self) -> AttemptCreate:
        for a in self.answers:
            if len(a) > MAX_CHOICES or any(not 0 <= i < MAX_CHOICES for i in a):
                raise ValueError(f"each answer is at most {MAX_CHOICES} choice indexes from 0 to {MAX_CHOICES - 1}")
        return self


class LectureCreate(_In):
    title: Title
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    place: str = Field(min_length=1, max_length=200)
    seats: int = Field(ge=1, le=5000)
    institution_id: str | None = Field(default=None, max_length=36)

    @model_validator(mode="after")
    def _times(self) -> LectureCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at is after starts_at")
        if (self.ends_at - self.starts_at).total_seconds() > 24 * 3600:
            raise ValueError("a lecture lasts at most 24 hours")
        return self


class RegistrationCreate(OnePatient):
    pass


class SignInCreate(OnePatient):
    at: AwareDatetime | None = None


class ReviewCreate(_In):
    rating: int = Field(ge=1, le=5)
    text: str = Field(default="", max_length=2000)


class ProfileItemKind(StrEnum):
    allergies = "allergies"
    past_history = "past_history"
    family_history = "family_history"
    current_medicines = "current_medicines"
    emergency_contact = "emergency_contact"


class EmergencyContact(_In):
    name: str = Field(min_length=1, max_length=50)
    phone: str = Field(min_length=3, max_length=20, pattern=r"^\+?[0-9][0-9 \-]{1,18}[0-9]$")
    relation: str = Field(min_length=1, max_length=20)


class ProfileValue(_In):
    """`value`: text (up to 2000 characters) for every item but `emergency_contact`, which
    is `{name, phone, relation}`; null or empty text clears the item."""

    value: str | EmergencyContact | None = Field(default=None)

    @model_validator(mode="after")
    def _bounded(self) -> ProfileValue:
        if isinstance(self.value, str) and len(self.value) > 2000:
            raise ValueError("value is at most 2000 characters")
        return self
