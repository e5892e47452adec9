"""The programme admin's management pages (role admin), on the services the API uses and with the
API's permissions: the rewards catalogue and its stock (/admin/rewards, rewards:write), tiers
(/admin/tiers) and the budget (/admin/budget) whose changes are programme drafts approved by a
second admin (programme:write; the budget's use is reports:read), weekly session templates and the
generate-sessions job (/admin/templates, schedule:write), staff users and roles (/admin/staff) and
API keys (/admin/keys) (staff:write).

Every form re-renders a service's 4xx refusal in place with its message and code."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from carepoints.audit.service import record
from carepoints.config import get_settings
from carepoints.kit.errors import AppError, ConflictError, ValidationFailedError
from carepoints.kit.ids import is_id
from carepoints.kit.time import utc_now
from carepoints.pages.web import Page, form_errors, invalid, reading, staff_page, writing
from carepoints.rewards import budget
from carepoints.rewards import service as rewards
from carepoints.rewards.errors import RewardNotFoundError
from carepoints.rewards.schemas import RewardCreate, RewardUpdate
from carepoints.rules import governance
from carepoints.rules.service import current_settings
from carepoints.scheduling import service as scheduling
from carepoints.scheduling import tasks as scheduling_tasks
from carepoints.scheduling.schemas import TemplateCreate
from carepoints.security import keys as api_keys
from carepoints.security import service as security
from carepoints.security.permissions import API_KEY_ROLES, STAFF_ROLES
from carepoints.tiers.schemas import TIERS

router = APIRouter(include_in_schema=False)

FORM_ERRORS = (400, 404, 409, 422)  # shown next to the form instead of an error page
M = TypeVar("M", bound=BaseModel)

DONE: dict[str, tuple[str, str]] = {
    "reward_created": ("奖品已添加", "Reward added"),
    "reward_saved": ("奖品已保存", "Reward saved"),
    "stock_added": ("库存已增加", "Stock added"),
    "enabled": ("已上架", "Enabled"),
    "disabled": ("已下架", "Disabled"),
    "drafted": ("已生成草稿,需另一位管理员在“待审批变更”中批准后生效",
                "Draft created: a second administrator approves it under Drafts to approve"),
    "template_created": ("排班模板已添加", "Template added"),
    "template_stopped": ("排班模板已停用,不再生成新的出诊", "Template stopped: no more sessions from it"),
    "staff_created": ("员工账号已创建,请当面告知临时密码",
                      "Staff user created: hand over the temporary password in person"),
    "role_changed": ("角色已修改", "Role changed"),
    "staff_disabled": ("账号已停用", "Account disabled"),
    "key_revoked": ("密钥已吊销", "Key revoked"),
}
KINDS = ("coupon", "pharmacy_voucher", "privilege", "lecture_seat")  # a fee offset needs the cashier's terms
KIND_WORDS = {"coupon": ("优惠券", "Coupon"), "pharmacy_voucher": ("药房代金券", "Pharmacy voucher"),
              "privilege": ("专属权益", "Privilege"), "lecture_seat": ("讲座席位", "Lecture seat"),
              "fee_offset": ("抵扣挂号费", "Fee offset")}
PERIODS = ("ever", "day", "week", "month", "year")
PERIOD_WORDS = {"ever": ("每人总计", "per person"), "day": ("每天", "a day"), "week": ("每周", "a week"),
                "month": ("每月", "a month"), "year": ("每年", "a year")}
TIER_WORDS = {"standard": ("普通", "Standard"), "silver": ("银卡", "Silver"), "gold": ("金卡", "Gold")}
ROLE_WORDS = {"frontdesk": ("前台 / 服务窗口", "Front desk"), "nurse": ("护士 / 随访", "Nurse"),
              "moderator": ("社区审核", "Moderator"), "clinician": ("医生", "Clinician"),
              "admin": ("项目管理员", "Administrator"), "auditor": ("审计", "Auditor"),
              "integration": ("系统对接", "Integration")}
WEEKDAYS = {1: ("周一", "Monday"), 2: ("周二", "Tuesday"), 3: ("周三", "Wednesday"), 4: ("周四", "Thursday"),
            5: ("周五", "Friday"), 6: ("周六", "Saturday"), 7: ("周日", "Sunday")}
MIN_PASSWORD = 10
# a pydantic field's name (the last part of its loc) → the form field that holds it
FORM_NAMES = {"zh": "name_zh", "en": "name_en", "count": "limit_count", "period": "limit_period"}


class SelfChangeError(ConflictError):
    code = "pages.admin_self_change"
    message = "不能修改或停用自己的账号 / You cannot change or disable your own account"


# --- shared ----------------------------------------------------------------------------------

def _build(model: type[M], data: dict[str, Any]) -> M:
    """A request body from form values; pydantic's refusals as a 422 with the form's field names."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        fields = []
        for e in err.errors():
            loc = [str(p) for p in e.get("loc", ())]
            name = FORM_NAMES.get(loc[-1], loc[-1]) if loc else ""
            fields.append({"loc": [name], "msg": f"{_zh(e)} / {e.get('msg', 'invalid')}"})
        raise ValidationFailedError(fields=fields) from None


def _zh(e: Any) -> str:
    """A pydantic refusal in Chinese words (the English is pydantic's own)."""
    ctx = e.get("ctx") or {}
    kind = str(e.get("type", ""))
    words = {"greater_than_equal": f"不能小于 {ctx.get('ge')}", "greater_than": f"须大于 {ctx.get('gt')}",
             "less_than_equal": f"不能大于 {ctx.get('le')}", "less_than": f"须小于 {ctx.get('lt')}",
             "string_pattern_mismatch": "格式不正确", "string_too_short": "请填写", "missing": "请填写",
             "string_too_long": "太长了", "date_from_datetime_parsing": "日期格式不正确",
             "date_parsing": "日期格式不正确", "decimal_max_places": "小数位数太多"}
    return words.get(kind, "填写有误")


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _int(raw: str | None, field: str) -> int | None:
    value = _blank(raw)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise invalid(field, "请填写整数 / Enter a whole number") from None


def _decimal(raw: str | None, field: str) -> Decimal | None:
    value = _blank(raw)
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise invalid(field, "请填写数字 / Enter a number") from None


def _words(page: Page, table: dict[Any, tuple[str, str]]) -> dict[Any, str]:
    return {k: page.tr(*v) for k, v in table.items()}


def _context(page: Page, **values: Any) -> dict[str, Any]:
    code = page.request.query_params.get("done")
    words = DONE.get(code or "")
    flash = page.tr(*words) if words else None
    base = {"flash": flash, "message": flash, "kind": "ok", "form": {}, "errors": {}, "error": None,
            "kinds": _words(page, KIND_WORDS), "kind_options": [(k, page.tr(*KIND_WORDS[k])) for k in KINDS],
            "periods": _words(page, PERIOD_WORDS),
            "tier_words": _words(page, TIER_WORDS), "role_words": _words(page, ROLE_WORDS),
            "weekdays": _words(page, WEEKDAYS)}
    return {**base, **values}


def _refusal(page: Page, err: AppError) -> dict[str, Any]:
    if err.status_code not in FORM_ERRORS:
        raise err
    return {"error": err.to_dict(), "errors": form_errors(err, page.lang)}


def _actor_page(page: Page) -> Any:
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    return page.principal


# --- rewards ---------------------------------------------------------------------------------

RewardsWrite = Annotated[Page, Depends(staff_page("rewards:write"))]


def _rewards_page(page: Page, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        items = rewards.catalogue(session, None, utc_now(), include_inactive=True)["items"]
    return page.render("admin/manage/rewards.html", status=status, **_context(page, items=items, **values))


@router.get("/admin/rewards")
def rewards_list(page: RewardsWrite) -> Response:
    """The catalogue with its stock, the form to add a reward, stock and enable / disable per item."""
    return _rewards_page(page)


def _limit(count: str | None, period: str | None) -> dict[str, Any] | None:
    n = _int(count, "limit_count")
    return None if n is None else {"count": n, "period": period or "ever"}


@router.post("/admin/rewards")
def reward_create(page: RewardsWrite, code: Annotated[str, Form(max_length=64)],
                  kind: Annotated[str, Form(max_length=32)], name_zh: Annotated[str, Form(max_length=200)],
                  name_en: Annotated[str, Form(max_length=200)], points: Annotated[str, Form(max_length=12)],
                  stock: Annotated[str, Form(max_length=12)] = "", cost_cny: Annotated[str, Form(max_length=12)] = "",
                  limit_count: Annotated[str, Form(max_length=6)] = "",
                  limit_period: Annotated[str, Form(max_length=8)] = "ever",
                  valid_from: Annotated[str, Form(max_length=10)] = "",
                  valid_to: Annotated[str, Form(max_length=10)] = "",
                  code_valid_days: Annotated[str, Form(max_length=5)] = "") -> Response:
    """Add a catalogue item (rewards.service.create_reward, as POST /rewards)."""
    principal = _actor_page(page)
    form = {"code": code, "kind": kind, "name_zh": name_zh, "name_en": name_en, "points": points, "stock": stock,
            "cost_cny": cost_cny, "limit_count": limit_count, "limit_period": limit_period,
            "valid_from": valid_from, "valid_to": valid_to, "code_valid_days": code_valid_days}
    try:
        if kind not in KINDS:
            raise invalid("kind", "请选择奖品类型 / Choose a kind")
        data: dict[str, Any] = {"code": code.strip(), "kind": kind,
                                "names": {"zh": name_zh.strip(), "en": name_en.strip()},
                                "points": _int(points, "points"), "stock": _int(stock, "stock"),
                                "limit": _limit(limit_count, limit_period),
                                "valid_from": _blank(valid_from), "valid_to": _blank(valid_to)}
        if _blank(cost_cny) is not None:
            data["cost_cny"] = _decimal(cost_cny, "cost_cny")
        if _blank(code_valid_days) is not None:
            data["code_valid_days"] = _int(code_valid_days, "code_valid_days")
        body = _build(RewardCreate, data)
        with writing() as session:
            rewards.create_reward(session, body, principal.actor(), utc_now())
    except AppError as err:
        return _rewards_page(page, err.status_code, form=form, **_refusal(page, err))
    return page.redirect("/admin/rewards?done=reward_created")


def _reward_doc(code: str) -> dict[str, Any]:
    with reading() as session:
        for item in rewards.catalogue(session, None, utc_now(), include_inactive=True)["items"]:
            if item["code"] == code:
                return dict(item)
    raise RewardNotFoundError()


def _edit_page(page: Page, code: str, status: int = 200, **values: Any) -> Response:
    reward = _reward_doc(code)
    if "form" not in values:
        limit = reward["limit"] or {}
        values["form"] = {"name_zh": reward["names"]["zh"], "name_en": reward["names"]["en"],
                          "points": reward["base_points"], "cost_cny": reward["cost_cny"],
                          "limit_count": limit.get("count") or "", "limit_period": limit.get("period") or "ever",
                          "valid_from": reward["valid_from"] or "", "valid_to": reward["valid_to"] or "",
                          "code_valid_days": reward["code_valid_days"]}
    return page.render("admin/manage/reward.html", status=status, **_context(page, reward=reward, **values))


@router.get("/admin/rewards/{code}")
def reward_edit(page: RewardsWrite, code: str) -> Response:
    """One catalogue item's form: names, price, cost, limit, validity."""
    return _edit_page(page, code)


@router.post("/admin/rewards/{code}")
def reward_save(page: RewardsWrite, code: str, name_zh: Annotated[str, Form(max_length=200)],
                name_en: Annotated[str, Form(max_length=200)], points: Annotated[str, Form(max_length=12)],
                cost_cny: Annotated[str, Form(max_length=12)] = "0",
                limit_count: Annotated[str, Form(max_length=6)] = "",
                limit_period: Annotated[str, Form(max_length=8)] = "ever",
                valid_from: Annotated[str, Form(max_length=10)] = "",
                valid_to: Annotated[str, Form(max_length=10)] = "",
                code_valid_days: Annotated[str, Form(max_length=5)] = "30") -> Response:
    """Save an item (rewards.service.update_reward, as PATCH /rewards/{code}); the stock is added apart."""
    principal = _actor_page(page)
    form = {"name_zh": name_zh, "name_en": name_en, "points": points, "cost_cny": cost_cny,
            "limit_count": limit_count, "limit_period": limit_period, "valid_from": valid_from,
            "valid_to": valid_to, "code_valid_days": code_valid_days}
    try:
        limit = _limit(limit_count, limit_period)
        data: dict[str, Any] = {"names": {"zh": name_zh.strip(), "en": name_en.strip()},
                                "points": _int(points, "points"), "cost_cny": _decimal(cost_cny, "cost_cny"),
                                "code_valid_days": _int(code_valid_days, "code_valid_days"),
                                "valid_from": _blank(valid_from), "valid_to": _blank(valid_to)}
        data = {k: v for k, v in data.items() if v is not None or k in ("valid_from", "valid_to")}
        data.update({"limit": limit} if limit else {"no_limit": True})
        body = _build(RewardUpdate, data)
        with writing() as session:
            rewards.update_reward(session, code, body, principal.actor(), utc_now())
    except AppError as err:
        if err.status_code == 404:
            raise
        return _edit_page(page, code, err.status_code, form=form, **_refusal(page, err))
    return page.redirect("/admin/rewards?done=reward_saved")


@router.post("/admin/rewards/{code}/stock")
def reward_stock(page: RewardsWrite, code: str, add: Annotated[str, Form(max_length=9)]) -> Response:
    """Add to a counted stock (rewards.service.add_stock: one guarded UPDATE)."""
    principal = _actor_page(page)
    try:
        n = _int(add, "add")
        if n is None or not 1 <= n <= 1_000_000:
            raise invalid("add", "请填写 1 到 1000000 之间的数量 / Enter 1 to 1,000,000")
        with writing() as session:
            rewards.add_stock(session, code, n, principal.actor(), utc_now())
    except AppError as err:
        if err.status_code == 404:
            raise
        return _rewards_page(page, err.status_code, stock_code=code, **_refusal(page, err))
    return page.redirect("/admin/rewards?done=stock_added")


@router.post("/admin/rewards/{code}/active")
def reward_active(page: RewardsWrite, code: str, active: Annotated[str, Form(pattern="^[01]$")]) -> Response:
    """Enable (上架) or disable (下架) an item."""
    principal = _actor_page(page)
    with writing() as session:
        rewards.update_reward(session, code, RewardUpdate(active=active == "1"), principal.actor(), utc_now())
    return page.redirect("/admin/rewards?done=" + ("enabled" if active == "1" else "disabled"))


# --- programme drafts: tiers and budget --------------------------------------------------------

ProgrammeWrite = Annotated[Page, Depends(staff_page("programme:write"))]


def _activation_default() -> str:
    at = (utc_now() + timedelta(hours=1)).astimezone(get_settings().tz)
    return at.strftime("%Y-%m-%dT%H:%M")


def _activate_at(raw: str) -> datetime:
    try:
        at = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise invalid("activate_at", "请填写生效时间 / Enter when it takes effect") from None
    return at.replace(tzinfo=get_settings().tz) if at.tzinfo is None else at


def _summary(zh: str, en: str) -> dict[str, str]:
    if not zh.strip() or not en.strip():
        field = "summary_zh" if not zh.strip() else "summary_en"
        raise invalid(field, "请填写中英文变更说明 / Describe the change in Chinese and English")
    return {"zh": zh.strip()[:500], "en": en.strip()[:500]}


def _propose(page: Page, changes: dict[str, Any], summary: dict[str, str], activate_at: datetime) -> None:
    principal = _actor_page(page)
    with writing() as session:
        governance.propose(session, principal.actor(), summary=summary, activate_at=activate_at, now=utc_now(),
                           changes={"settings": changes})


def _tiers_page(page: Page, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        settings = current_settings(session, utc_now()).programme.settings
    benefits = {t.value: settings.tier_benefits.get(t.value) for t in TIERS}
    if "form" not in values:
        form: dict[str, Any] = {f"threshold_{t}": n for t, n in settings.tiers.items()}
        for t, b in benefits.items():
            form[f"fee_share_{t}"] = str(b.fee_share) if b else "1"
            form[f"advisor_{t}"] = bool(b and b.advisor)
        values["form"] = form
    values.setdefault("activate_default", _activation_default())
    return page.render("admin/manage/tiers.html", status=status, **_context(
        page, tiers=[t.value for t in TIERS], thresholds=settings.tiers, benefits=benefits, **values))


@router.get("/admin/tiers")
def tiers_view(page: ProgrammeWrite) -> Response:
    """The tiers: from how many earned points (trailing 12 months) each applies, and its benefits."""
    return _tiers_page(page)


@router.post("/admin/tiers")
async def tiers_draft(page: ProgrammeWrite) -> Response:
    """Draft new thresholds and benefits (rules.governance.propose, as POST /programme/drafts)."""
    raw = {k: v for k, v in (await page.request.form()).items() if isinstance(v, str)}
    form: dict[str, Any] = dict(raw)
    for t in TIERS:
        form[f"advisor_{t.value}"] = raw.get(f"advisor_{t.value}") == "1"
    try:
        thresholds = {t.value: _int(raw.get(f"threshold_{t.value}"), f"threshold_{t.value}") for t in TIERS[1:]}
        for name, n in thresholds.items():
            if n is None:
                raise invalid(f"threshold_{name}", "请填写积分门槛 / Enter the threshold")
        benefits = {}
        for t in TIERS:
            share = _decimal(raw.get(f"fee_share_{t.value}") or "1", f"fee_share_{t.value}")
            benefits[t.value] = {"fee_share": str(share), "advisor": form[f"advisor_{t.value}"]}
        summary = _summary(raw.get("summary_zh", ""), raw.get("summary_en", ""))
        activate = _activate_at(raw.get("activate_at", ""))
        _propose(page, {"tiers": thresholds, "tier_benefits": benefits}, summary, activate)
    except AppError as err:
        return _tiers_page(page, err.status_code, form=form, activate_default=raw.get("activate_at", ""),
                           **_refusal(page, err))
    return page.redirect("/admin/tiers?done=drafted")


def _gauge(page: Page, status: dict[str, Any]) -> str:
    share = float(status["used_share"] or 0) * 100
    option = {"series": [{
        "type": "gauge", "min": 0, "max": 100, "progress": {"show": True, "width": 14},
        "axisLine": {"lineStyle": {"width": 14}}, "axisLabel": {"distance": 18, "color": "#374151"},
        "detail": {"valueAnimation": False, "formatter": "{value}%", "fontSize": 24, "color": "#111827"},
        "title": {"offsetCenter": [0, "70%"], "color": "#374151"},
        "data": [{"value": round(share, 1), "name": page.tr("已使用", "Used")}]}]}
    return json.dumps(option, ensure_ascii=False)


def _budget_page(page: Page, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        now = utc_now()
        state = budget.status(session, now)
        plan = current_settings(session, now).programme.settings.budget
    if "form" not in values:
        values["form"] = {"cny": "" if plan.cny is None else str(plan.cny),
                          "alerts": ", ".join(str(a) for a in plan.alerts), "hard_stop": plan.hard_stop}
    values.setdefault("activate_default", _activation_default())
    return page.render("admin/manage/budget.html", status=status, **_context(
        page, state=state, plan=plan, gauge=_gauge(page, state), **values))


@router.get("/admin/budget")
def budget_view(page: Annotated[Page, Depends(staff_page("reports:read"))]) -> Response:
    """This year's budget and its use (rewards.budget.status, as GET /budget), the form to change it."""
    return _budget_page(page)


def _alerts(raw: str) -> list[int]:
    out = []
    for part in raw.replace(",", ",").replace(",", " ").split():
        value = _int(part, "alerts")
        if value is None or not 1 <= value <= 100:
            raise invalid("alerts", "提醒比例为 1 到 100 的整数 / Alerts are whole percents from 1 to 100")
        out.append(value)
    return sorted(set(out))


@router.post("/admin/budget")
def budget_draft(page: ProgrammeWrite, cny: Annotated[str, Form(max_length=16)] = "",
                 alerts: Annotated[str, Form(max_length=100)] = "", hard_stop: Annotated[str, Form(max_length=1)] = "",
                 summary_zh: Annotated[str, Form(max_length=500)] = "",
                 summary_en: Annotated[str, Form(max_length=500)] = "",
                 activate_at: Annotated[str, Form(max_length=32)] = "") -> Response:
    """Draft a new annual budget, its alerts and the hard stop (a programme draft, as POST /programme/drafts)."""
    form = {"cny": cny, "alerts": alerts, "hard_stop": hard_stop == "1", "summary_zh": summary_zh,
            "summary_en": summary_en}
    try:
        amount = _decimal(cny, "cny")
        if amount is None or amount < 0:
            raise invalid("cny", "请填写年度预算(元) / Enter the annual budget in CNY")
        change = {"budget": {"cny": str(amount), "alerts": _alerts(alerts), "hard_stop": hard_stop == "1"}}
        _propose(page, change, _summary(summary_zh, summary_en), _activate_at(activate_at))
    except AppError as err:
        return _budget_page(page, err.status_code, form=form, activate_default=activate_at, **_refusal(page, err))
    return page.redirect("/admin/budget?done=drafted")


# --- session templates -------------------------------------------------------------------------

ScheduleWrite = Annotated[Page, Depends(staff_page("schedule:write"))]


def _templates_page(page: Page, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        rows = scheduling.templates(session)
    by_day: dict[int, list[dict[str, Any]]] = {d: [] for d in WEEKDAYS}
    for r in sorted(rows, key=lambda r: (r["weekday"], r["start"])):
        r["fee_cny"] = f"{Decimal(r['fee_fen']) / 100:.2f}"
        by_day[int(r["weekday"])].append(r)
    generated = page.request.query_params.get("generated") or ""
    return page.render("admin/manage/templates.html", status=status, **_context(
        page, by_day=by_day, count=len(rows), generated=int(generated) if generated.isdigit() else None,
        **values))


@router.get("/admin/templates")
def templates_list(page: ScheduleWrite) -> Response:
    """The weekly session templates by weekday, the form to add one, and the generate-sessions job."""
    return _templates_page(page)


@router.post("/admin/templates")
def template_create(page: ScheduleWrite, owner: Annotated[str, Form(pattern="^(clinician|resource)$")],
                    owner_id: Annotated[str, Form(max_length=64)], weekday: Annotated[str, Form(max_length=1)],
                    start: Annotated[str, Form(max_length=5)], end: Annotated[str, Form(max_length=5)],
                    slot_minutes: Annotated[str, Form(max_length=3)],
                    capacity: Annotated[str, Form(max_length=5)] = "",
                    level: Annotated[str, Form(max_length=16)] = "general",
                    fee_cny: Annotated[str, Form(max_length=12)] = "0") -> Response:
    """Add a weekly session (scheduling.service.create_template, as POST /session-templates)."""
    form = {"owner": owner, "owner_id": owner_id, "weekday": weekday, "start": start, "end": end,
            "slot_minutes": slot_minutes, "capacity": capacity, "level": level, "fee_cny": fee_cny}
    try:
        ident = owner_id.strip()
        if not is_id(ident):
            raise invalid("owner_id", "请填写医生或检查资源的编号 / Enter the clinician's or resource's id")
        data = {f"{owner}_id": ident, "weekday": _int(weekday, "weekday"), "start": _time(start, "start"),
                "end": _time(end, "end"), "slot_minutes": _int(slot_minutes, "slot_minutes"),
                "capacity": _int(capacity, "capacity"), "level": level, "fee_cny": _decimal(fee_cny, "fee_cny")}
        body = _build(TemplateCreate, data)
        with writing() as session:
            scheduling.create_template(session, body, utc_now())
    except AppError as err:
        return _templates_page(page, err.status_code, form=form, **_refusal(page, err))
    return page.redirect("/admin/templates?done=template_created")


def _time(raw: str, field: str) -> time:
    try:
        return time.fromisoformat(raw.strip())
    except ValueError:
        raise invalid(field, "请填写时间,如 08:00 / Enter a time such as 08:00") from None


@router.post("/admin/templates/{template_id}/deactivate")
def template_deactivate(page: ScheduleWrite, template_id: str) -> Response:
    """Stop a template (scheduling.service.deactivate_template): no more sessions from it."""
    with writing() as session:
        scheduling.deactivate_template(session, template_id)
    return page.redirect("/admin/templates?done=template_stopped")


@router.post("/admin/templates/generate")
def templates_generate(page: ScheduleWrite) -> Response:
    """Run the generate-sessions job now (as `carepoints jobs run generate-sessions`): the sessions of
    the coming two weeks that do not exist yet; the count created is shown."""
    result = scheduling_tasks.generate_sessions(utc_now())
    return page.redirect(f"/admin/templates?generated={int(result['sessions'])}")


# --- staff users -------------------------------------------------------------------------------

StaffWrite = Annotated[Page, Depends(staff_page("staff:write"))]


def _staff_page(page: Page, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        users = security.staff_users(session)
    return page.render("admin/manage/staff.html", status=status, **_context(
        page, users=users, roles=[str(r) for r in STAFF_ROLES], now_utc=utc_now(),
        role_options=[(str(r), page.tr(*ROLE_WORDS[str(r)])) for r in STAFF_ROLES], **values))


@router.get("/admin/staff")
def staff_list(page: StaffWrite) -> Response:
    """Staff users with their roles (never a password hash), the form to add one."""
    return _staff_page(page)


@router.post("/admin/staff")
def staff_create(page: StaffWrite, username: Annotated[str, Form(max_length=64)],
                 password: Annotated[str, Form(max_length=200)], role: Annotated[str, Form(max_length=32)]) -> Response:
    """Create a staff user with a temporary password (security.service.create_staff, as `carepoints staff
    create`); an administrator enrols their authenticator at first login."""
    principal = _actor_page(page)
    form = {"username": username, "role": role}
    try:
        name = username.strip()
        if not name or len(name) < 3 or any(c.isspace() for c in name):
            raise invalid("username", "用户名至少 3 个字符,不含空格 / At least 3 characters, no spaces")
        if len(password) < MIN_PASSWORD:
            raise invalid("password", f"临时密码至少 {MIN_PASSWORD} 位 / At least {MIN_PASSWORD} characters")
        with writing() as session:
            sid = security.create_staff(session, name, password, role, utc_now())
            record(session, principal.actor(), "security:staff:create", utc_now(), subject_id=sid, role=role)
    except AppError as err:
        return _staff_page(page, err.status_code, form=form, **_refusal(page, err))
    return page.redirect("/admin/staff?done=staff_created")


def _staff_change(page: Page, staff_id: str, change: Callable[[Session, dict[str, Any]], None]) -> Response | None:
    principal = _actor_page(page)
    try:
        if staff_id == principal.id:
            raise SelfChangeError()
        with writing() as session:
            change(session, security.staff_user(session, staff_id))
    except AppError as err:
        if err.status_code == 404:
            raise
        return _staff_page(page, err.status_code, row_id=staff_id, **_refusal(page, err))
    return None


@router.post("/admin/staff/{staff_id}/role")
def staff_role(page: StaffWrite, staff_id: str, role: Annotated[str, Form(max_length=32)]) -> Response:
    """Change a staff user's role (their next request works with the new one)."""
    principal = _actor_page(page)

    def change(session: Session, user: dict[str, Any]) -> None:
        if role not in STAFF_ROLES:
            raise invalid("role", "请选择角色 / Choose a role")
        security.set_staff_role(session, user["id"], role)
        record(session, principal.actor(), "security:staff:role", utc_now(), subject_id=user["id"], role=role)

    return _staff_change(page, staff_id, change) or page.redirect("/admin/staff?done=role_changed")


@router.post("/admin/staff/{staff_id}/disable")
def staff_disable(page: StaffWrite, staff_id: str) -> Response:
    """Disable an account (security.service.deactivate_staff): its sessions stop within seconds."""
    principal = _actor_page(page)

    def change(session: Session, user: dict[str, Any]) -> None:
        security.deactivate_staff(session, user["username"])
        record(session, principal.actor(), "security:staff:disable", utc_now(), subject_id=user["id"])

    return _staff_change(page, staff_id, change) or page.redirect("/admin/staff?done=staff_disabled")


# --- API keys ----------------------------------------------------------------------------------

def _keys_page(page: Page, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        items = security.api_keys(session)
    return page.render("admin/manage/keys.html", status=status, **_context(
        page, items=items, now=utc_now(),
        key_role_options=[(str(r), page.tr(*ROLE_WORDS[str(r)])) for r in API_KEY_ROLES], **values))


@router.get("/admin/keys")
def keys_list(page: StaffWrite) -> Response:
    """API keys by their prefix (the secret is never stored), the form to create one."""
    return _keys_page(page)


@router.post("/admin/keys")
def key_create(page: StaffWrite, name: Annotated[str, Form(max_length=100)],
               role: Annotated[str, Form(max_length=32)] = "integration",
               expires_days: Annotated[str, Form(max_length=5)] = "") -> Response:
    """Create a key (security.keys.create, as `carepoints api-key create`): its secret is shown on this
    answer only, never again."""
    principal = _actor_page(page)
    form = {"name": name, "role": role, "expires_days": expires_days}
    try:
        if not name.strip():
            raise invalid("name", "请填写密钥名称 / Enter the key's name")
        days = _int(expires_days, "expires_days")
        if days is not None and not 1 <= days <= 3650:
            raise invalid("expires_days", "有效期为 1 到 3650 天 / 1 to 3650 days")
        with writing() as session:
            kid, secret = api_keys.create(session, name.strip(), role, utc_now(), expires_days=days)
            record(session, principal.actor(), "security:api_key:create", utc_now(), subject_id=kid, role=role)
    except AppError as err:
        return _keys_page(page, err.status_code, form=form, **_refusal(page, err))
    return _keys_page(page, 201, created={"id": kid, "name": name.strip(), "secret": secret})


@router.post("/admin/keys/{key_id}/revoke")
def key_revoke(page: StaffWrite, key_id: str) -> Response:
    """Revoke a key (security.keys.revoke): refused from now on (401)."""
    principal = _actor_page(page)
    with writing() as session:
        api_keys.revoke(session, key_id, utc_now())
        record(session, principal.actor(), "security:api_key:revoke", utc_now(), subject_id=key_id)
    return page.redirect("/admin/keys?done=key_revoked")

