"""The shipped knowledge base (knowledge.yaml): read and checked once per process, and turned
into the engine's compiled form, either straight from the file (the test set, bench/triage.py)
or from the triage tables' rows (what the service answers with, the admin's edits included)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from carepoints.services.triage import engine
from carepoints.services.triage.schemas import KnowledgeDoc, SettingsDoc


@lru_cache(maxsize=1)
def shipped() -> KnowledgeDoc:
    """The knowledge base file in the package, validated (a broken file fails at start-up)."""
    raw = resources.files("carepoints.services.triage").joinpath("knowledge.yaml").read_text(encoding="utf-8")
    return KnowledgeDoc.model_validate(yaml.safe_load(raw))


def settings_of(doc: SettingsDoc) -> engine.Settings:
    return engine.Settings(child_age_below=doc.child_age_below, child_kind=doc.child_kind,
                           pregnancy_kind=doc.pregnancy_kind, fallback_kind=doc.fallback_kind,
                           max_departments=doc.max_departments, standing_terms=frozenset(doc.standing_terms))


def groups(when: Iterable[Iterable[str | Iterable[str]]]) -> tuple[tuple[frozenset[str], ...], ...]:
    """Red-flag alternatives with each group as a set of term ids."""
    return tuple(tuple(frozenset([g]) if isinstance(g, str) else frozenset(g) for g in alt) for alt in when)


@lru_cache(maxsize=1)
def shipped_knowledge() -> engine.Knowledge:
    """The engine's knowledge straight from the shipped file (no database)."""
    doc = shipped()
    return engine.Knowledge(
        [engine.Kind(k.code, k.zh, k.en, k.sex, k.sort) for k in doc.kinds],
        [engine.Term(t.id, t.zh, t.en, tuple(t.synonyms), dict(t.weights)) for t in doc.terms],
        [engine.RedFlag(f.id, f.zh, f.en, f.message_zh, f.message_en, groups(f.when), f.hotline_zh, f.hotline_en)
         for f in doc.red_flags],
        settings_of(doc.settings))


def from_rows(kinds: Iterable[Mapping[Any, Any]], terms: Iterable[Mapping[Any, Any]],
              flags: Iterable[Mapping[Any, Any]]) -> engine.Knowledge:
    """The engine's knowledge from the triage tables (enabled rows only)."""
    return engine.Knowledge(
        [engine.Kind(k["code"], k["name_zh"], k["name_en"], k["sex"], k["sort"]) for k in kinds if k["enabled"]],
        [engine.Term(t["id"], t["name_zh"], t["name_en"], tuple(t["synonyms"]), dict(t["weights"]))
         for t in terms if t["enabled"]],
        [engine.RedFlag(f["id"], f["name_zh"], f["name_en"], f["message_zh"], f["message_en"], groups(f["when"]),
                        f["hotline_zh"], f["hotline_en"]) for f in flags if f["enabled"]],
        settings_of(shipped().settings))
