"""Request bodies of the triage API and the shape of the shipped knowledge base. Every string,
list and number is bounded, so that bad input is a 422 (`request.invalid`), never a 5xx.

The symptom text is health data: it is validated here and handed to the engine, never echoed
in an error (pydantic's messages name the field and the rule, not the value)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

MAX_TEXT = 500
MAX_SYNONYMS = 120
MAX_WEIGHTS = 20
MAX_ALTERNATIVES = 20
MAX_GROUPS = 6
MAX_GROUP_TERMS = 20

Slug = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
NameEn = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Message = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Weight = Annotated[int, Field(ge=1, le=10)]
Sex = Literal["male", "female", "other", "unknown"]
# a synonym: letters, digits or CJK characters (one character matches only a whole word of the
# segmentation, such as "痰"), or a gapped pattern "A…B" whose sides may list alternatives
# ("胸|胸口…疼|痛")
_W = r"[0-9a-z\u3400-\u9fff]+"
_SYNONYM = re.compile(rf"^(?:{_W}|{_W}(?:\|{_W})*…{_W}(?:\|{_W})*)$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def clean_synonyms(values: list[str]) -> list[str]:
    """Synonyms trimmed, lower-cased and de-duplicated in order: 1–24 letters, digits or Chinese
    characters, or a gapped pattern "A…B" (each side one word or alternatives joined by "|",
    up to 200 characters in all)."""
    out: list[str] = []
    for raw in values:
        value = raw.strip().lower().replace("...", "…")
        limit = 200 if "…" in value else 24
        if not 1 <= len(value) <= limit or not _SYNONYM.match(value):
            raise ValueError("同义词须为1到24个汉字、字母或数字,或“甲…乙”形式(两边可用“|”列出多个) / a synonym is "
                             "1–24 letters, digits or Chinese characters, or a pattern 'A…B' (sides may list "
                             "alternatives with '|')")
        if value not in out:
            out.append(value)
    return out


# --- asking ---------------------------------------------------------------------------------

class TriageAsk(_In):
    """A symptom description and what the caller knows about the person (all optional)."""

    text: str = Field(min_length=1, max_length=MAX_TEXT)
    age: int | None = Field(default=None, ge=0, le=130)
    sex: Sex | None = None
    pregnant: bool | None = None
    patient_id: str | None = Field(default=None, min_length=1, max_length=64)
    institution_id: str | None = Field(default=None, min_length=1, max_length=36)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("请描述您的症状 / describe your symptoms")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TriageAsk:
        if self.pregnant and self.sex == "male":
            raise ValueError("男性不能选择怀孕 / pregnant cannot go with sex male")
        return self


# --- the knowledge base (the shipped file and the admin's edits) -------------------------------

class KindDoc(_In):
    code: Slug
    zh: Name
    en: NameEn
    names: list[Name] = Field(default_factory=list, max_length=30)
    sex: Literal["female", "male"] | None = None
    sort: int = Field(default=0, ge=0, le=10_000)


class TermDoc(_In):
    id: Slug
    zh: Name
    en: NameEn
    synonyms: list[str] = Field(min_length=1, max_length=MAX_SYNONYMS)
    weights: dict[Slug, Weight] = Field(default_factory=dict, max_length=MAX_WEIGHTS)

    @field_validator("synonyms")
    @classmethod
    def _synonyms(cls, value: list[str]) -> list[str]:
        return clean_synonyms(value)


Group = Slug | Annotated[list[Slug], Field(min_length=1, max_length=MAX_GROUP_TERMS)]
Alternative = Annotated[list[Group], Field(min_length=1, max_length=MAX_GROUPS)]


class RedFlagDoc(_In):
    id: Slug
    zh: Name
    en: NameEn
    message_zh: Message
    message_en: Message
    hotline_zh: Message | None = None
    hotline_en: Message | None = None
    when: list[Alternative] = Field(min_length=1, max_length=MAX_ALTERNATIVES)


class SettingsDoc(_In):
    child_age_below: int = Field(default=14, ge=1, le=18)
    child_kind: Slug = "pediatrics"
    pregnancy_kind: Slug = "obstetrics"
    fallback_kind: Slug = "general"
    max_departments: int = Field(default=3, ge=1, le=6)
    # terms red flags read even when told as history ("去年放过支架，今天胸口又疼"): standing conditions
    standing_terms: list[Slug] = Field(default_factory=list, max_length=50)


class KnowledgeDoc(_In):
    """The shipped knowledge base file, checked whole: ids unique, every weight names a kind,
    every red-flag term exists, no synonym belongs to two terms."""

    version: int = Field(ge=1)
    settings: SettingsDoc = Field(default_factory=SettingsDoc)
    kinds: list[KindDoc] = Field(min_length=1, max_length=100)
    terms: list[TermDoc] = Field(min_length=1, max_length=2000)
    red_flags: list[RedFlagDoc] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _coherent(self) -> KnowledgeDoc:
        kinds = {k.code for k in self.kinds}
        terms = {t.id for t in self.terms}
        if len(kinds) != len(self.kinds) or len(terms) != len(self.terms):
            raise ValueError("duplicate kind or term id")
        if len({f.id for f in self.red_flags}) != len(self.red_flags):
            raise ValueError("duplicate red flag id")
        owner: dict[str, str] = {}
        for term in self.terms:
            if unknown := set(term.weights) - kinds:
                raise ValueError(f"term {term.id}: unknown kinds {sorted(unknown)}")
            for syn in term.synonyms:
                if owner.setdefault(syn, term.id) != term.id:
                    raise ValueError(f"synonym {syn} belongs to {owner[syn]} and {term.id}")
        for flag in self.red_flags:
            if unknown := flag_terms(flag.when) - terms:
                raise ValueError(f"red flag {flag.id}: unknown terms {sorted(unknown)}")
        for code in (self.settings.child_kind, self.settings.pregnancy_kind, self.settings.fallback_kind):
            if code not in kinds:
                raise ValueError(f"settings name an unknown kind {code}")
        return self


def flag_terms(when: list[list[str | list[str]]]) -> set[str]:
    """Every term id a red flag's alternatives name."""
    return {t for alternative in when for group in alternative for t in ([group] if isinstance(group, str) else group)}


# --- the admin's edits ----------------------------------------------------------------------

class TermCreate(_In):
    """A new term: its id (lower-case letters, digits, _), names, synonyms and weights."""

    id: Slug
    name_zh: Name
    name_en: NameEn
    synonyms: list[str] = Field(min_length=1, max_length=MAX_SYNONYMS)
    weights: dict[Slug, Weight] = Field(default_factory=dict, max_length=MAX_WEIGHTS)
    enabled: bool = True

    @field_validator("synonyms")
    @classmethod
    def _synonyms(cls, value: list[str]) -> list[str]:
        return clean_synonyms(value)


class TermUpdate(_In):
    """A term's new names, synonyms (the whole list), weights (the whole map) or state; what is
    left out stays as it is."""

    name_zh: Name | None = None
    name_en: NameEn | None = None
    synonyms: list[str] | None = Field(default=None, min_length=1, max_length=MAX_SYNONYMS)
    weights: dict[Slug, Weight] | None = Field(default=None, max_length=MAX_WEIGHTS)
    enabled: bool | None = None

    @field_validator("synonyms")
    @classmethod
    def _synonyms(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else clean_synonyms(value)


class RedFlagUpdate(_In):
    """A red flag's names, messages, term combinations or state; what is left out stays."""

    name_zh: Name | None = None
    name_en: NameEn | None = None
    message_zh: Message | None = None
    message_en: Message | None = None
    hotline_zh: Message | None = None
    hotline_en: Message | None = None
    when: list[Alternative] | None = Field(default=None, min_length=1, max_length=MAX_ALTERNATIVES)
    enabled: bool | None = None


class KindDepartments(_In):
    """The hospital departments a kind stands for (replaces the name matches for this kind)."""

    department_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=36)]] = Field(max_length=200)
