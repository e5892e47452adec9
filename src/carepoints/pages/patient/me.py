"""The patient's "me" pages (我的): the menu, how to earn (积分规则), points history, appeals of
penalties, the messages inbox, privacy (consents, the data download, who looked at my data),
family (switch to a patient one acts for: 代办) and the WeChat login.

Every page reads the patient shown (`page.patient_id`: oneself or whom one acts for) through the
same services and permissions as the API; record ids in paths (`/me/appeals/{appeal_id}`,
`/me/messages/{message_id}`) are checked against their owner (carepoints.ownership)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.enrolment import households
from carepoints.enrolment import privacy as privacy_service
from carepoints.enrolment import service as enrolment
from carepoints.kit.errors import AppError, ValidationFailedError
from carepoints.kit.templating import environment
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.notifications import service as notifications
from carepoints.operations import appeals
from carepoints.pages.web import (
    PATIENT,
    Page,
    anonymous,
    form_errors,
    patient_page,
    reading,
    self_page,
    sign_in_patient,
    writing,
)
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.patients.schemas import PURPOSES
from carepoints.rules import governance
from carepoints.security import audit_report, wechat
from carepoints.security.errors import PatientOutOfReachError, WechatChoosePatientError
from carepoints.security.permissions import proxy_allows
from carepoints.security.service import Principal

router = APIRouter(include_in_schema=False)
Anonymous = Annotated[Page, Depends(anonymous(PATIENT))]

# the five core rules a patient sees first, each with its picture (pages.icons)
CORE = (("book_ahead", "calendar"), ("on_time", "clock"), ("health_checkin", "heart"), ("followup", "chat"),
        ("education", "book"))
PAGE_SIZE = 20
ELDERLY_PAGE_SIZE = 10

# a ledger entry's kind in words, when no rule names it
KINDS: dict[str, tuple[str, str]] = {
    "earn": ("获得积分", "Points earned"), "penalty": ("扣减积分", "Points deducted"),
    "adjust": ("人工调整", "Adjustment by staff"), "reversal": ("积分撤回", "Points withdrawn"),
    "refund": ("兑换退回", "Redemption refunded"), "redeem": ("兑换礼品", "Reward redeemed"),
    "fee_offset": ("抵扣费用", "Fee offset"), "expiry": ("积分过期", "Points expired"),
    "merge_in": ("账户合并转入", "Moved in from a merged account"),
    "merge_out": ("账户合并转出", "Moved to a merged account"),
    "merge_debt_in": ("账户合并转入欠分", "Debt moved in from a merged account"),
    "merge_debt_out": ("账户合并转出欠分", "Debt moved to a merged account"),
}
REASONS: dict[str, tuple[str, str]] = {
    "hospitalised": ("当时住院,无法前来", "I was in hospital"),
    "session_cancelled_unrecorded": ("医院停诊但未记录", "The hospital cancelled the session"),
    "wrong_patient": ("不是我本人的记录", "This was not me"),
    "other": ("其他原因(请说明)", "Another reason (please explain)"),
}
STATUS: dict[str, tuple[str, str]] = {
    "open": ("处理中", "Being reviewed"), "upheld": ("维持原决定", "Decision kept"),
    "reversed": ("已撤销扣分", "Penalty removed"),
}
PURPOSE_WORDS: dict[str, tuple[str, str, str, str]] = {
    "points_programme": ("积分计划", "Points programme", "记录就诊、打卡等行为并发放积分。",
                         "Records visits and check-ins and awards points."),
    "health_data": ("健康数据", "Health data", "保存您上传的血压、血糖等数据,用于随访和提醒。",
                    "Keeps the blood pressure and glucose you record, for follow-up and reminders."),
    "notifications": ("消息通知", "Messages", "通过短信或微信给您发送提醒。",
                      "Sends you reminders by SMS or WeChat."),
    "research": ("医学研究", "Medical research", "去除身份信息后用于医学研究。",
                 "Used for medical research with your identity removed."),
}


def _words(page: Page, table: dict[str, tuple[str, str]], key: str) -> str:
    pair = table.get(key)
    return page.tr(*pair) if pair else key


def _acting_name(session: Session, page: Page) -> str | None:
    return patients.display_name(session, page.patient_id, masked=True) if page.acting else None


def _actor(page: Page) -> Any:
    assert page.principal is not None  # noqa: S101 - a signed-in page
    return page.principal.actor()


# --- the menu and how to earn -----------------------------------------------------------

@router.get("/me")
def menu(page: Annotated[Page, Depends(patient_page("points:read"))]) -> Response:
    with reading() as session:
        acting_name = _acting_name(session, page)
        unread = notifications.messages(session, notifications.patient_inbox(page.patient_id), unread_only=True,
                                        limit=1, before=None)["unread"] if _may(page, "notifications:read") else 0
    return page.render("patient/me/index.html", tab="me", acting_name=acting_name, unread=unread)


def _may(page: Page, permission: str) -> bool:
    """May the signed-in principal use `permission` for the patient shown (a proxy: its scopes)?"""
    principal = page.principal
    if principal is None or not principal.can(permission):
        return False
    if not page.acting:
        return True
    return proxy_allows((principal.reach or {}).get(page.patient_id, frozenset()), permission)


@router.get("/me/earn")
def earn(page: Annotated[Page, Depends(patient_page("points:read"))]) -> Response:
    """积分规则: the five core rules first, in plain words with a picture each; the rest folded."""
    with reading() as session:
        terms = governance.current_terms(session, "en" if page.lang == "en" else "zh", utc_now())
        acting_name = _acting_name(session, page)
    rules = {r["code"]: r for r in [*terms["core"], *terms["rules"]]}
    core = [{**rules[code], "icon": name} for code, name in CORE if code in rules]
    shown = {r["code"] for r in core}
    rest = [r for r in [*terms["core"], *terms["rules"]] if r["code"] not in shown]
    return page.render("patient/me/earn.html", tab="me", back="/me", core=core, rest=rest, terms=terms,
                       acting_name=acting_name)


# --- points history -----------------------------------------------------------------------

def _rule_names(session: Session, lang: str, now: datetime) -> dict[str, str]:
    terms = governance.current_terms(session, "en" if lang == "en" else "zh", now)  # the Literal the service takes
    return {r["code"]: r["name"] for r in [*terms["core"], *terms["rules"]]}


@router.get("/me/points")
def points_history(page: Annotated[Page, Depends(patient_page("points:read"))],
                   cursor: str | None = Query(None, pattern=r"^\d{1,12}$")) -> Response:
    """The ledger entries newest first, each reason in words; penalties link to an appeal; "更多"
    loads the next page (HTMX appends it, without JavaScript it is a link)."""
    now = utc_now()
    limit = ELDERLY_PAGE_SIZE if page.elderly else PAGE_SIZE
    with reading() as session:
        found = enrolment.entries(session, page.patient_id, limit=limit, cursor=cursor)
        names = _rule_names(session, page.lang, now)
        appealed: dict[str, dict[str, Any]] = {}
        if _may(page, "appeals:view"):
            appealed = {a["subject"]["id"]: a for a in appeals.queue(
                session, status=None, patient_id=page.patient_id, limit=200)["items"]
                if a["subject"]["kind"] == "penalty"}
        summary = enrolment.points(session, page.patient_id, now) if cursor is None else None
        acting_name = _acting_name(session, page)
    entries = cast("list[dict[str, Any]]", found["items"])
    items = [_entry(page, e, names, appealed) for e in entries]
    ctx: dict[str, Any] = {"items": items, "next": found["next"], "can_appeal": _may(page, "appeals:write")}
    if page.htmx and cursor is not None:
        return page.render("patient/me/_entries.html", **ctx)
    return page.render("patient/me/points.html", tab="me", back="/me", summary=summary, acting_name=acting_name,
                       **ctx)


def _entry(page: Page, e: dict[str, Any], names: dict[str, str], appealed: dict[str, dict[str, Any]]
           ) -> dict[str, Any]:
    rule = e.get("rule")
    reason = names.get(rule) if rule else None
    if reason is None:
        reason = _words(page, KINDS, str(e["kind"])) if e["kind"] in KINDS else (rule or str(e["kind"]))
    penalty = int(e["points"]) < 0 and e["kind"] == "penalty" and bool(e.get("event_id"))
    return {**e, "reason": reason, "penalty": penalty,
            "appeal": appealed.get(str(e.get("event_id"))) if penalty else None}


# --- appeals ------------------------------------------------------------------------------

AppealsView = Annotated[Page, Depends(patient_page("appeals:view"))]
AppealsWrite = Annotated[Page, Depends(patient_page("appeals:write"))]


@router.get("/me/appeals")
def appeals_list(page: AppealsView) -> Response:
    with reading() as session:
        found = appeals.queue(session, status=None, patient_id=page.patient_id, limit=50)
        acting_name = _acting_name(session, page)
    return page.render("patient/me/appeals.html", tab="me", back="/me", items=found["items"], reasons=REASONS,
                       statuses=STATUS, acting_name=acting_name)


def _appeal_form(page: Page, entry: str, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        acting_name = _acting_name(session, page)
    values.setdefault("reason", "")
    values.setdefault("note", "")
    values.setdefault("errors", {})
    return page.render("patient/me/appeal_new.html", status=status, tab="me", back="/me/points", entry=entry,
                       reasons=[(k, page.tr(*v)) for k, v in REASONS.items()], acting_name=acting_name, **values)


@router.get("/me/appeals/new")
def appeal_new(page: AppealsWrite, entry: str = Query(min_length=1, max_length=64)) -> Response:
    """The appeal form for one penalty (`entry`: the penalty's event id, from the points history)."""
    return _appeal_form(page, entry)


@router.post("/me/appeals/new")
def appeal_file(page: AppealsWrite, entry: Annotated[str, Form(min_length=1, max_length=64)],
                reason: Annotated[str, Form(max_length=64)] = "",
                note: Annotated[str, Form(max_length=500)] = "") -> Response:
    """File it as `POST /api/v1/appeals` does; the service's refusals come back on the form."""
    try:
        if reason not in appeals.REASONS:
            raise ValidationFailedError(fields=[{"loc": ["reason"], "msg": "请选择申诉原因 / Choose a reason"}])
        with writing() as session:
            doc = appeals.file(session, _actor(page), utc_now(), patient_id=page.patient_id, ref=None, reason=reason,
                               event_id=entry, note=note.strip() or None)
    except AppError as err:
        if err.status_code >= 500:
            raise
        errors = form_errors(err, page.lang) if isinstance(err, ValidationFailedError) else {}
        return _appeal_form(page, entry, status=err.status_code, reason=reason, note=note, errors=errors,
                            error=err.to_dict())
    return page.redirect(f"/me/appeals/{doc['id']}?done=filed")


@router.get("/me/appeals/{appeal_id}")
def appeal_detail(page: AppealsView, appeal_id: str, done: str | None = Query(None, max_length=16)) -> Response:
    with reading() as session:
        doc = appeals.appeal(session, appeal_id)
        if doc["patient_id"] != page.patient_id:  # carepoints.ownership already answers 404 for others'
            raise PatientOutOfReachError()
        acting_name = _acting_name(session, page)
    return page.render("patient/me/appeal.html", tab="me", back="/me/appeals", appeal=doc, reasons=REASONS,
                       statuses=STATUS, done=done, acting_name=acting_name)


# --- messages ----------------------------------------------------------------------------

@router.get("/me/messages")
def messages(page: Annotated[Page, Depends(patient_page("notifications:read"))],
             before: str | None = Query(None, max_length=36)) -> Response:
    with reading() as session:
        found = notifications.messages(session, notifications.patient_inbox(page.patient_id), unread_only=False,
                                       limit=ELDERLY_PAGE_SIZE if page.elderly else PAGE_SIZE, before=before,
                                       language=page.lang)
        acting_name = _acting_name(session, page)
    return page.render("patient/me/messages.html", tab="me", back="/me", found=found, acting_name=acting_name,
                       can_mark=_may(page, "notifications:write"))


@router.post("/me/messages/{message_id}/read")
def message_read(page: Annotated[Page, Depends(patient_page("notifications:write"))], message_id: str) -> Response:
    """Mark one message read (HTMX: the message comes back; otherwise back to the inbox)."""
    with writing() as session:
        doc = notifications.mark_read(session, notifications.patient_inbox(page.patient_id), message_id, utc_now(),
                                      page.lang)
    if page.htmx:
        return page.render("patient/me/_message.html", msg=doc, can_mark=True)
    return page.redirect("/me/messages")


# --- privacy ------------------------------------------------------------------------------

def _privacy(page: Page, status: int = 200, **values: Any) -> Response:
    now = utc_now()
    with reading() as session:
        consents = privacy_service.consents(session, page.patient_id)
        report = audit_report.access_report(session, page.patient_id, now, 90) if _may(
            page, "access_report:read") else None
        acting_name = _acting_name(session, page)
    current = [{**c, "words": PURPOSE_WORDS.get(c["purpose"])} for c in consents["current"]]
    groups = [{**g, "who": _who(page, g["actor"]), "what": sorted({_what(page, e["action"]) for e in g["entries"]})}
              for g in (report or {}).get("groups", [])]
    return page.render("patient/me/privacy.html", status=status, tab="me", back="/me", consents=current,
                       report=report, groups=groups, acting_name=acting_name,
                       can_write=_may(page, "consents:write"), can_export=_may(page, "privacy:export"), **values)


def _who(page: Page, actor: dict[str, Any]) -> str:
    roles = {"frontdesk": ("服务窗口", "Service desk"), "nurse": ("护士", "Nurse"), "clinician": ("医生", "Doctor"),
             "moderator": ("审核员", "Moderator"), "admin": ("管理员", "Administrator"),
             "auditor": ("审计员", "Auditor"), "integration": ("医院系统", "Hospital system"),
             "patient": ("代办人", "Proxy"), "proxy": ("代办人", "Proxy")}
    role = _words(page, roles, str(actor.get("role") or ""))
    name = actor.get("username") or actor.get("name")
    return f"{role} · {name}" if name else role


def _what(page: Page, action: str) -> str:
    if action.startswith("http:GET") or action.endswith((":read", ":view", ":export")):
        return page.tr("查看", "Viewed")
    return page.tr("修改", "Changed")


@router.get("/me/privacy")
def privacy(page: Annotated[Page, Depends(patient_page("consents:read"))],
            done: str | None = Query(None, max_length=16)) -> Response:
    return _privacy(page, done=done)


@router.post("/me/privacy/consents")
def consent(page: Annotated[Page, Depends(patient_page("consents:write"))],
            purpose: Annotated[str, Form(max_length=32)], action: Annotated[str, Form(max_length=16)]) -> Response:
    """Grant or withdraw one purpose, as `POST` / `DELETE /patients/{id}/consents` do."""
    try:
        if purpose not in PURPOSES or action not in ("grant", "withdraw"):
            raise ValidationFailedError(fields=[{"loc": ["purpose"], "msg": "未知的用途 / Unknown purpose"}])
        with writing() as session:
            if action == "grant":
                privacy_service.grant(session, page.patient_id, purpose, get_settings().pages_consent_version,
                                      _actor(page), utc_now())
            else:
                privacy_service.withdraw(session, page.patient_id, purpose, _actor(page), utc_now())
    except AppError as err:
        if err.status_code >= 500:
            raise
        return _privacy(page, status=err.status_code, error=err.to_dict())
    return page.redirect(f"/me/privacy?done={'granted' if action == 'grant' else 'withdrawn'}")


@router.get("/me/privacy/export")
def export(page: Annotated[Page, Depends(patient_page("privacy:export"))]) -> Response:
    """The data download (数据下载): the API's JSON, audited, as a file."""
    assert page.principal is not None  # noqa: S101
    own = page.principal.kind == "patient" and page.principal.id == page.patient_id
    with writing() as session:
        doc = privacy_service.export(session, page.patient_id, _actor(page), utc_now(), reveal_pii=own)
    return page.finish(JSON(doc, headers={
        "Content-Disposition": f'attachment; filename="carepoints-{page.patient_id}.json"'}))


# --- family: acting for someone (代办) ------------------------------------------------------

Itself = Annotated[Page, Depends(self_page())]


def _self(page: Page) -> Principal:
    """The signed-in patient themself, whoever they act for now (pages.web.self_page)."""
    assert page.principal is not None  # noqa: S101 - signed in (self_page)
    return page.principal


@router.get("/me/family")
def family(page: Itself) -> Response:
    """The household of the signed-in patient and the patients they are proxy for, each with a
    switch when they may act for them."""
    principal = _self(page)
    me = principal.id
    if page.data.get("a") and page.data.get("a") not in (principal.reach or {}):
        page.set(a=None)  # an authorisation revoked since: back to oneself
    reach = dict(principal.reach or {})
    with reading() as session:
        mine = households.of_patient(session, me)
        household = households.read(session, mine["id"]) if mine else None
        members = []
        for m in (household or {}).get("members", []):
            pid = m["patient_id"]
            members.append({**m, "name": patients.display_name(session, pid, masked=pid != me), "me": pid == me,
                            "can_switch": pid in reach})
        proxied = [{"patient_id": pid, "name": patients.display_name(session, pid, masked=True),
                    "scopes": sorted(scopes)} for pid, scopes in reach.items()]
        acting_name = _acting_name(session, page)
    return page.render("patient/me/family.html", tab="me", back="/me", household=household, members=members,
                       proxied=proxied, acting_name=acting_name, my_name=None)


@router.post("/me/family/switch")
def switch(page: Itself, patient_id: Annotated[str, Form(max_length=36)] = "") -> Response:
    """Act for `patient_id` (someone who authorised the signed-in patient as proxy), or back to
    oneself with an empty `patient_id`; anyone else 404 (ids cannot be probed)."""
    principal = _self(page)
    target = patient_id.strip()
    if not target or target == principal.id:
        page.set(a=None)
        return page.redirect("/")
    if target not in (principal.reach or {}):
        raise PatientNotFoundError()
    page.set(a=target)
    return page.redirect("/")


# --- WeChat login (where the hospital's official account is configured) ----------------------

def wechat_login_url() -> str:
    """The login page's "微信登录" link, or '' when WeChat is not configured (the button hides)."""
    settings = get_settings()
    return "/login/wechat" if settings.wechat_app_id and settings.wechat_app_secret else ""


environment().globals["wechat_login"] = wechat_login_url


def _callback(request: Request) -> str:
    return str(request.url_for("wechat_callback"))


@router.get("/login/wechat")
def wechat_start(request: Request, page: Anonymous) -> Response:
    """Start WeChat's web authorisation (the API's `GET /auth/wechat/authorize?purpose=login`)."""
    settings = get_settings()
    with writing() as session:
        started = wechat.authorize(session, "login", _callback(request), None, utc_now(), settings)
    return page.redirect(str(started["url"]))


@router.get("/login/wechat/callback", name="wechat_callback")
async def wechat_callback(page: Anonymous, code: str = Query(min_length=1, max_length=256),
                          state: str = Query(min_length=1, max_length=128),
                          patient_id: str | None = Query(None, max_length=36)) -> Response:
    """WeChat sends the patient back here: log in as the bound patient (the API's
    `POST /auth/wechat/login`), or choose who when several are bound."""
    try:
        result = await run_in_threadpool(_wechat_login, code, state, patient_id)
    except AppError as err:
        if err.status_code >= 500:
            raise
        return page.render("patient/login.html", status=err.status_code, step="phone", next="/", phone="",
                           error=err.to_dict(), dev_inbox=False)
    if isinstance(result, WechatChoosePatientError):
        return page.render("patient/login.html", status=200, step="wechat_choose", next="/", phone="",
                           choices=result.choices, wechat_code=code, wechat_state=state, dev_inbox=False)
    sign_in_patient(page, result)
    return page.redirect("/")


def _wechat_login(code: str, state: str, patient_id: str | None) -> str | WechatChoosePatientError:
    settings = get_settings()
    with reading() as session:
        opened = wechat.open_state(session, state, "login", utc_now(), settings)
    index = wechat.known_code(opened, code, settings)
    if index is None:  # outside any transaction: WeChat may be slow
        index = wechat.openid_index(settings, wechat.client(settings).exchange(code).openid)
    with writing() as session:
        result = wechat.login(session, opened, code, index, patient_id, utc_now(), settings)
    if isinstance(result, tuple):
        return result[0]
    if isinstance(result, WechatChoosePatientError):
        return result
    raise result
