"""Request bodies of the questionnaire, follow-up and survey API. Every string, list and
number is bounded, so that bad input is a 422 (`request.invalid`), never a 5xx.

A question's alert rules are declarative (never evaluated as code): `any_of` (choice
values) for single/multi questions, `gte` / `lte` for number questions (abnormal when
the answer is ≥ gte or ≤ lte), each with a severity for the care alert it raises."""

from __future__ import annotations

import math
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from carepoints.scheduling.schemas import OnePatient

MAX_QUESTIONS = 50
MAX_CHOICES = 20
MAX_TEXT_ANSWER = 1000
MAX_OFFSETS = 10
MAX_OFFSET_DAYS = 365
Slug = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")
Code = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.\-]*$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Text(_In):
    zh: str = Field(min_length=1, max_length=500)
    en: str | None = Field(default=None, min_length=1, max_length=500)


class Purpose(StrEnum):
    followup = "followup"
    rehab = "rehab"
    satisfaction = "satisfaction"
    other = "other"


class QuestionType(StrEnum):
    single = "single"
    multi = "multi"
    number = "number"
    text = "text"


class Severity(StrEnum):
    normal = "normal"
    high = "high"
    critical = "critical"


class Choice(_In):
    value: str = Slug
    label: Text


class AlertRule(_In):
    any_of: list[str] | None = Field(default=None, min_length=1, max_length=MAX_CHOICES)
    gte: float | None = Field(default=None, ge=-1e9, le=1e9)
    lte: float | None = Field(default=None, ge=-1e9, le=1e9)
    severity: Severity = Severity.high

    @model_validator(mode="after")
    def _one_kind(self) -> AlertRule:
        if self.any_of is None and self.gte is None and self.lte is None:
            raise ValueError("an alert rule needs any_of, gte or lte")
        if self.any_of is not None and (self.gte is not None or self.lte is not None):
            raise ValueError("an alert rule is any_of (choices) or gte/lte (numbers), not both")
        return self


class Question(_In):
    id: str = Slug
    text: Text
    type: QuestionType
    choices: list[Choice] | None = Field(default=None, min_length=2, max_length=MAX_CHOICES)
    min: float | None = Field(default=None, ge=-1e9, le=1e9)
    max: float | None = Field(default=None, ge=-1e9, le=1e9)
    required: bool = True
    alert: AlertRule | list[AlertRule] | None = None

    def rules(self) -> list[AlertRule]:
        if self.alert is None:
            return []
        return self.alert if isinstance(self.alert, list) else [self.alert]

    @model_validator(mode="after")
    def _check(self) -> Question:
        choice = self.type in (QuestionType.single, QuestionType.multi)
        if choice != (self.choices is not None):
            raise ValueError("single and multi questions (only) have choices")
        if self.type != QuestionType.number and (self.min is not None or self.max is not None):
            raise ValueError("only number questions have min / max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is at most max")
        values = [c.value for c in self.choices or []]
        if len(set(values)) != len(values):
            raise ValueError("choice values are distinct")
        rules = self.rules()
        if len(rules) > 5:
            raise ValueError("at most 5 alert rules per question")
        for rule in rules:
            if self.type == QuestionType.text:
                raise ValueError("text answers carry no alert rules")
            if choice and (rule.any_of is None or not set(rule.any_of) <= set(values)):
                raise ValueError("a choice question's alert rule is any_of its choice values")
            if self.type == QuestionType.number and rule.any_of is not None:
                raise ValueError("a number question's alert rule is gte / lte")
        return self


class QuestionnaireCreate(_In):
    code: str = Code
    title: Text
    purpose: Purpose
    questions: list[Question] = Field(min_length=1, max_length=MAX_QUESTIONS)

    @model_validator(mode="after")
    def _ids(self) -> QuestionnaireCreate:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids are distinct")
        return self


class Trigger(StrEnum):
    discharge = "discharge"
    surgery = "surgery"


class FollowupKind(StrEnum):
    routine = "routine"
    rehab = "rehab"


class Channel(StrEnum):
    phone = "phone"
    sms = "sms"
    app = "app"


class StepState(StrEnum):
    upcoming = "upcoming"
    due = "due"
    overdue = "overdue"
    completed = "completed"
    cancelled = "cancelled"




class PlanCreate(OnePatient):
    trigger: Trigger
    occurred_on: date
    questionnaire: str = Code
    kind: FollowupKind | None = None
    channel: Channel
    offsets: list[int] | None = Field(default=None, min_length=1, max_length=MAX_OFFSETS)
    encounter_id: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _offsets(self) -> PlanCreate:
        if self.offsets is not None:
            if any(not 1 <= o <= MAX_OFFSET_DAYS for o in self.offsets):
                raise ValueError(f"offsets are 1 to {MAX_OFFSET_DAYS} days")
            if len(set(self.offsets)) != len(self.offsets):
                raise ValueError("offsets are distinct")
        return self

    def kind_or_default(self) -> FollowupKind:
        if self.kind is not None:
            return self.kind
        return FollowupKind.rehab if self.trigger == Trigger.surgery else FollowupKind.routine


class PlanCancel(_In):
    reason: str = Field(default="other", min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")


Answers = dict[str, JsonValue]


def _bounded_answers(answers: dict[str, Any]) -> None:
    if len(answers) > MAX_QUESTIONS:
        raise ValueError(f"at most {MAX_QUESTIONS} answers")
    for key, value in answers.items():
        if len(key) > 40:
            raise ValueError("question ids are at most 40 characters")
        if isinstance(value, str) and len(value) > MAX_TEXT_ANSWER:
            raise ValueError(f"a text answer is at most {MAX_TEXT_ANSWER} characters")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("numbers are finite")
        if isinstance(value, list) and len(value) > MAX_CHOICES:
            raise ValueError(f"at most {MAX_CHOICES} choices")
        if isinstance(value, dict):
            raise ValueError("an answer is a value or a list of choice values")


class ResponseCreate(_In):
    answers: Answers
    channel: Channel
    recorded_by: str | None = Field(default=None, min_length=1, max_length=36)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _bounded(self) -> ResponseCreate:
        _bounded_answers(self.answers)
        return self


class SurveyResponseCreate(OnePatient):
    questionnaire: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.\-]*$")
    answers: Answers
    period: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _bounded(self) -> SurveyResponseCreate:
        _bounded_answers(self.answers)
        return self
