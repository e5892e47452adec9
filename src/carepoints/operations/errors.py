"""Operations errors: each area keeps its own section (adjustments, appeals, fraud)."""

from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError

# --- fraud ---

class FraudSignalNotFoundError(NotFoundError):
    code = "fraud.signal_not_found"
    message = "未找到该风险信号 / Fraud signal not found"


class FraudSignalReviewedError(ConflictError):
    code = "fraud.already_reviewed"
    message = "该风险信号已处理 / This fraud signal has already been reviewed"


class FraudEventNotInSignalError(AppError):
    code = "fraud.event_not_in_signal"
    status_code = 400
    message = "所选事件不属于该风险信号 / An event is not part of this signal"


class FraudPatientNotInSignalError(AppError):
    code = "fraud.patient_not_in_signal"
    status_code = 400
    message = "所选患者不属于该风险信号 / A patient is not part of this signal"


class FraudNothingToActOnError(AppError):
    code = "fraud.nothing_to_act_on"
    status_code = 400
    message = "该风险信号没有可处理的患者或事件 / This signal names no patient or event to act on"


# --- appeals ---

class AppealNotFoundError(NotFoundError):
    code = "appeals.not_found"
    message = "未找到该申诉 / Appeal not found"


class AppealSubjectNotFoundError(NotFoundError):
    """The penalty event or suspension does not exist or is not the patient's (ids cannot be probed)."""

    code = "appeals.subject_not_found"
    message = "未找到该患者的这条扣分或暂停记录 / No such penalty or suspension for this patient"


class AppealNotPenaltyError(ConflictError):
    code = "appeals.not_a_penalty"
    message = "该事件没有扣分,无法申诉 / This event deducted no points and cannot be appealed"


class AppealSubjectRequiredError(AppError):
    code = "appeals.subject_required"
    status_code = 400
    message = "请指定一条扣分事件或一次暂停(只能选一项) / Name exactly one of event_id or suspension_id"


class AppealNoteRequiredError(AppError):
    code = "appeals.note_required"
    status_code = 400
    message = "选择“其他”原因时请填写说明 / A note is required when the reason is other"


class AppealAlreadyOpenError(ConflictError):
    code = "appeals.already_open"
    message = "这条记录已有一项申诉正在处理 / An appeal of this is already open"


class AppealAlreadyDecidedError(ConflictError):
    code = "appeals.already_decided"
    message = "这条记录的申诉已有处理结果 / An appeal of this has already been decided"


class AppealTooLateError(ConflictError):
    code = "appeals.too_late"
    message = "已超过 {days} 天的申诉期限 / The {days}-day appeal window has passed"


class AppealDeciderError(AppError):
    """Deciding needs a staff member other than the patient and than whoever filed it."""

    code = "appeals.decider_not_allowed"
    status_code = 403
    message = "提交申诉的人不能处理同一申诉 / Whoever filed an appeal cannot decide it"


# --- adjustments ---

class AdjustmentNotFoundError(NotFoundError):
    code = "adjustments.not_found"
    message = "未找到该积分调整 / Adjustment not found"


class AdjustmentReasonError(AppError):
    code = "adjustments.unknown_reason"
    status_code = 400
    message = "调整原因代码不在方案的原因列表中 / The reason code is not one of the programme's reasons"


class AdjustmentApproverIsMakerError(ConflictError):
    code = "adjustments.approver_is_maker"
    message = ("发起人不能审批自己的积分调整,请由另一位工作人员处理 / "
               "The maker cannot approve or reject their own adjustment")


class AdjustmentNotPendingError(ConflictError):
    code = "adjustments.not_pending"
    message = "该积分调整已处理 / This adjustment has already been decided"


class AdjustmentExpiredError(ConflictError):
    code = "adjustments.expired"
    message = "该积分调整已过期,请重新发起 / This adjustment has expired; please make it again"


class AdjustmentDailyCapError(ConflictError):
    code = "adjustments.daily_cap_reached"
    message = "已超过今日可调整的积分上限 / This adjustment would pass your daily adjustment limit"


class AdjustmentIdempotencyError(ConflictError):
    code = "adjustments.idempotency_conflict"
    message = "该幂等键已用于另一笔不同的调整 / This idempotency key was used for a different adjustment"


class AdjustmentPatientInactiveError(ConflictError):
    code = "adjustments.patient_inactive"
    message = "该患者账户当前不可调整积分 / This patient's account cannot be adjusted in its current status"


class AdjustmentStaffOnlyError(AppError):
    code = "adjustments.staff_only"
    status_code = 403
    message = "仅工作人员可以调整积分 / Only staff may adjust points"
