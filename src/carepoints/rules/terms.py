"""The programme's terms (积分规则) in plain words, for patients: each rule's name,
points, conditions and limits, and the settings that matter to them (annual cap,
expiry, what points are worth, tiers, suspension). Pure: no I/O, no clock; the
language is `zh` (default) or `en`. Wording is short and plain (many readers are
elderly); unknown forms fall back to a neutral sentence, never to code."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from carepoints.rules.programme import (
    AttrCompareCondition,
    AttrCondition,
    Condition,
    HoursBetweenCondition,
    LocalTimeCondition,
    NotLaterCondition,
    OffPeakCondition,
    OffPeakWindow,
    PatientCondition,
    Programme,
    Rule,
    Settings,
    TextLengthCondition,
)

Lang = Literal["zh", "en"]

# The five rules most patients meet first, shown before the rest (those present and active).
CORE_RULES = ("book_ahead", "on_time", "cancel_early", "health_checkin", "no_show")

_TIERS = {"standard": ("普通", "Standard"), "silver": ("银卡", "Silver"), "gold": ("金卡", "Gold")}
_WEEKDAYS_ZH = "一二三四五六日"
_WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Well-known (attribute, value) conditions in words; others get a neutral sentence.
_SELF = ("限自己在家测量或设备上传的数据", "readings you take yourself or a device sends")
_ATTR_WORDS: dict[tuple[str, str], tuple[str, str]] = {
    ("provenance", "self_reported,device"): _SELF, ("provenance", "device,self_reported"): _SELF,
    ("booked_by", "patient"): ("由本人(或家属)预约", "booked by you (or your family)"),
    ("by", "patient"): ("由本人(或家属)取消", "cancelled by you (or your family)"),
    ("kind", "routine"): ("常规随访", "routine follow-ups"),
    ("kind", "rehab"): ("术后康复问卷", "rehabilitation questionnaires"),
}
_HOURS_WORDS: dict[tuple[str, str], tuple[str, str]] = {
    ("booked_at", "slot_start"): ("至少提前{h}预约", "booked at least {h} ahead"),
    ("cancelled_at", "slot_start"): ("至少提前{h}取消", "cancelled at least {h} ahead"),
}
_ONCE_WORDS: dict[str, tuple[str, str]] = {
    "appointment_id": ("每次预约", "appointment"), "exam_id": ("每次检查", "exam"),
    "plan_id,scheduled_for": ("每个服药时间", "planned dose"), "content_id": ("每项学习内容", "lesson"),
    "lecture_id": ("每场讲座", "lecture"), "period": ("每期", "period"), "plan_id,step": ("每次随访", "follow-up"),
    "item": ("每个项目", "item"), "referral_id": ("每次转诊", "referral"), "programme,item": ("每个项目", "item"),
    "post_id": ("每篇分享", "post"), "invitee_id": ("每位好友", "friend"),
}


def _pick(lang: Lang, zh: str, en: str) -> str:
    return en if lang == "en" else zh


def _hours(h: float, lang: Lang) -> str:
    if h >= 48 and h % 24 == 0:
        days = int(h // 24)
        return _pick(lang, f"{days}天", f"{days} day{'s' if days != 1 else ''}")
    n = int(h) if float(h).is_integer() else h
    return _pick(lang, f"{n}小时", f"{n} hours")


def _windows(windows: tuple[OffPeakWindow, ...], lang: Lang) -> str:
    parts = []
    for w in windows:
        wd = sorted(set(w.weekdays))
        if len(wd) > 2 and wd == list(range(wd[0], wd[-1] + 1)):  # a run of days: 周一至周五
            days = (f"周{_WEEKDAYS_ZH[wd[0] - 1]}至周{_WEEKDAYS_ZH[wd[-1] - 1]}" if lang == "zh"
                    else f"{_WEEKDAYS_EN[wd[0] - 1]}-{_WEEKDAYS_EN[wd[-1] - 1]}")
        else:
            days = ("、".join("周" + _WEEKDAYS_ZH[d - 1] for d in wd) if lang == "zh"
                    else ", ".join(_WEEKDAYS_EN[d - 1] for d in wd))
        parts.append(f"{days} {w.start:%H:%M}-{w.end:%H:%M}")
    return ";".join(parts) if lang == "zh" else "; ".join(parts)


def condition(c: Condition, lang: Lang, off_peak: tuple[OffPeakWindow, ...] = ()) -> str:
    """One condition as a short phrase."""
    if isinstance(c, AttrCondition):
        value = ",".join(c.value) if isinstance(c.value, list) else str(c.value)
        known = _ATTR_WORDS.get((c.attr, value))
        if known is not None and c.op in ("eq", "in"):
            return _pick(lang, *known)
        return _pick(lang, "需满足活动的附加条件", "an extra condition of the activity applies")
    if isinstance(c, HoursBetweenCondition):
        zh, en = _HOURS_WORDS.get((c.from_, c.to), ("间隔至少{h}", "at least {h} in between"))
        h = _hours(c.min, lang)
        return _pick(lang, zh.format(h=h), en.format(h=h))
    if isinstance(c, NotLaterCondition):
        return _pick(lang, "在预约时间之前签到", "checked in by the appointment time")
    if isinstance(c, AttrCompareCondition):
        return _pick(lang, "测验成绩达到及格线", "the quiz is passed")
    if isinstance(c, TextLengthCondition):
        if c.min <= 1:
            return _pick(lang, "须写明原因", "a reason is recorded")
        return _pick(lang, f"内容不少于{c.min}字", f"at least {c.min} characters")
    if isinstance(c, OffPeakCondition):
        times = _windows(off_peak, lang)
        return _pick(lang, f"在错峰时段就诊({times})" if times else "在错峰时段就诊",
                     f"at off-peak times ({times})" if times else "at off-peak times")
    if isinstance(c, LocalTimeCondition):
        return _pick(lang, f"在{c.start:%H:%M}至{c.end:%H:%M}之间", f"between {c.start:%H:%M} and {c.end:%H:%M}")
    if isinstance(c, PatientCondition):
        if c.field == "tier":
            values = c.value if isinstance(c.value, list) else [str(c.value)]
            names = [_TIERS.get(v, (v, v)) for v in values]
            return _pick(lang, "限" + "、".join(n[0] for n in names) + "会员",
                         "for " + ", ".join(n[1] for n in names) + " members")
        return _pick(lang, "有年龄要求", "an age requirement applies")
    if getattr(c, "type", None) == "institution":  # (ops.alliance) scoped to some institutions
        if getattr(c, "op", "in") == "not_in":
            return _pick(lang, "部分医疗机构不适用", "not at some institutions")
        return _pick(lang, "限指定医疗机构", "at participating institutions only")
    return _pick(lang, "需满足附加条件", "an extra condition applies")


def limits(rule: Rule, lang: Lang) -> list[str]:
    """The rule's limits as short phrases."""
    lim, out = rule.limits, []
    if lim.lifetime == 1:
        out.append(_pick(lang, "仅限一次", "once only"))
    elif lim.lifetime:
        out.append(_pick(lang, f"累计最多{lim.lifetime}次", f"at most {lim.lifetime} times in all"))
    if lim.once_per:
        zh, en = _ONCE_WORDS.get(",".join(lim.once_per), ("每项", "item"))
        out.append(_pick(lang, f"{zh}限一次", f"once per {en}"))
    for n, zh, en in ((lim.per_day, "每天", "a day"), (lim.per_month, "每月", "a month"),
                      (lim.per_year, "每年", "a year")):
        if n:
            out.append(_pick(lang, f"{zh}最多{n}次", f"at most {n} times {en}"))
    if lim.daily_points:
        out.append(_pick(lang, f"每天最多{lim.daily_points}积分", f"at most {lim.daily_points} points a day"))
    return out


def points_text(rule: Rule, lang: Lang) -> str:
    if rule.multiplier:
        return _pick(lang, f"积分×{rule.multiplier}", f"points ×{rule.multiplier}")
    if rule.points < 0:
        return _pick(lang, f"扣{-rule.points}积分", f"−{-rule.points} points")
    return _pick(lang, f"+{rule.points}积分", f"+{rule.points} points")


def _valid(rule: Rule, on: date) -> bool:
    return rule.status == "active" and (rule.valid_from is None or rule.valid_from <= on) and (
        rule.valid_to is None or on <= rule.valid_to)


def rule(r: Rule, lang: Lang, settings: Settings) -> dict[str, Any]:
    """A rule in plain words: name, points, conditions, limits and one sentence."""
    conds = [condition(c, lang, settings.off_peak) for c in r.conditions]
    lims = limits(r, lang)
    if r.streak:
        conds.insert(0, _pick(lang, f"连续{r.streak.days}天", f"{r.streak.days} days in a row"))
    name = _pick(lang, r.names.zh, r.names.en)
    pts = points_text(r, lang)
    extra = conds + lims
    text = (f"{name}:{pts}" + (f"({';'.join(extra)})" if extra else "") if lang == "zh"
            else f"{name}: {pts}" + (f" ({'; '.join(extra)})" if extra else ""))
    return {"code": r.code, "name": name, "points": r.points, "points_text": pts, "multiplier": r.multiplier,
            "penalty": r.points < 0, "conditions": conds, "limits": lims, "text": text,
            "valid_from": r.valid_from, "valid_to": r.valid_to}


def _cny(value: Decimal) -> str:
    return f"{value.normalize():f}" if value == value.to_integral() else f"{value:.2f}"


def settings_text(s: Settings, lang: Lang) -> dict[str, Any]:
    """The settings a patient needs, each with a plain sentence."""
    pv, sus = s.point_value, s.suspension
    days = sus.duration_hours / 24
    dur = _pick(lang, f"{days:g}天", f"{days:g} days") if sus.duration_hours % 24 == 0 else _hours(
        sus.duration_hours, lang)
    tiers = [{"tier": t, "name": _pick(lang, *_TIERS.get(t, (t, t))), "points": n,
              "text": _pick(lang, f"{_TIERS.get(t, (t, t))[0]}:近12个月累计获得{n}积分及以上",
                            f"{_TIERS.get(t, (t, t))[1]}: {n} points or more earned in the last 12 months")}
             for t, n in sorted(s.tiers.items(), key=lambda kv: kv[1])]
    missed = _pick(lang, "连续" if sus.consecutive else "", "in a row " if sus.consecutive else "")
    return {
        "annual_cap": {"points": s.annual_cap, "text": _pick(
            lang, f"每年最多获得{s.annual_cap}积分", f"You can earn up to {s.annual_cap} points a year")},
        "expiry": {"months": s.expiry_months, "text": _pick(
            lang, f"积分自获得之日起{s.expiry_months}个月内有效,到期前会提醒您",
            f"Points last {s.expiry_months} months from the day you earn them; we remind you before they expire")},
        "point_value": {"points": pv.points, "cny": _cny(pv.cny), "text": _pick(
            lang, f"{pv.points}积分可抵{_cny(pv.cny)}元", f"{pv.points} points are worth {_cny(pv.cny)} yuan")},
        "tiers": tiers,
        "suspension": {"threshold": sus.threshold, "window_days": sus.window_days, "hours": sus.duration_hours,
                       "consecutive": sus.consecutive, "text": _pick(
                           lang, f"{sus.window_days}天内{missed}爽约{sus.threshold}次,将暂停获得积分{dur}",
                           f"Missing {sus.threshold} appointments {missed}within {sus.window_days} days pauses "
                           f"earning for {dur}")},
    }


def describe(programme: Programme, lang: Lang, on: date) -> dict[str, Any]:
    """The programme's terms on the local day `on`: core rules first, then the others
    (earning before penalties), and the settings."""
    s = programme.settings
    active = [r for r in programme.rules if _valid(r, on)]
    core = [r for code in CORE_RULES for r in active if r.code == code]
    rest = sorted((r for r in active if r.code not in CORE_RULES), key=lambda r: r.points < 0)
    return {"name": _pick(lang, programme.name.zh, programme.name.en),
            "core": [rule(r, lang, s) for r in core], "rules": [rule(r, lang, s) for r in rest],
            "settings": settings_text(s, lang)}
