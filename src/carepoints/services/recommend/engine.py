"""The recommendation engine: pure, no I/O. Input: a plain snapshot of one patient (registered
conditions, behaviour counts, today's open and done tasks, the education items and lectures on
offer) and the rules; output: recommendations ordered by score, each with its kind, its target
(a link of the patient pages), the score and the reason (a code and the words in Chinese and
English, "因为您登记了高血压…") plus the facts it rests on (`basis`).

Order is stable: score (higher first), then the rule's place in the file, then the target. A
target is suggested once (the highest-scoring rule wins); done tasks, passed items, lectures the
patient registered for and full lectures are never suggested (a task rule asks for its task
open); switched off → nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from carepoints.engagement.health.schemas import CONDITION_NAMES, ConditionCode
from carepoints.services.recommend.rules import HEALTH_SIGNALS, Kind, Rule, RulesDoc, Text


@dataclass(frozen=True, slots=True)
class ContentItem:
    """A published education item (newest first in the snapshot)."""

    id: str
    title_zh: str
    title_en: str | None
    conditions: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    completed: bool = False


@dataclass(frozen=True, slots=True)
class LectureItem:
    """A lecture still open for registration (soonest first in the snapshot)."""

    id: str
    title_zh: str
    title_en: str | None
    seats_left: int
    registered: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    enabled: bool = True
    health_data: bool = True  # the patient consents to health data: conditions, readings, plans are known
    conditions: frozenset[str] = frozenset()  # active codes; empty without health-data consent
    signals: Mapping[str, int] = field(default_factory=dict)  # Signal → count (missing = 0)
    open_tasks: frozenset[str] = frozenset()  # Task codes open today (a done one is not open)
    content: tuple[ContentItem, ...] = ()
    lectures: tuple[LectureItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Recommendation:
    code: str  # the rule
    kind: str  # Kind
    target: str  # a link of the patient pages
    target_id: str | None  # the education item or lecture, if any
    title_zh: str
    title_en: str
    score: int
    reason_code: str
    reason_zh: str
    reason_en: str
    basis: tuple[str, ...]  # the facts it rests on: "condition:hypertension", "signal:online_bookings=0", …

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "kind": self.kind, "target": self.target, "target_id": self.target_id,
                "title": {"zh": self.title_zh, "en": self.title_en}, "score": self.score,
                "reason": {"code": self.reason_code, "zh": self.reason_zh, "en": self.reason_en},
                "basis": list(self.basis)}


@dataclass(frozen=True, slots=True)
class _Hit:
    href: str
    key: str  # what makes two suggestions the same
    target_id: str | None
    title: tuple[str, str]
    kind: str
    condition: str | None  # the condition the reason names


def _matched(rule: Rule, snap: Snapshot) -> tuple[list[str], list[str]] | None:
    """(the rule's conditions the patient has, the basis) when `when` holds, else None."""
    when = rule.when
    basis: list[str] = []
    conditions: list[str] = [str(c) for c in when.conditions_any if c in snap.conditions]
    if when.conditions_any:
        if not conditions:
            return None
        basis += [f"condition:{c}" for c in conditions]
    if any(c in snap.conditions for c in when.conditions_none):
        return None
    if when.tasks_open_any:
        tasks = [t.value for t in when.tasks_open_any if t.value in snap.open_tasks]
        if not tasks:
            return None
        basis += [f"task_open:{t}" for t in tasks]
    for signal, wanted in when.signals.items():
        if signal in HEALTH_SIGNALS and not snap.health_data:
            return None  # unknown, not zero: say nothing rather than something untrue
        value = int(snap.signals.get(signal.value, 0))
        if not wanted.holds(value):
            return None
        basis.append(f"signal:{signal.value}={value}")
    return conditions, basis


def _education(rule: Rule, snap: Snapshot, conditions: list[str]) -> _Hit | None:
    target = rule.target.education
    assert target is not None  # noqa: S101 - the caller checked
    for item in snap.content:
        if item.completed:
            continue
        label: str | None = None
        if target.by_condition:
            label = next((c for c in conditions if c in item.conditions), None)
            if label is None:
                continue
        if target.tags and not item.tags.intersection(target.tags):
            continue
        return _Hit(f"/me/learn/{item.id}", f"education:{item.id}", item.id, (item.title_zh, item.title_en or
                                                                             item.title_zh), Kind.content, label)
    return None


def _lecture(rule: Rule, snap: Snapshot) -> _Hit | None:
    target = rule.target.lecture
    assert target is not None  # noqa: S101 - the caller checked
    words = [k.lower() for k in target.keywords]
    for lecture in snap.lectures:
        if lecture.registered or lecture.seats_left <= 0:
            continue
        title = f"{lecture.title_zh} {lecture.title_en or ''}".lower()
        if words and not any(w in title for w in words):
            continue
        return _Hit("/me/lectures", f"lecture:{lecture.id}", lecture.id,
                    (lecture.title_zh, lecture.title_en or lecture.title_zh), Kind.lecture, None)
    return None


def _target(rule: Rule, snap: Snapshot, conditions: list[str]) -> _Hit | None:
    first = conditions[0] if conditions else None
    t = rule.target
    hit: _Hit | None = None
    if t.link is not None:
        assert rule.title is not None  # noqa: S101 - validated with the rules
        return _Hit(t.link, f"link:{t.link}", None, (rule.title.zh, rule.title.en), rule.kind, first)
    if t.education is not None:
        hit = _education(rule, snap, conditions)
    elif t.lecture is not None:
        hit = _lecture(rule, snap)
    if hit is None and t.fallback is not None:
        fb = t.fallback
        return _Hit(fb.link, f"link:{fb.link}", None, (fb.title.zh, fb.title.en), fb.kind, first)
    if hit is not None and hit.condition is None:
        hit = _Hit(hit.href, hit.key, hit.target_id, hit.title, hit.kind, first)
    return hit


def _words(text: Text, condition: str | None) -> tuple[str, str]:
    if condition is None:
        return text.zh, text.en
    zh, en = CONDITION_NAMES[ConditionCode(condition)]
    en = en if en.isupper() else en[:1].lower() + en[1:]  # "COPD" stays, "Hypertension" → "hypertension"
    return text.zh.format(condition=zh), text.en.format(condition=en)


def recommend(snap: Snapshot, rules: RulesDoc, *, limit: int | None = None) -> list[Recommendation]:
    """The patient's recommendations, best first, at most `limit` (the rules' `items` when None)."""
    if not snap.enabled:
        return []
    found: list[tuple[int, int, str, Recommendation]] = []
    for order, rule in enumerate(rules.rules):
        if not rule.enabled:
            continue
        matched = _matched(rule, snap)
        if matched is None:
            continue
        conditions, basis = matched
        hit = _target(rule, snap, conditions)
        if hit is None:
            continue
        zh, en = _words(rule.reason, hit.condition)
        rec = Recommendation(code=rule.code, kind=str(hit.kind), target=hit.href, target_id=hit.target_id,
                             title_zh=hit.title[0], title_en=hit.title[1], score=rule.score,
                             reason_code=rule.reason.code, reason_zh=zh, reason_en=en, basis=tuple(basis))
        found.append((-rule.score, order, hit.key, rec))
    found.sort(key=lambda x: (x[0], x[1], x[2]))
    seen: set[str] = set()
    out: list[Recommendation] = []
    for _score, _order, key, rec in found:
        if key in seen:
            continue
        seen.add(key)
        out.append(rec)
    return out[: rules.items if limit is None else limit]
