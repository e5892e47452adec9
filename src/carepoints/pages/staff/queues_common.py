"""What the staff console's review queues share: the words for codes, patients shown by their
masked name, the message after a plain-form decision, and reading a dynamic form."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from carepoints.kit.errors import AppError
from carepoints.pages.web import Page
from carepoints.patients import service as patients

# code → (zh, en), by group; an unknown code is shown as is
LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "adjustment_status": {"pending": ("待审批", "Pending"), "posted": ("已入账", "Posted"),
                          "rejected": ("已驳回", "Rejected"), "expired": ("已过期", "Expired")},
    "appeal_status": {"open": ("待处理", "Open"), "upheld": ("维持原判", "Upheld"),
                      "reversed": ("已撤销扣分", "Reversed")},
    "appeal_reason": {"hospitalised": ("住院", "In hospital"),
                      "session_cancelled_unrecorded": ("停诊未记录", "Session cancelled, not recorded"),
                      "wrong_patient": ("记错了人", "Wrong patient"), "other": ("其他", "Other")},
    "appeal_subject": {"penalty": ("扣分", "Penalty"), "suspension": ("暂停获取积分", "Suspension of earning")},
    "event_type": {"appointment.no_show": ("爽约", "No-show"), "offline.penalty": ("线下扣分", "Offline deduction")},
    "duplicate_reason": {"national_id": ("身份证号相同", "Same national id"),
                         "name_birth_phone": ("姓名、出生日期和手机号相同", "Same name, birth date and phone")},
    "duplicate_status": {"open": ("待审核", "Open"), "dismissed": ("不是同一人", "Dismissed"),
                         "merged": ("已合并", "Merged")},
    "verification": {"verified": ("已实名", "Verified"), "mismatch": ("实名不符", "Mismatch"),
                     "unverified": ("未实名", "Unverified")},
    "patient_status": {"active": ("正常", "Active"), "merged": ("已合并", "Merged"), "closed": ("已销户", "Closed"),
                       "deceased": ("已故", "Deceased")},
    "sex": {"male": ("男", "Male"), "female": ("女", "Female"), "other": ("其他", "Other"),
            "unknown": ("未知", "Unknown")},
    "alert_kind": {"abnormal_reading": ("读数异常", "Abnormal reading"),
                   "abnormal_answer": ("随访回答异常", "Abnormal answer"),
                   "overdue_followup": ("随访逾期", "Overdue follow-up"),
                   "inactivity": ("长期未活动", "Inactive"), "critical_value": ("危急值", "Critical value")},
    "severity": {"normal": ("一般", "Normal"), "high": ("较高", "High"), "critical": ("紧急", "Critical")},
    "alert_status": {"open": ("待处理", "Open"), "acknowledged": ("处理中", "Acknowledged"),
                     "resolved": ("已完成", "Resolved")},
    "resolution": {"contacted": ("已联系患者", "Contacted the patient"),
                   "referred": ("已转介医生", "Referred to a clinician"),
                   "no_action": ("无需处理", "No action needed"), "false_alarm": ("误报", "False alarm")},
    "step_state": {"due": ("今日应随访", "Due"), "overdue": ("已逾期", "Overdue"), "upcoming": ("未到期", "Upcoming"),
                   "completed": ("已完成", "Completed"), "cancelled": ("已取消", "Cancelled")},
    "channel": {"phone": ("电话", "Phone"), "sms": ("短信", "SMS"), "app": ("应用内", "In the app")},
    "trigger": {"discharge": ("出院", "Discharge"), "surgery": ("手术", "Surgery")},
    "post_status": {"pending": ("待审核", "Pending"), "approved": ("已通过", "Approved"),
                    "rejected": ("已驳回", "Rejected")},
    "post_kind": {"post": ("帖子", "Post"), "answer": ("回答", "Answer")},
    "reject_reason": {"spam": ("广告或垃圾信息", "Spam"),
                      "medical_misinformation": ("不实医疗信息", "Medical misinformation"),
                      "privacy": ("涉及隐私", "Privacy"), "offensive": ("不文明内容", "Offensive"),
                      "off_topic": ("与主题无关", "Off topic"), "other": ("其他", "Other")},
    "fraud_kind": {"velocity": ("短时高频", "Velocity"), "repeated_reading": ("重复读数", "Repeated reading"),
                   "implausible_reading": ("不合理读数", "Implausible reading"),
                   "staff_outlier": ("工作人员录入异常", "Staff outlier"),
                   "shared_phone": ("多人共用手机", "Shared phone"),
                   "shared_device": ("多人共用设备", "Shared device")},
    "detail_key": {"adjustments": ("调整次数", "Adjustments"), "daily_threshold": ("每日阈值", "Daily threshold"),
                   "device_kind": ("设备类型", "Device kind"), "entries": ("录入次数", "Entries"),
                   "events": ("事件数", "Events"), "jumps": ("跳变次数", "Jumps"), "kind": ("类型", "Kind"),
                   "median": ("中位数", "Median"), "minutes": ("时长(分钟)", "Minutes"),
                   "patients": ("患者数", "Patients"), "readings": ("读数次数", "Readings"),
                   "rule": ("规则", "Rule"), "rules": ("规则", "Rules"), "run": ("连续次数", "Run"),
                   "staff_count": ("工作人员数", "Staff"), "threshold": ("阈值", "Threshold"),
                   "count": ("次数", "Count")},
    "fraud_status": {"open": ("待处理", "Open"), "dismissed": ("已排除", "Dismissed"),
                     "actioned": ("已处理", "Actioned")},
    "fraud_action": {"dismiss": ("排除", "Dismiss"), "freeze": ("冻结获取积分", "Freeze earning"),
                     "revoke_events": ("撤销相关事件", "Revoke events"),
                     "freeze_and_revoke": ("冻结并撤销", "Freeze and revoke")},
}

# ?done=<code> after a plain-form decision (redirect after post) → the message shown
DONE: dict[str, tuple[str, str]] = {
    "proposed": ("积分调整已提交,等待另一位工作人员审批", "Adjustment submitted: another staff member approves it"),
    "posted": ("积分调整已入账", "Adjustment posted"),
    "approved": ("已批准,积分已入账", "Approved: the points are posted"),
    "rejected": ("已驳回", "Rejected"),
    "upheld": ("申诉已处理:维持原判", "Appeal decided: upheld"),
    "reversed": ("申诉已处理:已撤销扣分并退回积分", "Appeal decided: the penalty is reversed"),
    "dismissed": ("已标记为不是同一人", "Dismissed: two different people"),
    "merged": ("档案已合并", "The records are merged"),
    "acknowledged": ("已接手处理", "Acknowledged"),
    "resolved": ("提醒已处理完毕", "Alert resolved"),
    "recorded": ("随访结果已记录", "Follow-up recorded"),
    "recorded_abnormal": ("随访结果已记录,部分回答异常,已通知医护团队", "Follow-up recorded: abnormal answers "
                          "were sent to the care team"),
    "post_approved": ("已通过,作者获得社区奖励", "Approved: the author earns the community reward"),
    "post_rejected": ("已驳回,作者会收到通知", "Rejected: the author is told"),
    "reviewed": ("风险信号已处理", "Signal reviewed"),
}

FORM_ERRORS = (400, 404, 409, 422)  # what a form shows next to itself instead of an error page


def label(page: Page, group: str, code: str | None) -> str:
    if code is None:
        return ""
    words = LABELS.get(group, {}).get(code)
    return page.tr(*words) if words else code


def done(page: Page, code: str | None) -> str | None:
    words = DONE.get(code or "")
    return page.tr(*words) if words else None


def names(session: Session, patient_ids: Iterable[str | None]) -> dict[str, str]:
    """Patient id → masked name (staff lists never show the full name)."""
    out: dict[str, str] = {}
    for pid in {p for p in patient_ids if p}:
        try:
            out[pid] = patients.display_name(session, pid, masked=True)
        except AppError:
            out[pid] = "?"
    return out


def context(page: Page, **values: Any) -> dict[str, Any]:
    """What every queue template gets: `label(group, code)`, the flash after a redirect."""
    flash = done(page, page.request.query_params.get("done"))
    return {"label": lambda group, code: label(page, group, code), "flash": flash, "message": flash, "kind": "ok",
            **values}


async def form_data(request: Request) -> FormData:
    """The posted form as is (pages whose fields depend on the record, e.g. a questionnaire)."""
    return await request.form()
