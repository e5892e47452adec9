"""Message templates: topic (or `topic.variant`) → audience, default channels and
zh-CN / English wording with `{param}` placeholders filled from the outbox
payload (ids, codes and numbers) and a few values derived from it (local times,
tier names). Wording never names a diagnosis, a department or a health value;
hospitals replace it with their own approved text through a YAML file
(`CAREPOINTS_NOTIFICATION_TEMPLATES`):

    templates:
      points.changed.earned:
        zh: {title: 积分到账, body: "您获得了 {points} 积分。"}
        en: {title: Points added, body: "You earned {points} points."}
        channels: [inbox, sms]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from carepoints.kit.time import as_utc


class Audience(StrEnum):
    patient = "patient"
    care_team = "care_team"
    staff = "staff"  # the staff user named in the payload (and the care team)
    admins = "admins"
    none = "none"  # webhooks only


CHANNELS = ("inbox", "sms", "wechat")
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_ANY_BRACE = re.compile(r"[{}]")


@dataclass(frozen=True, slots=True)
class Template:
    key: str
    audience: Audience
    channels: tuple[str, ...]
    zh: tuple[str, str]  # title, body
    en: tuple[str, str]
    urgent: bool = False  # ignores quiet hours; flagged in the staff inbox


@dataclass(frozen=True, slots=True)
class Rendered:
    key: str
    title_zh: str
    body_zh: str
    title_en: str
    body_en: str

    def text(self, language: str) -> tuple[str, str]:
        return (self.title_en, self.body_en) if language == "en" else (self.title_zh, self.body_zh)


class RenderError(Exception):
    """A template names a parameter the payload does not carry."""


_P = Audience.patient
_ALL = ("inbox", "sms", "wechat")
_NO_SMS = ("inbox", "wechat")
_MY_APPTS = "可在“我的预约”中查看详情。"

BUILTIN: dict[str, Template] = {t.key: t for t in (
    Template("points.changed.earned", _P, _NO_SMS, ("积分到账", "您获得了 {points} 积分,当前余额 {balance} 积分。"),
             ("Points added", "You earned {points} points. Your balance is {balance} points.")),
    Template("points.changed.deducted", _P, _NO_SMS,
             ("积分变动", "您的积分减少了 {abs_points} 积分,当前余额 {balance} 积分。"),
             ("Points deducted", "{abs_points} points were deducted. Your balance is {balance} points.")),
    Template("points.changed", _P, _NO_SMS, ("积分变动", "您的积分有变动,当前余额 {balance} 积分。"),
             ("Points changed", "Your points changed. Your balance is {balance} points.")),
    Template("points.expiring", _P, _ALL,
             ("积分即将到期", "您有 {points} 积分将于 {expires_date} 到期,请及时使用。"),
             ("Points expiring", "{points} of your points expire on {expires_date}. Use them before then.")),
    Template("appointment.booked", _P, _NO_SMS, ("预约成功", "您的预约已成功,请按时就诊。" + _MY_APPTS),
             ("Appointment booked", "Your appointment is booked. Details are under My appointments.")),
    Template("appointment.reminder", _P, _ALL,
             ("就诊提醒", "温馨提示:您预约的就诊时间为 {slot_time},请提前到院签到。如不能按时就诊,请提前取消预约。"),
             ("Appointment reminder", "Reminder: your appointment is at {slot_time}. Please check in a little early; "
                                      "if you cannot come, cancel in advance.")),
    Template("appointment.cancelled", _P, _NO_SMS, ("预约已取消", "您的预约已取消。" + _MY_APPTS),
             ("Appointment cancelled", "Your appointment has been cancelled.")),
    Template("appointment.cancelled_by_hospital", _P, _ALL,
             ("预约取消通知", "很抱歉,因医院安排调整,您的一个预约已取消,请在“我的预约”中查看并重新预约。"),
             ("Appointment cancelled by the hospital", "We are sorry: the hospital had to cancel one of your "
                                                       "appointments. Please see My appointments to book again.")),
    Template("appointment.no_show", _P, _NO_SMS,
             ("爽约提醒", "您有一个预约未按时就诊。如有疑问,请联系积分服务窗口。"),
             ("Missed appointment", "You missed an appointment. Ask the service desk if you have questions.")),
    Template("appointment.waitlist.offered", _P, _ALL,
             ("候补有号", "您候补的号源现已有空位,请尽快在“我的预约”中确认。"),
             ("Waitlist slot available", "A slot you were waiting for is free. Please confirm it soon under "
                                         "My appointments.")),
    Template("appointment.waitlist.booked", _P, _ALL, ("候补成功", "候补成功,已为您预约。" + _MY_APPTS),
             ("Waitlist booked", "Your waitlist request is booked. Details are under My appointments.")),
    Template("appointment.waitlist", _P, _NO_SMS, ("候补状态更新", "您的候补状态有更新。" + _MY_APPTS),
             ("Waitlist update", "Your waitlist request changed. Details are under My appointments.")),
    # (services.queue) the call and the "N away" notice; {room} is the clinician's room (王医生诊室)
    Template("queue.called", _P, _ALL, ("叫号提醒", "请{seq}号到{room}就诊。"),
             ("Your number is called", "Number {seq}: please go to {room} now.")),
    Template("queue.near", _P, _ALL, ("候诊提醒", "还有{ahead}位就到您了,请到{room}门口候诊。"),
             ("Almost your turn", "{ahead} patients are ahead of you. Please wait outside {room}.")),
    Template("checkup.booked", _P, _NO_SMS, ("体检预约成功", "您的体检预约已成功,请按时到院。"),
             ("Check-up booked", "Your health check-up is booked.")),
    Template("rewards.redeemed", _P, _NO_SMS, ("兑换成功", "兑换成功,可在“我的兑换”中查看。"),
             ("Redeemed", "Your redemption succeeded. See My redemptions.")),
    Template("rewards.budget_alert", Audience.admins, ("inbox",),
             ("兑换预算提醒", "{year} 年度积分兑换预算已使用 {percent}%。"),
             ("Redemption budget", "{percent}% of the {year} redemption budget is used.")),
    Template("tiers.changed", _P, _NO_SMS, ("会员等级变更", "您的会员等级已变更为{to_zh}。"),
             ("Tier changed", "Your tier is now {to_en}.")),
    Template("tiers.advisor_changed", _P, _NO_SMS, ("健康顾问变更", "您的专属健康顾问已更新,可在个人中心查看。"),
             ("Health advisor", "Your personal health advisor has changed.")),
    Template("care.alert", Audience.care_team, ("inbox",),
             ("新的关怀提醒", "新的关怀提醒({kind_zh},{severity_zh}),请在关怀队列中处理。提醒编号 {alert_id}。"),
             ("New care alert", "New care alert ({kind_en}, {severity_en}) in the care queue: {alert_id}.")),
    Template("health.advice.bp_high", _P, ("inbox",),
             ("测量提醒", "您本次测量的血压偏高。请休息后复测;如有胸痛、头痛、视物模糊等不适,请及时就医或拨打120。"
                         "医护人员已收到提醒。"),
             ("About your reading", "This blood pressure reading is higher than expected. Rest and measure again; "
                                    "if you have chest pain, headache or blurred vision, see a doctor or call 120. "
                                    "Your care team has been told.")),
    Template("health.advice.glucose_high", _P, ("inbox",),
             ("测量提醒", "您本次测量的血糖偏高。请按医嘱用药并注意饮食,稍后复测;如有口渴明显、乏力、恶心等不适,"
                         "请及时就医。医护人员已收到提醒。"),
             ("About your reading", "This blood glucose reading is higher than expected. Take your medicine as "
                                    "prescribed and measure again later; if you feel very thirsty, weak or sick, "
                                    "see a doctor. Your care team has been told.")),
    Template("health.advice.glucose_low", _P, ("inbox",),
             ("测量提醒", "您本次测量的血糖偏低。请立即进食含糖食物或饮料,15分钟后复测;如有心慌、出汗、头晕等不适"
                         "未缓解,请及时就医或拨打120。医护人员已收到提醒。"),
             ("About your reading", "This blood glucose reading is lower than expected. Eat or drink something "
                                    "sugary now and measure again in 15 minutes; if palpitations, sweating or "
                                    "dizziness do not pass, see a doctor or call 120. Your care team has been told.")),
    Template("health.advice", _P, ("inbox",),
             ("测量提醒", "您本次的测量结果需要关注。请休息后复测;如有不适,请及时就医。医护人员已收到提醒。"),
             ("About your reading", "This reading needs attention. Rest and measure again; if you feel unwell, "
                                    "see a doctor. Your care team has been told.")),
    Template("care.inactivity", _P, _ALL,
             ("关怀提醒", "好久不见!最近身体还好吗?记得按时测量、按时服药,有需要随时联系我们。"),
             ("Thinking of you", "We have not seen you for a while. Remember your readings and medicines, "
                                 "and contact us whenever you need.")),
    Template("lab.critical_value", Audience.staff, ("inbox",),
             ("危急值提醒", "有一项检验危急值待处理,请立即查看(提醒编号 {alert_id})。"),
             ("Critical value", "A critical lab value needs action now (alert {alert_id})."), urgent=True),
    Template("lab.critical_value.patient", _P, _ALL,
             ("重要提醒", "医院有一项重要信息需要与您沟通,请尽快联系医院或留意医护人员来电。"),
             ("Important", "The hospital needs to talk to you. Please contact the hospital soon or "
                           "expect a call from your care team.")),
    Template("medication.reminder", _P, _ALL, ("用药提醒", "用药提醒:请按医嘱按时用药({scheduled_time})。"),
             ("Medication reminder", "Reminder: please take your medicine as prescribed ({scheduled_time}).")),
    Template("followup.due", _P, _ALL,
             ("随访提醒", "您有一项随访问卷待完成,请在 {due_date} 前填写。"),
             ("Follow-up due", "A follow-up questionnaire is waiting for you; please answer it by {due_date}.")),
    Template("lecture.registered", _P, ("inbox",),
             ("讲座报名成功", "您已成功报名健康讲座,请按时参加,到场签到可获得积分。"),
             ("Lecture booked", "You have a seat at the health lecture. Please come on time and sign in "
                                "at the door to earn points.")),
    Template("lecture.registration_cancelled", _P, ("inbox",),
             ("讲座报名已取消", "您的健康讲座报名已取消,座位已释放。"),
             ("Lecture seat cancelled", "Your health lecture seat has been cancelled.")),
    Template("community.post_rejected", _P, ("inbox",),
             ("内容未通过审核", "您发布的内容未通过审核,可修改后重新发布。"),
             ("Post not approved", "Your post was not approved. You may edit it and post again.")),
    # (ops.identity templates)
    Template("account.closed", _P, ("inbox",),
             ("积分账户已注销", "您的积分账户已按您的要求注销,剩余积分已按积分规则处理,预约已为您取消。"
                                "如需重新开通,请到积分服务窗口办理。"),
             ("Points account closed", "Your points account has been closed as you asked. The points left were "
                                       "handled under the programme rules and your appointments were cancelled. "
                                       "To open it again, please visit the points service desk.")),
    Template("account.reopened", _P, ("inbox",),
             ("积分账户已恢复", "您的积分账户已恢复使用,可以继续参加活动、获得积分。"),
             ("Points account reopened", "Your points account is open again. You can take part and earn points.")),
    # (ops.merge templates)
    Template("points.changed.merged", _P, _NO_SMS,
             ("积分已合并", "您的两份就诊档案已合并为一份,原档案的积分已转入本账户,当前余额 {balance} 积分。"),
             ("Points combined", "Your two patient records were combined into one, and the points of the other "
                                 "record were moved here. Your balance is {balance} points.")),
    # (ops.adjustments templates)
    # (ops.appeals templates)
    Template("appeal.received", _P, ("inbox",),
             ("申诉已收到", "我们已收到您的申诉,工作人员会认真核实,并在 {due_date} 前告诉您结果。"),
             ("Appeal received", "We have received your appeal. Our staff will look into it carefully and tell "
                                 "you the result by {due_date}.")),
    Template("appeal.upheld", _P, _NO_SMS,
             ("申诉处理结果", "您的申诉已处理。经核实,原记录保持不变。如有疑问,请到积分服务窗口咨询。"),
             ("Appeal decided", "Your appeal has been reviewed. After checking, the original record stays as it "
                                "was. If you have questions, please ask at the points service desk.")),
    Template("appeal.reversed", _P, _NO_SMS,
             ("申诉已通过", "您的申诉已通过,相关扣分或积分暂停已撤销,账户已恢复。感谢您的耐心等待。"),
             ("Appeal accepted", "Your appeal was accepted. The deduction or the pause on earning points has been "
                                 "cancelled and your account is back to normal. Thank you for your patience.")),
    # (ops.governance templates)
    Template("programme.changed", _P, ("inbox",),
             ("积分规则更新", "积分规则将于 {effective_date} 起更新,请点击查看新的规则。"
                              "如有疑问,可以咨询积分服务窗口。"),
             ("Points rules update", "The points rules change from {effective_date}. Tap to read the new rules. "
                                     "The points service desk can help with any questions.")),
    Template("programme.approved", Audience.admins, ("inbox",),
             ("积分方案已批准", "积分方案第 {version} 版已批准,将于 {effective_date} 起生效。"),
             ("Programme approved", "Programme version {version} is approved and takes effect from "
                                    "{effective_date}.")),
    # (ops.fraud templates)
    Template("points.earning_frozen", _P, ("inbox",),
             ("积分获取已暂停", "您的账户暂时不能获得新的积分,已有积分可以照常使用。请联系积分服务窗口了解详情。"),
             ("Earning paused", "Your account cannot earn new points for now; you can still use the points you "
                                "have. Please contact the points service desk for details.")),
    Template("points.earning_resumed", _P, ("inbox",),
             ("积分获取已恢复", "您的账户已恢复获得积分。感谢您的理解与配合。"),
             ("Earning resumed", "Your account can earn points again. Thank you for your patience.")),
    # (ops.wechat templates)
    Template("account.wechat_bound", _P, ("inbox", "sms"),
             ("已绑定微信", "您的就诊账户已绑定微信,以后可以用微信登录。如果不是您本人操作,请尽快联系积分服务窗口。"),
             ("WeChat linked", "Your patient account is now linked to WeChat, so you can log in with WeChat. "
                               "If you did not do this, please contact the points service desk soon.")),
    Template("account.wechat_unbound", _P, ("inbox",),
             ("已解除微信绑定", "您的就诊账户已解除微信绑定。如需再用微信登录,可以重新绑定。"),
             ("WeChat unlinked", "Your patient account is no longer linked to WeChat. You can link it again "
                                 "at any time to log in with WeChat.")),
    # (ops.alliance templates)
    # (services.reports templates) plain words only: never the test, a value or a flag
    Template("reports.new", _P, _NO_SMS, ("新的检查报告", "您有一份新的检查报告,可在“我的报告”中查看。"),
             ("New report", "You have a new test report. You can see it in My reports.")),
    # (services.admissions templates) dates and times only: never the ward, the procedure or the exam
    Template("admissions.order_issued", _P, _NO_SMS,
             ("住院预约", "医生已为您开具住院预约,请在“我的住院与手术”中选择入院日期。"),
             ("Admission", "Your doctor has arranged an admission. Please choose your admission date under "
                           "My admissions.")),
    Template("admissions.booked", _P, _NO_SMS,
             ("入院日期已预约", "您的入院日期为 {admission_date},请于 {arrival_time} 前到院办理入院,并查看入院须知。"),
             ("Admission booked", "Your admission is on {admission_date}. Please arrive by {arrival_time} and "
                                  "read the instructions before you come.")),
    Template("admissions.booked.moved", _P, _NO_SMS,
             ("入院日期已改期", "您的入院日期已改为 {admission_date},请于 {arrival_time} 前到院办理入院。"),
             ("Admission moved", "Your admission is now on {admission_date}. Please arrive by {arrival_time}.")),
    Template("admissions.cancelled", _P, _NO_SMS, ("住院预约已取消", "您的住院预约已取消。"),
             ("Admission cancelled", "Your admission booking has been cancelled.")),
    Template("admissions.cancelled.hospital", _P, _NO_SMS,
             ("住院预约已取消", "因医院安排调整,您的住院预约已取消,医护人员会与您联系。"),
             ("Admission cancelled", "The hospital had to cancel your admission booking. Your care team will "
                                     "contact you.")),
    Template("surgery.scheduled", _P, _NO_SMS,
             ("手术日期已安排", "您的手术日期已安排为 {surgery_date},请在“我的住院与手术”中查看术前须知。"),
             ("Surgery date", "Your surgery is on {surgery_date}. See My admissions for how to prepare.")),
    Template("surgery.cancelled", _P, _NO_SMS, ("手术安排已取消", "您的手术安排已取消,医护人员会与您联系。"),
             ("Surgery cancelled", "Your surgery booking has been cancelled. Your care team will contact you.")),
    Template("previsit.booked", _P, _NO_SMS,
             ("检查与复诊已预约", "已为您预约检查({exam_time})和复诊({followup_time}),复诊时结果已出。"),
             ("Exam and follow-up booked", "Your exam ({exam_time}) and follow-up visit ({followup_time}) are "
                                           "booked; the result will be ready by the follow-up.")),
    # (services.consult templates) never the subject or a word of the conversation
    Template("consult.reply", _P, _NO_SMS, ("在线咨询有新回复", "您的在线咨询有新的回复,可在“在线咨询”中查看。"),
             ("New reply", "There is a new reply to your online consultation. You can read it in Consultations.")),
    Template("consult.closed", _P, _NO_SMS, ("在线咨询已结束", "您的在线咨询已结束,欢迎为本次服务评价。"),
             ("Consultation closed", "Your online consultation has closed. You are welcome to rate it.")),
    # (services.satisfaction templates) ids and figures only: never the complaint's words or a note
    Template("complaints.received", _P, _NO_SMS, ("投诉已收到", "您的投诉已收到,我们会尽快处理并答复您。"),
             ("Complaint received", "We have received your complaint and will handle it and reply soon.")),
    Template("complaints.closed", _P, _NO_SMS,
             ("投诉已处理", "您的投诉已处理完毕,处理结果可在“我的投诉”中查看。"),
             ("Complaint handled", "Your complaint has been handled. See the reply under My complaints.")),
    Template("improvements.assigned", Audience.staff, ("inbox",),
             ("改进事项", "有一条满意度改进事项分配给您(编号 {item_id})。"),
             ("Improvement item", "An improvement item was assigned to you (item {item_id}).")),
    Template("satisfaction.dropped", Audience.admins, ("inbox",),
             ("科室满意度下降", "{department}近{days}天满意度 {current} 分,较前{days}天的 {previous} 分下降 {drop} "
                              "分,请查看满意度看板(提醒编号 {alert_id})。"),
             ("Department satisfaction fell", "{department}: {current} over the last {days} days, down {drop} "
                                              "from {previous} (alert {alert_id}). See the satisfaction dashboard.")),
)}

_TIERS = {"standard": ("普通", "Standard"), "silver": ("银卡", "Silver"), "gold": ("金卡", "Gold")}
_KINDS = {"abnormal_reading": ("异常读数", "abnormal reading"), "abnormal_answer": ("异常答卷", "abnormal answer"),
          "overdue_followup": ("随访逾期", "overdue follow-up"), "inactivity": ("长期未活跃", "inactivity"),
          "critical_value": ("危急值", "critical value")}
_SEVERITIES = {"normal": ("一般", "normal"), "high": ("较高", "high"), "critical": ("紧急", "critical")}


def variant_of(topic: str, payload: dict[str, Any]) -> str | None:
    """The template variant a payload asks for (`variant`, or what the topic implies)."""
    if topic == "points.changed" and isinstance(payload.get("points"), int):
        return "earned" if payload["points"] > 0 else "deducted"
    if topic == "appointment.waitlist":
        return str(payload["event"]) if payload.get("event") else None
    variant = payload.get("variant")
    return str(variant) if variant else None


def _local(value: Any, tz: ZoneInfo, fmt: str) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return as_utc(parsed).astimezone(tz).strftime(fmt) if parsed.tzinfo else None


def params_of(payload: dict[str, Any], tz: ZoneInfo) -> dict[str, str]:
    """The placeholder values: the payload's scalars and values derived from them."""
    out = {k: str(v) for k, v in payload.items() if isinstance(v, str | int | float) and not isinstance(v, bool)}
    if isinstance(payload.get("points"), int):
        out["abs_points"] = str(abs(payload["points"]))
    for src, name, fmt in (("slot_start", "slot_time", "%Y-%m-%d %H:%M"), ("expires_at", "expires_date", "%Y-%m-%d"),
                           ("due_at", "due_date", "%Y-%m-%d"), ("scheduled_for", "scheduled_time", "%H:%M")):
        local = _local(payload.get(src), tz, fmt)
        if local is not None:
            out[name] = local
    for src, names in (("to", _TIERS), ("kind", _KINDS), ("severity", _SEVERITIES)):
        value = payload.get(src)
        if isinstance(value, str):
            zh, en = names.get(value, (value, value))
            out[f"{src}_zh"], out[f"{src}_en"] = zh, en
    return out


def fill(text: str, params: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m[1] not in params:
            raise RenderError(m[1])
        return params[m[1]]

    return PLACEHOLDER.sub(one, text)


def render(template: Template, params: dict[str, str]) -> Rendered:
    return Rendered(template.key, fill(template.zh[0], params), fill(template.zh[1], params),
                    fill(template.en[0], params), fill(template.en[1], params))


# --- hospital overrides -------------------------------------------------------------------


def _check_text(value: str) -> str:
    # only {name} placeholders: no attribute access, no format specs
    if _ANY_BRACE.search(PLACEHOLDER.sub("", value)):
        raise ValueError("only {name} placeholders are allowed")
    return value


class _Text(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=1000)

    def pair(self) -> tuple[str, str]:
        return _check_text(self.title), _check_text(self.body)


class _Override(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zh: _Text | None = None
    en: _Text | None = None
    channels: list[str] | None = Field(default=None, max_length=3)
    audience: Audience | None = None
    urgent: bool | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    templates: dict[str, _Override]


class TemplateFileError(Exception):
    """The hospital's template file cannot be used (named in the message, no content)."""


def _merge(key: str, base: Template | None, o: _Override) -> Template:
    if o.channels is not None and any(c not in CHANNELS for c in o.channels):
        raise TemplateFileError(f"{key}: channels must be among {', '.join(CHANNELS)}")
    if base is None:
        if o.audience is None or o.zh is None or o.en is None:
            raise TemplateFileError(f"{key}: a new template needs audience, zh and en")
        base = Template(key, o.audience, ("inbox",), o.zh.pair(), o.en.pair())
    try:
        return replace(base, zh=o.zh.pair() if o.zh else base.zh, en=o.en.pair() if o.en else base.en,
                       channels=tuple(o.channels) if o.channels is not None else base.channels,
                       audience=o.audience or base.audience, urgent=base.urgent if o.urgent is None else o.urgent)
    except ValueError as exc:
        raise TemplateFileError(f"{key}: {exc}") from None


@lru_cache(maxsize=4)
def _load(path: str, _mtime: float) -> dict[str, Template]:
    try:
        doc = _File.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise TemplateFileError(f"notification templates file {path} is invalid: {type(exc).__name__}") from None
    out = dict(BUILTIN)
    for key, override in doc.templates.items():
        out[key] = _merge(key, BUILTIN.get(key), override)
    return out


def registry(path: str = "") -> dict[str, Template]:
    """The templates in force: the built-in ones, overridden by the file at `path`."""
    if not path:
        return BUILTIN
    try:
        mtime = Path(path).stat().st_mtime
    except OSError:
        raise TemplateFileError(f"notification templates file {path} is missing") from None
    return _load(path, mtime)


def lookup(templates: dict[str, Template], topic: str, variant: str | None) -> Template | None:
    """`topic.variant` first, then `topic`; None for a topic without a template."""
    if variant:
        found = templates.get(f"{topic}.{variant}")
        if found is not None:
            return found
    return templates.get(topic)
