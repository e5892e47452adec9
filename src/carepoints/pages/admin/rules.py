"""The programme admin's rules (role admin): the newest version's rules as a table
(/admin/rules), one rule and the programme settings as forms, never raw YAML
(/admin/rules/{rule_code}, /admin/settings); saving a form makes a draft, the whole
programme document = the newest version + the edit (rules.governance.propose, the
service POST /programme/drafts uses). The drafts (/admin/drafts) with their diff against
the version they are based on and a simulation of the last 30 days of real events
(rules.simulation); a second admin approves (installed as the next version through the
governance path: the author is refused with 409 `programme.approver_is_author`) or
discards (the author withdraws, another admin rejects). Permissions are the API's:
programme:read to look, programme:write to draft and decide."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from carepoints.config import get_settings
from carepoints.kit.errors import AppError, ValidationFailedError
from carepoints.kit.time import utc_now
from carepoints.pages.web import Page, reading, staff_page, writing
from carepoints.rules import governance, service, simulation
from carepoints.rules.errors import DraftNotFoundError
from carepoints.rules.programme import Programme, Rule
from carepoints.security import service as security

router = APIRouter(include_in_schema=False)

_READ = staff_page("programme:read", "programme:write")
_WRITE = staff_page("programme:write")
FORM_ERRORS = (400, 404, 409, 422)  # shown next to the form instead of an error page
SIMULATION_DAYS = 30
LIMITS = ("daily_points", "per_day", "per_month", "per_year", "lifetime")
OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "present")
Status = Literal["draft", "approved", "rejected", "withdrawn"]

# a document's field path → (zh, en), for the forms and the diff; an unknown path is shown as is
FIELDS: dict[str, tuple[str, str]] = {
    "names.zh": ("中文名称", "Name (Chinese)"), "names.en": ("英文名称", "Name (English)"),
    "points": ("积分", "Points"), "multiplier": ("倍数", "Multiplier"), "status": ("状态", "Status"),
    "event": ("行为", "Behaviour"), "conditions": ("条件", "Conditions"),
    "limits.daily_points": ("每日积分上限", "Points per day at most"),
    "limits.per_day": ("每日次数上限", "Times per day at most"),
    "limits.per_month": ("每月次数上限", "Times per month at most"),
    "limits.per_year": ("每年次数上限", "Times per year at most"),
    "limits.lifetime": ("累计次数上限", "Times ever at most"),
    "limits.once_per": ("每项仅一次(属性)", "Once per (attributes)"),
    "streak": ("连续打卡", "Streak"), "streak.days": ("连续天数", "Streak days"),
    "streak.group": ("连续打卡分组", "Streak group"),
    "valid_from": ("开始日期", "Valid from"), "valid_to": ("结束日期", "Valid to"),
    "annual_cap": ("年度积分上限", "Annual cap"), "expiry_months": ("积分有效期(月)", "Points expire after (months)"),
    "expiring_notice_days": ("到期提醒(天)", "Expiry notice (days)"),
    "max_event_age_days": ("行为最长补记(天)", "Oldest event scored (days)"),
    "point_value.points": ("积分价值:积分数", "Point value: points"),
    "point_value.cny": ("积分价值:人民币", "Point value: CNY"),
    "suspension.threshold": ("爽约几次暂停", "No-shows before suspension"),
    "suspension.window_days": ("爽约统计天数", "No-show window (days)"),
    "suspension.duration_hours": ("暂停时长(小时)", "Suspension (hours)"),
    "suspension.consecutive": ("仅连续爽约", "Consecutive no-shows only"),
}
STATUSES: dict[str, tuple[str, str]] = {
    "active": ("启用", "Enabled"), "draft": ("未启用(草拟)", "Not yet enabled"), "retired": ("停用", "Retired")}
DRAFT_STATUSES: dict[str, tuple[str, str]] = {
    "draft": ("待审批", "Waiting for approval"), "approved": ("已批准", "Approved"),
    "rejected": ("已驳回", "Rejected"), "withdrawn": ("已撤回", "Withdrawn")}
CHANGES: dict[str, tuple[str, str]] = {"changed": ("修改", "Changed"), "added": ("新增", "Added"),
                                       "removed": ("删除", "Removed")}
DONE: dict[str, tuple[str, str]] = {
    "created": ("草稿已保存,请另一位管理员审批后生效", "Draft saved: another admin approves it before it takes effect"),
    "approved": ("已批准,新版本将按生效时间启用", "Approved: the new version takes effect at its activation time"),
    "withdrawn": ("草稿已撤回", "Draft withdrawn"), "rejected": ("草稿已驳回", "Draft rejected"),
}
SETTINGS_FIELDS = ("annual_cap", "expiry_months", "expiring_notice_days", "max_event_age_days",
                   "point_value_points", "point_value_cny", "suspension_threshold", "suspension_window_days",
                   "suspension_duration_hours")


def _invalid(fields: dict[str, str]) -> ValidationFailedError:
    return ValidationFailedError(fields=[{"loc": [k], "msg": v} for k, v in fields.items()])


def _words(page: Page, table: dict[str, tuple[str, str]], key: str) -> str:
    words = table.get(key)
    return page.tr(*words) if words else key


def _shown(value: Any) -> str:
    """A document value as text: blank for none, lists joined, objects as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


def _context(page: Page, **values: Any) -> dict[str, Any]:
    flash = DONE.get(page.request.query_params.get("done") or "")
    return {"field_label": lambda path: _words(page, FIELDS, path), "shown": _shown,
            "status_label": lambda s: _words(page, STATUSES, s),
            "draft_status": lambda s: _words(page, DRAFT_STATUSES, s),
            "change_label": lambda s: _words(page, CHANGES, s),
            "flash": page.tr(*flash) if flash else None, "message": page.tr(*flash) if flash else None,
            "kind": "ok", **values}


def _newest() -> tuple[int, datetime, Programme]:
    with reading() as session:
        latest = service.programmes(session).latest
    return latest.version, latest.effective_from, latest.programme


def _default_activation() -> str:
    """The next local midnight, as a datetime-local value."""
    tz = get_settings().tz
    tomorrow = utc_now().astimezone(tz).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0, 0)).strftime("%Y-%m-%dT%H:%M")


# --- the rules table --------------------------------------------------------------------

@router.get("/admin/rules")
def rules_table(page: Annotated[Page, Depends(_READ)]) -> Response:
    """The newest version's rules: behaviour, points or multiplier, limits, streak, state."""
    now = utc_now()
    with reading() as session:
        pset = service.programmes(session)
        latest, current = pset.latest, pset.at(now)
    return page.render("admin/rules/index.html", **_context(
        page, version=latest.version, effective_from=latest.effective_from, scheduled=latest.effective_from > now,
        current_version=current.version, programme=latest.programme,
        rules=[_rule_row(page, r) for r in latest.programme.rules], settings=latest.programme.settings))


def _rule_row(page: Page, rule: Rule) -> dict[str, Any]:
    lim = rule.limits
    limits = [f"{_words(page, FIELDS, 'limits.' + k)} {getattr(lim, k)}" for k in LIMITS if getattr(lim, k)]
    if lim.once_per:
        limits.append(f"{_words(page, FIELDS, 'limits.once_per')} {', '.join(lim.once_per)}")
    return {"code": rule.code, "name": page.tr(rule.names.zh, rule.names.en), "events": ", ".join(rule.event),
            "points": rule.points, "multiplier": rule.multiplier, "limits": limits,
            "streak": rule.streak, "status": rule.status, "conditions": len(rule.conditions)}


# --- one rule as a form -------------------------------------------------------------------

def _find(programme: Programme, rule_code: str) -> Rule:
    for rule in programme.rules:
        if rule.code == rule_code:
            return rule
    raise RuleNotFoundError()


class RuleNotFoundError(AppError):
    code = "programme.rule_not_found"
    status_code = 404
    message = "未找到该积分规则 / Rule not found"


def _rule_form(rule: Rule) -> dict[str, str]:
    """The form's values of a rule as it stands."""
    doc = rule.model_dump(mode="json", by_alias=True)
    form = {"name_zh": rule.names.zh, "name_en": rule.names.en, "points": str(rule.points),
            "multiplier": _shown(rule.multiplier), "status": rule.status,
            "once_per": _shown(doc["limits"]["once_per"]),
            "streak_days": _shown(rule.streak.days if rule.streak else None),
            "streak_group": rule.streak.group if rule.streak else "",
            "valid_from": _shown(doc["valid_from"]), "valid_to": _shown(doc["valid_to"])}
    for k in LIMITS:
        form[k] = _shown(doc["limits"][k])
    for i, cond in enumerate(doc["conditions"]):
        for key, value in cond.items():
            if key != "type":
                form[f"cond-{i}-{key}"] = _shown(value)
    return form


def _conditions(rule: Rule) -> list[dict[str, Any]]:
    """Each condition as its type and fields (key, current value) for the form."""
    out = []
    for i, cond in enumerate(rule.model_dump(mode="json", by_alias=True)["conditions"]):
        out.append({"index": i, "type": cond["type"], "fields": [k for k in cond if k != "type"]})
    return out


def _render_rule(page: Page, version: int, rule: Rule, status: int = 200, **values: Any) -> Response:
    values.setdefault("form", {**_rule_form(rule), "activate_at": _default_activation()})
    values.setdefault("errors", {})
    return page.render("admin/rules/rule.html", status=status, **_context(
        page, version=version, rule=rule, name=page.tr(rule.names.zh, rule.names.en),
        conditions=_conditions(rule), ops=OPS, status_options=[(s, _words(page, STATUSES, s)) for s in STATUSES],
        **values))


@router.get("/admin/rules/{rule_code}")
def rule_form(page: Annotated[Page, Depends(_READ)], rule_code: str) -> Response:
    """One rule of the newest version as a form (points, limits, multiplier, streak, state,
    dates and each condition's fields); saving it makes a draft."""
    version, _eff, programme = _newest()
    return _render_rule(page, version, _find(programme, rule_code))


def _int(raw: str, name: str, errors: dict[str, str], *, required: bool = False) -> int | None:
    text = raw.strip().replace(",", "")
    if not text:
        if required:
            errors[name] = "请填写 / Required"
        return None
    try:
        return int(text)
    except ValueError:
        errors[name] = "请填写整数 / Enter a whole number"
        return None


def _date(raw: str, name: str, errors: dict[str, str]) -> str | None:
    text = raw.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        errors[name] = "日期格式为 2025-01-31 / A date like 2025-01-31"
        return None


def _coerce(raw: str, original: Any) -> Any:
    """A condition field's text back to a value of the original's kind (auto for a new one)."""
    text = raw.strip()
    if text == "":
        return None
    if isinstance(original, bool):
        return text.lower() in ("true", "1", "yes", "是")
    if isinstance(original, list):
        return [p.strip() for p in text.split(",") if p.strip()]
    if isinstance(original, int):
        return int(text)
    if isinstance(original, float):
        return float(text)
    if isinstance(original, str):
        return text
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "," in text:
        return [p.strip() for p in text.split(",") if p.strip()]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _activation(raw: str, errors: dict[str, str]) -> datetime | None:
    try:
        local = datetime.fromisoformat(raw.strip())
    except ValueError:
        errors["activate_at"] = "请选择生效时间 / Choose when it takes effect"
        return None
    return local.replace(tzinfo=get_settings().tz) if local.tzinfo is None else local


def _summary(form: dict[str, str], errors: dict[str, str]) -> dict[str, str]:
    zh, en = form.get("summary_zh", "").strip(), form.get("summary_en", "").strip()
    if not zh:
        errors["summary_zh"] = "请写明修改内容 / Say what changes"
    if not en:
        errors["summary_en"] = "请写明修改内容(英文) / Say what changes, in English"
    if len(zh) > 500 or len(en) > 500:
        errors["summary_zh"] = "最多500字 / At most 500 characters"
    return {"zh": zh, "en": en}


def _edited_rule(rule: Rule, form: dict[str, str], errors: dict[str, str]) -> tuple[dict[str, Any], int]:
    """The rule document from the form (the rule's other fields kept), and the index a new
    condition would have."""
    doc = rule.model_dump(mode="json", by_alias=True)
    doc["names"] = {"zh": form.get("name_zh", "").strip(), "en": form.get("name_en", "").strip()}
    doc["points"] = _int(form.get("points", ""), "points", errors) or 0
    doc["multiplier"] = _int(form.get("multiplier", ""), "multiplier", errors)
    status = form.get("status", rule.status)
    doc["status"] = status if status in STATUSES else rule.status
    limits = dict(doc["limits"])
    for k in LIMITS:
        limits[k] = _int(form.get(k, ""), k, errors)
    once = [p.strip() for p in form.get("once_per", "").split(",") if p.strip()]
    limits["once_per"] = once or None
    doc["limits"] = limits
    days = _int(form.get("streak_days", ""), "streak_days", errors)
    group = form.get("streak_group", "").strip()
    if days is None and not group:
        doc["streak"] = None
    elif days is None or not group:
        errors["streak_days" if days is None else "streak_group"] = \
            "连续打卡需填写天数和分组 / A streak needs days and a group"
    else:
        doc["streak"] = {"days": days, "group": group}
    doc["valid_from"] = _date(form.get("valid_from", ""), "valid_from", errors)
    doc["valid_to"] = _date(form.get("valid_to", ""), "valid_to", errors)
    conditions = []
    for i, cond in enumerate(doc["conditions"]):
        if form.get(f"cond-{i}-remove"):
            continue
        edited = {"type": cond["type"]}
        for key, value in cond.items():
            if key == "type":
                continue
            name = f"cond-{i}-{key}"
            try:
                edited[key] = _coerce(form.get(name, _shown(value)), value)
            except ValueError:
                errors[name] = "格式不正确 / Not a valid value"
        conditions.append(edited)
    new_index = len(conditions)
    new_attr = form.get("new_attr", "").strip()
    if new_attr:
        op = form.get("new_op", "eq")
        conditions.append({"type": "attr", "attr": new_attr, "op": op if op in OPS else "eq",
                           "value": _coerce(form.get("new_value", ""), None)})
    doc["conditions"] = conditions
    return doc, new_index


def _field_of(loc: list[Any], new_index: int) -> str:
    """A validation error's place in the document → the form field that shows it."""
    if loc[:1] == ["names"] and len(loc) > 1:
        return f"name_{loc[1]}"
    if loc[:1] == ["limits"] and len(loc) > 1:
        return str(loc[1])
    if loc[:1] == ["streak"] and len(loc) > 1:
        return f"streak_{loc[1]}"
    if loc[:1] == ["conditions"] and len(loc) > 1:
        j, key = loc[1], (str(loc[3]) if len(loc) > 3 else "attr")
        return f"new_{key if key in ('attr', 'op', 'value') else 'value'}" if j == new_index else f"cond-{j}-{key}"
    if loc and str(loc[0]) in ("points", "multiplier", "status", "valid_from", "valid_to"):
        return str(loc[0])
    return "_form"


def _mapped(err: AppError, prefix: list[Any], new_index: int = -1) -> dict[str, str]:
    """A draft's validation errors by form field ('_form' for what is no one field's)."""
    out: dict[str, str] = {}
    for f in err.fields or []:
        loc = list(f.get("loc") or [])
        msg = str(f.get("msg", ""))
        if loc[:len(prefix)] == prefix:
            name = _field_of(loc[len(prefix):], new_index) if prefix[-1] != "settings" else \
                "_".join(str(p) for p in loc[len(prefix):])
        elif loc and loc[0] != "document":
            name = str(loc[-1])  # the page's own checks
        else:
            name = "_form"
        if " / " not in msg:
            msg = f"此项无效 / Invalid: {msg}"
        out[name] = out[name] + "; " + msg if name in out and out[name] != msg else msg
    return out


@router.post("/admin/rules/{rule_code}")
async def save_rule(page: Annotated[Page, Depends(_WRITE)], rule_code: str, request: Request) -> Response:
    """Make a draft of the newest version with this rule as the form says: validated like a
    programme file, the errors shown next to their fields (422)."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str) and k != "csrf_token"}
    version, _eff, programme = _newest()
    rule = _find(programme, rule_code)
    errors: dict[str, str] = {}
    edited, new_index = _edited_rule(rule, form, errors)
    summary = _summary(form, errors)
    activate_at = _activation(form.get("activate_at", ""), errors)
    index = next(i for i, r in enumerate(programme.rules) if r.code == rule_code)
    document = programme.model_dump(mode="json", by_alias=True, exclude={"effective_from"})
    document["rules"][index] = edited
    return _propose(page, document, summary, activate_at, errors,
                    lambda err: _mapped(err, ["document", "rules", index], new_index),
                    lambda status, fields, err: _render_rule(page, version, rule, status, form=form, errors=fields,
                                                             error=err.to_dict()))


# --- the programme settings as a form -----------------------------------------------------

def _settings_form(programme: Programme) -> dict[str, str]:
    s = programme.settings
    return {"annual_cap": str(s.annual_cap), "expiry_months": str(s.expiry_months),
            "expiring_notice_days": str(s.expiring_notice_days), "max_event_age_days": str(s.max_event_age_days),
            "point_value_points": str(s.point_value.points), "point_value_cny": str(s.point_value.cny),
            "suspension_threshold": str(s.suspension.threshold),
            "suspension_window_days": str(s.suspension.window_days),
            "suspension_duration_hours": str(s.suspension.duration_hours),
            "suspension_consecutive": "on" if s.suspension.consecutive else "", "activate_at": _default_activation()}


def _render_settings(page: Page, version: int, programme: Programme, status: int = 200, **values: Any) -> Response:
    values.setdefault("form", _settings_form(programme))
    values.setdefault("errors", {})
    return page.render("admin/rules/settings.html", status=status, **_context(
        page, version=version, fields=SETTINGS_FIELDS, **values))


@router.get("/admin/settings")
def settings_form(page: Annotated[Page, Depends(_READ)]) -> Response:
    """The programme settings of the newest version as a form: annual cap, expiry, point value,
    the oldest event scored, no-show suspension."""
    version, _eff, programme = _newest()
    return _render_settings(page, version, programme)


@router.post("/admin/settings")
async def save_settings(page: Annotated[Page, Depends(_WRITE)], request: Request) -> Response:
    """Make a draft of the newest version with these settings (422 with the fields otherwise)."""
    assert page.principal is not None  # noqa: S101
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str) and k != "csrf_token"}
    version, _eff, programme = _newest()
    errors: dict[str, str] = {}
    values = {k: _int(form.get(k, ""), k, errors, required=True) for k in SETTINGS_FIELDS if k != "point_value_cny"}
    try:
        cny = Decimal(form.get("point_value_cny", "").strip())
    except InvalidOperation:
        errors["point_value_cny"] = "请填写金额,如 10.00 / An amount like 10.00"
        cny = Decimal(0)
    summary = _summary(form, errors)
    activate_at = _activation(form.get("activate_at", ""), errors)
    document = programme.model_dump(mode="json", by_alias=True, exclude={"effective_from"})
    settings = copy.deepcopy(document["settings"])
    settings.update({k: values[k] for k in ("annual_cap", "expiry_months", "expiring_notice_days",
                                             "max_event_age_days")})
    settings["point_value"] = {"points": values["point_value_points"], "cny": str(cny)}
    settings["suspension"] = {**settings["suspension"], "threshold": values["suspension_threshold"],
                              "window_days": values["suspension_window_days"],
                              "duration_hours": values["suspension_duration_hours"],
                              "consecutive": bool(form.get("suspension_consecutive"))}
    document["settings"] = settings
    return _propose(page, document, summary, activate_at, errors,
                    lambda err: _mapped(err, ["document", "settings"]),
                    lambda status, fields, err: _render_settings(page, version, programme, status, form=form,
                                                                 errors=fields, error=err.to_dict()))


def _propose(page: Page, document: dict[str, Any], summary: dict[str, str], activate_at: datetime | None,
             errors: dict[str, str], mapped: Callable[[AppError], dict[str, str]],
             rerender: Callable[[int, dict[str, str], AppError], Response]) -> Response:
    """Save the edited programme as a draft (governance.propose, as the API's draft endpoint) and
    go to it; a refusal re-renders the form with the messages beside their fields."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    try:
        if errors or activate_at is None:
            raise _invalid(errors)
        with writing() as session:
            doc = governance.propose(session, page.principal.actor(), summary=summary, activate_at=activate_at,
                                     now=utc_now(), document=document)
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        fields = errors or mapped(err)
        if err.code.startswith("programme.activate"):
            fields["activate_at"] = err.message
        return rerender(err.status_code, fields, err)
    return page.redirect(f"/admin/drafts/{doc['id']}?done=created")


# --- drafts -------------------------------------------------------------------------------

def _author(session: Any, ref: dict[str, Any] | None) -> str:
    if not ref:
        return ""
    if ref.get("kind") != "staff":
        return str(ref.get("kind"))
    found = security.active_staff(session, ref["id"])
    return found[1] if found else "?"


@router.get("/admin/drafts")
def drafts_list(page: Annotated[Page, Depends(_READ)], status: Status = "draft") -> Response:
    """The programme drafts of one state (waiting for approval first), newest first."""
    with reading() as session:
        items = governance.drafts(session, status)
        authors = {d["id"]: _author(session, d["created_by"]) for d in items}
    return page.render("admin/rules/drafts.html", **_context(page, drafts=items, authors=authors, filter_status=status,
                                                             statuses=list(DRAFT_STATUSES)))


def _rule_names(page: Page, *programmes: Programme) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in programmes:
        for r in p.rules:
            out.setdefault(r.code, page.tr(r.names.zh, r.names.en))
    return out


def _draft_page(page: Page, draft_id: str, status: int = 200, **values: Any) -> Response:
    assert page.principal is not None  # noqa: S101
    now = utc_now()
    with reading() as session:
        doc = governance.draft(session, draft_id)
        pset = service.programmes(session)
        base = next((v.programme for v in pset.versions if v.version == doc["base_version"]), pset.at(now).programme)
        proposed = Programme.model_validate(doc["document"])
        sim = simulation.simulate(session, proposed, now, SIMULATION_DAYS, active=base) \
            if doc["status"] == "draft" else None
        author = _author(session, doc["created_by"])
        decider = _author(session, doc["decided_by"])
    mine = doc["created_by"] == {"kind": page.principal.kind, "id": page.principal.id}
    return page.render("admin/rules/draft.html", status=status, **_context(
        page, draft=doc, diff=doc["diff"], sim=sim, author=author, decider=decider, mine=mine,
        names=_rule_names(page, proposed, base), **values))


@router.get("/admin/drafts/{draft_id}")
def draft_detail(page: Annotated[Page, Depends(_READ)], draft_id: str) -> Response:
    """One draft: what it changes, field by field against its base version, and what it would
    have awarded over the last 30 days of real events next to the base version."""
    return _draft_page(page, draft_id)


@router.post("/admin/drafts/{draft_id}/approve")
def approve_draft(page: Annotated[Page, Depends(_WRITE)], draft_id: str,
                  note: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Approve (an admin other than the author): installed as the next version from its
    activation time. Refusals (409: the author, already decided, stale) show on the draft."""
    assert page.principal is not None  # noqa: S101
    try:
        with writing() as session:
            governance.approve(session, draft_id, page.principal.actor(), utc_now(), note.strip() or None)
    except AppError as err:
        if err.status_code not in FORM_ERRORS or isinstance(err, DraftNotFoundError):
            raise
        return _draft_page(page, draft_id, err.status_code, error=err.to_dict())
    return page.redirect(f"/admin/drafts/{draft_id}?done=approved")


@router.post("/admin/drafts/{draft_id}/discard")
def discard_draft(page: Annotated[Page, Depends(_WRITE)], draft_id: str,
                  note: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Discard a waiting draft: the author withdraws it, another admin rejects it (with the note)."""
    assert page.principal is not None  # noqa: S101
    actor = page.principal.actor()
    try:
        with writing() as session:
            doc = governance.draft(session, draft_id)
            if doc["created_by"] == {"kind": actor.kind, "id": actor.id}:
                governance.withdraw(session, draft_id, actor, utc_now())
                done = "withdrawn"
            else:
                governance.reject(session, draft_id, actor, utc_now(),
                                  note.strip() or "管理员放弃此草稿 / Discarded by an admin")
                done = "rejected"
    except AppError as err:
        if err.status_code not in FORM_ERRORS or isinstance(err, DraftNotFoundError):
            raise
        return _draft_page(page, draft_id, err.status_code, error=err.to_dict())
    return page.redirect(f"/admin/drafts/{draft_id}?done={done}")

