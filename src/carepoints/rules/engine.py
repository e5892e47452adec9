"""The pure rules engine: an event and the patient's rule state in, a
decision out. No I/O; `now` is passed in.

Arithmetic, in this order (DESIGN.md): conditions → base points →
multipliers → the rule's own limits → suspension → the annual cap. An award
that would exceed a cap is reduced to the remaining room. Limits count
awarded occurrences only, so a withheld or zero award consumes nothing."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from carepoints.experiments.assign import Arm
from carepoints.experiments.schemas import RuleOverride
from carepoints.rules.programme import (
    AttrCompareCondition,
    AttrCondition,
    Condition,
    HoursBetweenCondition,
    InstitutionCondition,
    LocalTimeCondition,
    NotLaterCondition,
    OffPeakCondition,
    PatientCondition,
    Programme,
    Rule,
    Settings,
    TextLengthCondition,
)

ONE_DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- inputs and outputs -------------------------------------------------------

@dataclass(slots=True)
class EventView:
    id: str
    type: str
    occurred_at: datetime
    attributes: Mapping[str, Any]


@dataclass(slots=True)
class NoShowRec:
    event_id: str
    slot_start: datetime
    status: str  # counted | consumed | reset | revoked


@dataclass(slots=True)
class SuspensionRec:
    id: str
    starts_at: datetime
    ends_at: datetime
    trigger_event_id: str


@dataclass(slots=True)
class PatientState:
    """What the engine needs to know about one patient; the service loads it."""

    patient_id: str
    consent: bool = True
    tier: str = "standard"
    birth_date: date | None = None
    inactive: bool = False  # deceased, closed, merged or erased: nothing is scored
    frozen: bool = False  # a reviewer froze earning: positive awards withheld, penalties go on
    counters: dict[str, int] = field(default_factory=dict)
    runs: dict[str, list[tuple[date, date]]] = field(default_factory=dict)  # maximal runs of counted days
    no_shows: list[NoShowRec] = field(default_factory=list)
    suspensions: list[SuspensionRec] = field(default_factory=list)
    arms: list[Arm] = field(default_factory=list)  # experiments the patient is in (rules.state loads them)

    def suspended_at(self, at: datetime) -> SuspensionRec | None:
        for s in self.suspensions:
            if s.starts_at <= at < s.ends_at:
                return s
        return None


@dataclass(slots=True)
class Award:
    rule: str
    points: int
    message: str


@dataclass(slots=True)
class Notice:
    code: str
    message: str


@dataclass(slots=True)
class Decision:
    version: int
    awards: list[Award] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    counters: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # key -> (delta, cap)
    days: list[tuple[str, date]] = field(default_factory=list)
    runs: dict[str, list[tuple[date, date]]] = field(default_factory=dict)
    no_show: NoShowRec | None = None
    no_show_updates: dict[str, str] = field(default_factory=dict)  # event id -> new status
    suspension: SuspensionRec | None = None
    suspension_previous_end: datetime | None = None  # when this event extended a suspension
    streak_units: dict[str, int] = field(default_factory=dict)  # rule -> streak units this event accounts for
    experiments: list[dict[str, str]] = field(default_factory=list)  # {code, variant} of the arms that scored it

    def bump(self, key: str, delta: int, cap: int | None) -> None:
        old = self.counters.get(key)
        self.counters[key] = ((old[0] if old else 0) + delta, cap)


# --- the programme, compiled for evaluation -----------------------------------

class CompiledProgramme:
    def __init__(self, version: int, programme: Programme, tz: ZoneInfo,
                 effective_from: datetime | None = None) -> None:
        self.version = version
        self.programme = programme
        self.settings: Settings = programme.settings
        self.tz = tz
        self.effective_from = effective_from or programme.effective_from or EPOCH
        self.rules: dict[str, list[Rule]] = {}
        self.multipliers: dict[str, list[Rule]] = {}
        for rule in programme.rules:
            if rule.status != "active":
                continue
            target = self.multipliers if rule.multiplier else self.rules
            for etype in rule.event:
                target.setdefault(etype, []).append(rule)
        self.by_code = {r.code: r for r in programme.rules}
        self.limits = {r.code: limit_specs(r) for r in programme.rules}
        # (rule, day) -> the keys of the rule's limits that depend on the day only (None for
        # once-per-attribute limits); events of the same days share them.
        self.day_limit_keys: dict[tuple[str, date], tuple[tuple[str | None, LimitSpec], ...]] = {}
        # (rule, experiment override) -> the rule as overridden and its limits by kind
        self.overridden: dict[tuple[str, RuleOverride], tuple[Rule, dict[str, LimitSpec]]] = {}
        self.replay_groups = replay_groups(self)


class ProgrammeSet:
    """Every loaded version; the one in force at an instant is the latest effective one."""

    def __init__(self, versions: Iterable[CompiledProgramme]) -> None:
        self.versions = sorted(versions, key=lambda v: (v.effective_from, v.version))
        if not self.versions:
            raise ValueError("no programme loaded")

    @property
    def latest(self) -> CompiledProgramme:
        return max(self.versions, key=lambda v: v.version)

    def at(self, when: datetime) -> CompiledProgramme:
        chosen = self.versions[0]
        for v in self.versions:
            if v.effective_from <= when:
                chosen = v
            else:
                break
        return chosen


# --- conditions -----------------------------------------------------------------

def text_length(text: str) -> int:
    """Unicode code points after NFC normalisation, ignoring whitespace."""
    return sum(1 for ch in unicodedata.normalize("NFC", text) if not ch.isspace())


def parse_ts(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else None
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _timestamp(ev: EventView, name: str) -> datetime | None:
    return ev.occurred_at if name == "occurred_at" else parse_ts(ev.attributes.get(name))


def _compare(op: str, left: Any, right: Any) -> bool:
    try:
        if op == "eq":
            return bool(left == right)
        if op == "ne":
            return bool(left != right)
        if op == "in":
            return left in (right or ())
        if op == "not_in":
            return left not in (right or ())
        if op == "present":
            return left is not None and left != ""
        if left is None or right is None:
            return False
        if op == "gt":
            return bool(left > right)
        if op == "gte":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        if op == "lte":
            return bool(left <= right)
    except TypeError:
        return False
    return False


def in_off_peak(when: datetime, settings: Settings, tz: ZoneInfo) -> bool:
    local = when.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    return any(local.isoweekday() in w.weekdays and w.start <= clock < w.end for w in settings.off_peak)


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def condition_holds(cond: Condition, ev: EventView, state: PatientState, prog: CompiledProgramme) -> bool:
    attrs = ev.attributes
    if isinstance(cond, AttrCondition):
        value = attrs.get(cond.attr, cond.default)
        return _compare(cond.op, value, cond.value)
    if isinstance(cond, TextLengthCondition):
        text = attrs.get(cond.attr)
        return isinstance(text, str) and text_length(text) >= cond.min
    if isinstance(cond, HoursBetweenCondition):
        start, end = _timestamp(ev, cond.from_), _timestamp(ev, cond.to)
        return start is not None and end is not None and (end - start) >= timedelta(hours=cond.min)
    if isinstance(cond, NotLaterCondition):
        left, right = _timestamp(ev, cond.attr), _timestamp(ev, cond.than)
        return left is not None and right is not None and left <= right
    if isinstance(cond, AttrCompareCondition):
        return _compare(cond.op, attrs.get(cond.attr), attrs.get(cond.other))
    if isinstance(cond, OffPeakCondition):
        when = _timestamp(ev, cond.attr)
        return when is not None and in_off_peak(when, prog.settings, prog.tz)
    if isinstance(cond, LocalTimeCondition):
        clock = ev.occurred_at.astimezone(prog.tz).time().replace(tzinfo=None)
        return cond.start <= clock < cond.end
    if isinstance(cond, PatientCondition):
        if cond.field == "tier":
            return _compare(cond.op, state.tier, cond.value)
        if state.birth_date is None:
            return False
        return _compare(cond.op, _age(state.birth_date, ev.occurred_at.astimezone(prog.tz).date()), cond.value)
    if isinstance(cond, InstitutionCondition):  # (ops.alliance)
        return _compare(cond.op, attrs.get("institution"), cond.value)
    return False  # pragma: no cover - the union is closed


# --- limits -------------------------------------------------------------------------

def _key_part(value: Any) -> str:
    """One attribute value inside a counter key: '|' and '\\' escaped so that
    joined values never collide; long values hashed."""
    text = "" if value is None else str(value)
    if len(text) > 64:
        return "#" + hashlib.sha256(text.encode()).hexdigest()[:32]
    return text.replace("\\", "\\\\").replace("|", "\\|")


def no_show_key(appointment_id: Any) -> str:
    """Counter key marking an appointment's no-show as known (counted once for suspension)."""
    return f"no_show_seen:{_key_part(appointment_id)}"


@dataclass(slots=True, frozen=True)
class LimitSpec:
    """A rule's limit, prepared once per programme version; only the key varies per event."""

    kind: str  # once | life | d | n | m | y
    cap: int
    points: bool  # True: counts points; False: counts awards
    code: str
    message: str
    attrs: tuple[str, ...] = ()


def limit_specs(rule: Rule) -> tuple[LimitSpec, ...]:
    lim, name = rule.limits, rule.names.zh
    out: list[LimitSpec] = []
    if lim.once_per:
        label = "_".join(a.removesuffix("_id") for a in lim.once_per)
        out.append(LimitSpec("once", 1, False, f"rules.once_per_{label}", f"该项目已获得过「{name}」积分",
                             lim.once_per))
    if lim.lifetime:
        out.append(LimitSpec("life", lim.lifetime, False, "rules.once_ever",
                             f"「{name}」积分已领取" if lim.lifetime == 1 else f"「{name}」积分次数已满"))
    if lim.daily_points:
        out.append(LimitSpec("d", lim.daily_points, True, "rules.daily_cap",
                             f"今日「{name}」积分已达上限{lim.daily_points}分"))
    if lim.per_day:
        out.append(LimitSpec("n", lim.per_day, False, "rules.daily_cap", f"今日「{name}」次数已达上限"))
    if lim.per_month:
        out.append(LimitSpec("m", lim.per_month, False, "rules.monthly_limit", f"本月「{name}」次数已达上限"))
    if lim.per_year:
        out.append(LimitSpec("y", lim.per_year, False, "rules.yearly_limit", f"今年「{name}」次数已达上限"))
    return tuple(out)


# Suspension is judged at ingest from what is known and deliberately order dependent
# (DESIGN.md): the behaviours it rests on are never re-evaluated.
_JUDGED_ONCE = frozenset({"appointment.no_show", "appointment.attended"})


def order_sensitive(rule: Rule, specs: tuple[LimitSpec, ...], multiplied: bool) -> bool:
    """Whether which events a rule pays can depend on their arrival order.

    One limit alone is not: a points cap pays min(cap, Σ) and a count limit the
    first N of equal awards, whatever the order. Two limits where one is once
    per item are (a late repeat of an item moves its award to an earlier day,
    whose room another item had), and so is a count limit on awards that are
    not all equal (a multiplier, or streak units). Such events are re-evaluated
    in time order when an earlier one arrives late (events.service)."""
    once = any(s.kind == "once" for s in specs)
    counted = any(not s.points and s.kind != "once" for s in specs)
    return (once and len(specs) > 1) or ((multiplied or rule.streak is not None) and counted)


def replay_groups(prog: CompiledProgramme) -> dict[str, str]:
    """Behaviour → replay group: behaviours scored by a common order-sensitive rule
    share its counters, so they are re-evaluated together (one group per connected
    set, named by its first behaviour)."""
    parent: dict[str, str] = {}

    def root(t: str) -> str:
        while parent[t] != t:
            t = parent[t]
        return t

    for rule in prog.programme.rules:
        if rule.status != "active" or rule.multiplier:
            continue
        types = sorted(t for t in rule.event if t not in _JUDGED_ONCE)
        if not types or not order_sensitive(rule, prog.limits[rule.code],
                                            any(t in prog.multipliers for t in types)):
            continue
        for t in types:
            parent.setdefault(t, t)
        first = root(types[0])
        for t in types[1:]:
            a, b = sorted((first, root(t)))
            parent[b] = a
            first = a
    return {t: root(t) for t in parent}


def limit_key(code: str, spec: LimitSpec, attributes: Mapping[str, Any], day: date) -> str:
    kind = spec.kind
    if kind == "once":
        return f"{code}:once:" + "|".join(_key_part(attributes.get(a)) for a in spec.attrs)
    if kind == "life":
        return f"{code}:life"
    if kind in ("d", "n"):
        return f"{code}:{kind}:{day.isoformat()}"
    if kind == "m":
        return f"{code}:m:{day.year:04d}-{day.month:02d}"
    return f"{code}:y:{day.year:04d}"


def rule_limits(prog: CompiledProgramme, rule: Rule, ev: EventView, day: date) -> list[tuple[str, LimitSpec]]:
    """The counter key and spec of each of the rule's limits for this event."""
    cache = prog.day_limit_keys
    base = cache.get((rule.code, day))
    if base is None:
        if len(cache) > 8192:
            cache.clear()
        base = cache[(rule.code, day)] = tuple(
            (None if spec.kind == "once" else limit_key(rule.code, spec, {}, day), spec)
            for spec in prog.limits[rule.code])
    out: list[tuple[str, LimitSpec]] = []
    for key, spec in base:
        if key is None:
            if any(ev.attributes.get(a) is None for a in spec.attrs):
                continue  # the event names no such item (a dose without its planned time): not limited once
            key = limit_key(rule.code, spec, ev.attributes, day)
        out.append((key, spec))
    return out


def day_key(group: str, day: date) -> str:
    return f"{group}:day:{day.isoformat()}"


def owed_key(rule_code: str) -> str:
    """Streak units paid beyond the current runs (after a revoke split a run)."""
    return f"{rule_code}:streak_owed"


def annual_key(year: int) -> str:
    return f"annual:{year:04d}"


# --- streaks ------------------------------------------------------------------------

def add_day(runs: list[tuple[date, date]], day: date) -> tuple[list[tuple[date, date]], list[int], int] | None:
    """Insert `day` into sorted maximal runs. Returns the new runs, the lengths of
    the runs that were merged away, and the length of the run now holding `day`;
    None when the day is already counted."""
    left = right = None
    for i, (start, end) in enumerate(runs):
        if start <= day <= end:
            return None
        if end == day - ONE_DAY:
            left = i
        elif start == day + ONE_DAY:
            right = i
    start, end = day, day
    merged: list[int] = []
    for idx in (left, right):
        if idx is not None:
            s, e = runs[idx]
            merged.append((e - s).days + 1)
            start, end = min(start, s), max(end, e)
    kept = [r for i, r in enumerate(runs) if i not in (left, right)]
    kept.append((start, end))
    kept.sort()
    return kept, merged, (end - start).days + 1


def remove_day(runs: list[tuple[date, date]], day: date) -> list[tuple[date, date]]:
    out: list[tuple[date, date]] = []
    for start, end in runs:
        if start <= day <= end:
            if start < day:
                out.append((start, day - ONE_DAY))
            if day < end:
                out.append((day + ONE_DAY, end))
        else:
            out.append((start, end))
    return out


def streak_units(days_per_unit: int, merged: list[int], new_length: int) -> int:
    """Σ⌊L/N⌋ after the change minus before it, for the runs involved."""
    return new_length // days_per_unit - sum(length // days_per_unit for length in merged)


# --- evaluation -------------------------------------------------------------------

def effective(ev: EventView) -> EventView:
    """`staff.offline_entry` is scored as the behaviour it stands for."""
    if ev.type != "staff.offline_entry":
        return ev
    inner = ev.attributes.get("attributes")
    return EventView(ev.id, str(ev.attributes.get("behaviour", "")), ev.occurred_at,
                     inner if isinstance(inner, dict) else {})


def _fmt(template: str, points: int) -> str:
    return template.replace("{points}", str(abs(points)))


def evaluate(programmes: ProgrammeSet, raw: EventView, state: PatientState, now: datetime) -> Decision:
    """Decide what one event earns or costs. Pure: `state` is read, never changed."""
    prog = programmes.at(raw.occurred_at)
    decision = Decision(version=prog.version)
    settings = prog.settings
    if state.inactive:
        decision.notices.append(Notice("patients.inactive", "该账户已停用,本次不计积分"))
        return decision
    if not state.consent:
        decision.notices.append(Notice("consent.missing", "尚未同意参加积分计划,本次不计积分"))
        return decision
    if now - raw.occurred_at > timedelta(days=settings.max_event_age_days):
        decision.notices.append(Notice("rules.event_too_old",
                                       f"行为发生已超过{settings.max_event_age_days}天,不计积分"))
        return decision
    ev = effective(raw)
    day = ev.occurred_at.astimezone(prog.tz).date()
    rules = [r for r in prog.rules.get(ev.type, ()) if _valid_on(r, day)]
    overrides = _arms_in_force(prog, ev, state, decision) if state.arms else {}
    capped: dict[str, dict[str, LimitSpec]] = {}
    if overrides:
        rules, capped = _apply_overrides(prog, rules, overrides)
    if ev.type == "appointment.no_show":
        _judge_no_show(prog, ev, state, decision)
    elif ev.type == "appointment.attended" and settings.suspension.consecutive:
        _reset_no_shows(ev, state, decision)
    if not rules:
        if not decision.notices and ev.type != "lab.critical_value":
            decision.notices.append(Notice("rules.no_rule", "该行为暂不计积分"))
        return decision

    multiplier = 1
    for m in prog.multipliers.get(ev.type, ()):
        if m.code in overrides and overrides[m.code].enabled is False:
            continue
        if _valid_on(m, day) and all(condition_holds(c, ev, state, prog) for c in m.conditions):
            multiplier *= m.multiplier or 1

    used: dict[str, int] = {}  # counter deltas already taken by this event

    def current(key: str) -> int:
        return state.counters.get(key, 0) + used.get(key, 0)

    blocked: list[tuple[Notice, bool]] = []  # (notice, quiet-unless-nothing-earned)
    unmet: list[Rule] = []
    matched = False
    streaks: dict[str, tuple[list[int], int] | None] = {}
    suspension = state.suspended_at(ev.occurred_at)

    for rule in rules:
        if not all(condition_holds(c, ev, state, prog) for c in rule.conditions):
            unmet.append(rule)
            continue
        matched = True
        points = rule.points
        if rule.streak:
            group = rule.streak.group
            if group not in streaks:
                streaks[group] = _streak_day(state, decision, group, day)
            change = streaks[group]
            if change is None:
                continue
            units = streak_units(rule.streak.days, *change)
            # Units already paid for days a revoke later took out of the run are not paid again.
            owed = current(owed_key(rule.code))
            settled = min(owed, units)
            if settled:
                used[owed_key(rule.code)] = used.get(owed_key(rule.code), 0) - settled
                decision.bump(owed_key(rule.code), -settled, None)
            units -= settled
            points *= units
            if points == 0:
                continue
        if points > 0:
            points *= multiplier
        limits = rule_limits(prog, rule, ev, day)
        if rule.code in capped:  # an experiment's cap: same counters, another limit
            limits = [(key, capped[rule.code].get(lim.kind, lim)) for key, lim in limits]
        for key, lim in limits:
            room = lim.cap - current(key)
            need = points if lim.points and points > 0 else 1
            if room <= 0 or (not lim.points and room < need):
                blocked.append((Notice(lim.code, lim.message), lim.code == "rules.once_ever"))
                points = 0
                break
            if lim.points and points > room:
                points = room
        if points == 0:
            continue
        if points > 0:
            if state.frozen:
                blocked.append((Notice("rules.earning_frozen", "积分获取已暂停,请联系积分服务窗口"), False))
                continue
            if suspension is not None:
                until = suspension.ends_at.astimezone(prog.tz).strftime("%Y-%m-%d %H:%M")
                blocked.append((Notice("rules.suspended", f"因多次爽约,积分获取暂停至{until},本次不计积分"), False))
                continue
            akey = annual_key(day.year)
            room = settings.annual_cap - current(akey)
            if room <= 0:
                blocked.append((Notice("rules.annual_cap", f"本年度积分已达上限{settings.annual_cap}分"), False))
                continue
            if points > room:
                points = room
                decision.notices.append(Notice("rules.annual_cap",
                                               f"已达本年度积分上限{settings.annual_cap}分,本次按剩余额度发放"))
            used[akey] = used.get(akey, 0) + points
            decision.bump(akey, points, settings.annual_cap)
        for key, lim in limits:
            delta = points if lim.points else 1
            used[key] = used.get(key, 0) + delta
            decision.bump(key, delta, lim.cap)
        sign = "+{points}积分" if points > 0 else "-{points}积分"
        template = rule.message.zh if rule.message else rule.names.zh + sign
        decision.awards.append(Award(rule.code, points, _fmt(template, points)))
        if rule.streak:  # units actually paid (a withheld award pays none)
            decision.streak_units[rule.code] = units

    if not decision.awards:
        loud = [n for n, quiet in blocked if not quiet]
        chosen = loud or [n for n, _ in blocked]
        seen: set[str] = {n.code for n in decision.notices}
        for notice in chosen:
            if notice.code not in seen:
                decision.notices.append(notice)
                seen.add(notice.code)
        if not matched and unmet and not decision.notices:
            first = unmet[0]
            text = first.unmet.zh if first.unmet else f"未满足「{first.names.zh}」的积分条件"
            decision.notices.append(Notice("rules.condition_not_met", text))
    return decision


def _arms_in_force(prog: CompiledProgramme, ev: EventView, state: PatientState,
                   decision: Decision) -> dict[str, RuleOverride]:
    """The overrides of the patient's arms in force at the event whose experiments touch a
    rule scoring it; those arms (control ones too) are recorded on the decision, so the
    outcome shows which variant an award was judged under."""
    codes = {r.code for r in prog.rules.get(ev.type, ())} | {m.code for m in prog.multipliers.get(ev.type, ())}
    out: dict[str, RuleOverride] = {}
    for arm in state.arms:
        if arm.holds(ev.occurred_at) and arm.covers & codes:
            decision.experiments.append({"code": arm.experiment, "variant": arm.variant})
            out.update(arm.overrides)
    return out


def _apply_overrides(prog: CompiledProgramme, rules: list[Rule], overrides: dict[str, RuleOverride],
                     ) -> tuple[list[Rule], dict[str, dict[str, LimitSpec]]]:
    """The rules as the patient's variants change them (disabled ones left out), and the
    limits (by kind) of those whose daily cap changed. A daily cap changes only where the rule
    has one (the counters are the same; experiments refuse others at creation)."""
    out: list[Rule] = []
    capped: dict[str, dict[str, LimitSpec]] = {}
    for rule in rules:
        ov = overrides.get(rule.code)
        if ov is None:
            out.append(rule)
            continue
        if ov.enabled is False:
            continue
        hit = prog.overridden.get((rule.code, ov))
        if hit is None:
            changed = rule
            if ov.points is not None:
                changed = changed.model_copy(update={"points": ov.points})
            if ov.daily_points is not None and rule.limits.daily_points is not None:
                changed = changed.model_copy(update={"limits": rule.limits.model_copy(
                    update={"daily_points": ov.daily_points})})
            hit = prog.overridden[(rule.code, ov)] = (changed, {s.kind: s for s in limit_specs(changed)})
        out.append(hit[0])
        if ov.daily_points is not None:
            capped[rule.code] = hit[1]
    return out, capped


def _valid_on(rule: Rule, day: date) -> bool:
    return (rule.valid_from is None or rule.valid_from <= day) and (rule.valid_to is None or day <= rule.valid_to)


def _streak_day(state: PatientState, decision: Decision, group: str, day: date) -> tuple[list[int], int] | None:
    """Record `day` for the streak group; None when the day was already counted."""
    decision.days.append((group, day))
    decision.bump(day_key(group, day), 1, None)  # how many events count this day (for revokes)
    added = add_day(state.runs.get(group, []), day)
    if added is None:
        return None
    runs, merged, length = added
    decision.runs[group] = runs
    return merged, length


def _judge_no_show(prog: CompiledProgramme, ev: EventView, state: PatientState, decision: Decision) -> None:
    """Suspension is judged at ingest from the no-shows already known."""
    policy = prog.settings.suspension
    seen = no_show_key(ev.attributes.get("appointment_id"))
    if state.counters.get(seen, 0) > 0:
        return  # the same missed appointment reported again (HIS and scheduling) counts once
    decision.bump(seen, 1, 1)
    slot = parse_ts(ev.attributes.get("slot_start")) or ev.occurred_at
    rec = NoShowRec(ev.id, slot, "counted")
    decision.no_show = rec
    duration = timedelta(hours=policy.duration_hours)
    active = state.suspended_at(slot)
    if active is not None:  # a no-show during a suspension restarts it
        rec.status = "consumed"
        decision.suspension = SuspensionRec(active.id, active.starts_at, max(active.ends_at, slot + duration),
                                            active.trigger_event_id)
        decision.suspension_previous_end = active.ends_at
        return
    counted = sorted((n for n in state.no_shows if n.status == "counted"), key=lambda n: n.slot_start)
    counted = sorted([*counted, rec], key=lambda n: n.slot_start)
    window = timedelta(days=policy.window_days)
    k = policy.threshold
    for i in range(len(counted) - k + 1):
        group = counted[i:i + k]
        if group[-1].slot_start - group[0].slot_start <= window and rec in group:
            for n in group:
                if n is rec:
                    rec.status = "consumed"
                else:
                    decision.no_show_updates[n.event_id] = "consumed"
            start = group[-1].slot_start
            decision.suspension = SuspensionRec("", start, start + duration, ev.id)
            return


def _reset_no_shows(ev: EventView, state: PatientState, decision: Decision) -> None:
    slot = parse_ts(ev.attributes.get("slot_start")) or ev.occurred_at
    for n in state.no_shows:
        if n.status == "counted" and n.slot_start < slot:
            decision.no_show_updates[n.event_id] = "reset"


def apply(state: PatientState, decision: Decision) -> None:
    """Fold a decision into the in-memory state so the next event of a batch sees it."""
    for key, (delta, _cap) in decision.counters.items():
        state.counters[key] = state.counters.get(key, 0) + delta
    for group, runs in decision.runs.items():
        state.runs[group] = runs
    if decision.no_show_updates:
        for n in state.no_shows:
            if n.event_id in decision.no_show_updates:
                n.status = decision.no_show_updates[n.event_id]
    if decision.no_show is not None:
        state.no_shows.append(decision.no_show)
    if decision.suspension is not None:
        state.suspensions = [s for s in state.suspensions if s.id != decision.suspension.id or not s.id]
        state.suspensions.append(decision.suspension)
