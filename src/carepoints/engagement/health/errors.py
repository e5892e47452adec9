from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError, PermissionDeniedError


class TakenInFutureError(AppError):
    code = "health.taken_at_in_future"
    status_code = 422
    message = "测量或服药时间不能晚于当前时间 / The time taken lies in the future"


class TakenTooLongAgoError(AppError):
    code = "health.taken_at_too_old"
    status_code = 422
    message = "记录时间过早,超出方案允许的范围 / The time taken is older than the programme allows"


class HealthConsentMissingError(PermissionDeniedError):
    """(trust.privacy) the PIPL purpose gate: one code for every purpose (`consent.missing`)."""

    code = "consent.missing"
    message = "患者未同意处理健康数据 / The patient has not consented to the processing of health data"


class DiagnosedInFutureError(AppError):
    code = "health.diagnosed_in_future"
    status_code = 422
    message = "诊断日期不能晚于今天 / diagnosed_on lies in the future"


class ConditionNotFoundError(NotFoundError):
    code = "health.condition_not_found"
    message = "该患者没有登记此慢病 / The patient has no such condition recorded"


class PlanNotFoundError(NotFoundError):
    code = "health.plan_not_found"
    message = "未找到该用药计划 / Medication plan not found"


class PlanStoppedError(ConflictError):
    code = "health.plan_stopped"
    message = "该用药计划已停止 / The medication plan is stopped"


class DoseNotPlannedError(ConflictError):
    code = "health.dose_not_planned"
    message = "该时间不是计划的服药时间 / That time is not a planned dose of the plan"


class NoDoseDueError(ConflictError):
    code = "health.no_dose_due"
    message = "当前时间附近没有计划的服药时间 / No planned dose lies near that time"


class DoseOutOfWindowError(ConflictError):
    code = "health.dose_out_of_window"
    message = "服药时间与计划时间相差过大 / The dose was taken too far from its planned time"
