"""The recommendation rules (rules.yaml): which condition or behaviour suggests which task or
content, with what score and which reason. Curated and configurable: the hospital may replace
the shipped file with its own (`CAREPOINTS_RECOMMEND_RULES`, a path), validated here with
pydantic once per process. A file that does not validate is refused as a whole
(`recommend.rules_invalid`), including wording that reads like a diagnosis or a treatment:
carepoints suggests everyday tasks and learning, never what to take or what one has."""

from __future__ import annotations

import re
import string
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from carepoints.config import get_settings
from carepoints.engagement.health.schemas import ConditionCode
from carepoints.services.recommend.errors import RulesInvalidError


class Kind(StrEnum):
    task = "task"  # a self-monitoring or check-in task of today
    content = "content"  # an education item (健康知识) with its quiz
    lecture = "lecture"  # a health lecture (健康讲座) with seats left
    service = "service"  # one of the hospital's online services to try


class Signal(StrEnum):
    """Behaviour counts of the snapshot (`window_days` back unless named otherwise)."""

    online_bookings = "online_bookings"  # appointments booked online (app, WeChat)
    onsite_bookings = "onsite_bookings"  # appointments registered at a window
    visits = "visits"  # appointments attended
    readings_7d = "readings_7d"  # self-monitored BP / glucose readings of the last 7 days (health data)
    education_completed = "education_completed"  # education items passed, ever
    lectures_attended = "lectures_attended"  # lectures signed in at, ever
    followups_open = "followups_open"  # follow-up questionnaires due or overdue now
    medication_open_today = "medication_open_today"  # planned doses of today not checked in (health data)


# signals read from health data: unknown (never 0) without the patient's health-data consent
HEALTH_SIGNALS = frozenset({Signal.readings_7d, Signal.medication_open_today})


class Task(StrEnum):
    """Today's tasks as the home page lists them (engagement): open or done."""

    measure_bp = "measure_bp"
    measure_glucose = "measure_glucose"
    medication = "medication"
    followup = "followup"


Code = Annotated[str, StringConstraints(min_length=2, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
Link = Annotated[str, StringConstraints(max_length=200, pattern=r"^/me(/[a-z0-9_\-/]*)?(#[a-z0-9_\-]+)?$")]
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]

# wording a suggestion must never use: it would read like a diagnosis, a prescription or a
# treatment decision (checked on every text of the file, whoever wrote it)
FORBIDDEN_ZH = ("诊断", "确诊", "治疗", "处方", "剂量", "药量", "停药", "换药", "加药", "减药", "您患有", "你患有",
                "病情加重", "治愈")
FORBIDDEN_EN = ("diagnos", "prescri", "treat", "dosage", "cure", "you suffer", "you have a disease")
_PLACEHOLDER = "condition"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_words(zh: str, en: str) -> None:
    low = en.lower()
    for word in FORBIDDEN_ZH:
        if word in zh:
            raise ValueError(f"wording reads like a diagnosis or treatment: {word}")
    for word in FORBIDDEN_EN:
        if word in low:
            raise ValueError(f"wording reads like a diagnosis or treatment: {word}")


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


class Text(_Doc):
    """A text in Chinese and English. `{condition}` (only in reasons of condition rules) is
    replaced by the name of the patient's matching condition."""

    zh: str = Field(min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=300)

    @model_validator(mode="after")
    def _careful(self) -> Text:
        _check_words(self.zh, self.en)
        for text in (self.zh, self.en):
            try:
                names = placeholders(text)
            except ValueError as exc:
                raise ValueError("unbalanced braces") from exc
            if names - {_PLACEHOLDER}:
                raise ValueError("the only placeholder is {condition}")
        return self


class Reason(Text):
    """Why the suggestion is made, in plain words ("因为您登记了高血压…"), with a stable code."""

    code: Code


class Range(_Doc):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounded(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max")
        return self

    def holds(self, value: int) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class When(_Doc):
    """All that is given must hold: one of the conditions registered (needs the patient's
    health-data consent), none of `conditions_none`, one of today's tasks open, every signal
    within its range."""

    conditions_any: list[ConditionCode] = Field(default_factory=list, max_length=20)
    conditions_none: list[ConditionCode] = Field(default_factory=list, max_length=20)
    tasks_open_any: list[Task] = Field(default_factory=list, max_length=4)
    signals: dict[Signal, Range] = Field(default_factory=dict)


class EducationTarget(_Doc):
    """The newest published education item not yet passed: labelled with one of the patient's
    matching conditions (`by_condition`), with one of `tags`, or any item."""

    by_condition: bool = False
    tags: list[Code] = Field(default_factory=list, max_length=10)


class LectureTarget(_Doc):
    """The soonest lecture open for registration with seats left that the patient has not
    registered for, whose title holds one of `keywords` (none given: any lecture)."""

    keywords: list[Keyword] = Field(default_factory=list, max_length=20)


class Fallback(_Doc):
    """What to suggest when an education or lecture target finds nothing."""

    link: Link
    title: Text
    kind: Kind = Kind.service


class Target(_Doc):
    link: Link | None = None
    education: EducationTarget | None = None
    lecture: LectureTarget | None = None
    fallback: Fallback | None = None

    @model_validator(mode="after")
    def _one(self) -> Target:
        if sum(x is not None for x in (self.link, self.education, self.lecture)) != 1:
            raise ValueError("a target is exactly one of link, education, lecture")
        if self.link is not None and self.fallback is not None:
            raise ValueError("a link needs no fallback")
        return self


class Rule(_Doc):
    code: Code
    kind: Kind
    enabled: bool = True
    when: When = Field(default_factory=When)
    target: Target
    title: Text | None = None  # a link's title (education items and lectures bring their own)
    score: int = Field(ge=1, le=1000)
    reason: Reason

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.target.link is not None and self.title is None:
            raise ValueError("a link target needs a title")
        if self.target.education is not None and self.target.education.by_condition and not self.when.conditions_any:
            raise ValueError("by_condition needs when.conditions_any")
        if not self.when.conditions_any and (placeholders(self.reason.zh) | placeholders(self.reason.en)):
            raise ValueError("{condition} needs when.conditions_any")
        if self.kind == Kind.content and self.target.education is None:
            raise ValueError("a content rule targets education")
        if self.kind == Kind.lecture and self.target.lecture is None:
            raise ValueError("a lecture rule targets a lecture")
        return self


class RulesDoc(_Doc):
    version: int = Field(ge=1)
    window_days: int = Field(ge=7, le=730)  # behaviour counts look this far back
    items: int = Field(ge=1, le=20)  # at most this many suggestions
    elderly_items: int = Field(ge=1, le=10)  # fewer in elderly mode
    disclaimer: Text
    rules: list[Rule] = Field(min_length=1, max_length=200)

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[Rule]) -> list[Rule]:
        codes = [r.code for r in rules]
        if len(codes) != len(set(codes)):
            raise ValueError("rule codes must be unique")
        return rules

    @model_validator(mode="after")
    def _fewer(self) -> RulesDoc:
        if self.elderly_items > self.items:
            raise ValueError("elderly_items is above items")
        return self

    def tags(self) -> set[str]:
        """Every education tag a rule asks for (what the snapshot gathers)."""
        return {t for r in self.rules if r.target.education is not None for t in r.target.education.tags}


def _problem(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(x) for x in first["loc"])
    return re.sub(r"\s+", " ", f"{loc}: {first['msg']}")[:300]


def parse(text: str) -> RulesDoc:
    """Validate a rules document (YAML text); RulesInvalidError naming the first problem."""
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesInvalidError(problem="not YAML") from exc
    try:
        return RulesDoc.model_validate(raw)
    except ValidationError as err:
        raise RulesInvalidError(problem=_problem(err)) from None


def shipped_text() -> str:
    return resources.files("carepoints.services.recommend").joinpath("rules.yaml").read_text(encoding="utf-8")


@lru_cache(maxsize=4)
def _load(path: str | None) -> RulesDoc:
    return parse(Path(path).read_text(encoding="utf-8") if path else shipped_text())


def current() -> RulesDoc:
    """The rules in force: the hospital's file when configured, else the shipped one."""
    return _load(get_settings().recommend_rules or None)
