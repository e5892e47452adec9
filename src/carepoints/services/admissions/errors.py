"""Admissions errors: every refusal a patient, a clinician or the HIS can meet, with its code.
Messages carry dates and numbers of the rules only, never a patient's data."""

from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError, PermissionDeniedError


class _InvalidRuleError(AppError):
    """A request that breaks a booking rule of its own fields (the date, the duration)."""

    status_code = 422


class WardNotFoundError(NotFoundError):
    code = "admissions.ward_not_found"
    message = "未找到该病区 / Ward not found"


class RoomNotFoundError(NotFoundError):
    code = "admissions.room_not_found"
    message = "未找到该手术间 / Operating room not found"


class OrderNotFoundError(NotFoundError):
    code = "admissions.order_not_found"
    message = "未找到该住院预约 / Admission order not found"


class SurgeryNotFoundError(NotFoundError):
    code = "admissions.surgery_not_found"
    message = "未找到该手术申请 / Surgery request not found"


class PrevisitNotFoundError(NotFoundError):
    code = "admissions.previsit_not_found"
    message = "未找到该预就诊安排 / Pre-visit order not found"


class DepartmentNotFoundError(NotFoundError):
    code = "admissions.department_not_found"
    message = "未找到该科室 / Department not found"


class ClinicianNotFoundError(NotFoundError):
    code = "admissions.clinician_not_found"
    message = "未找到该医生 / Clinician not found"


class ResourceNotFoundError(NotFoundError):
    code = "admissions.resource_not_found"
    message = "未找到该检查设备 / Exam resource not found"


class DuplicateCodeError(ConflictError):
    code = "admissions.duplicate_code"
    message = "该科室已有相同编码 / This code is already used in the department"


class IdempotencyConflictError(ConflictError):
    code = "admissions.idempotency_conflict"
    message = "该幂等键已用于另一项请求 / This idempotency key was used for a different request"


class PatientInactiveError(ConflictError):
    code = "admissions.patient_inactive"
    message = "该患者账户已停用,不能预约 / This patient's account is not active"


class OrderExistsError(ConflictError):
    code = "admissions.order_exists"
    message = "该患者在此病区已有未完成的住院预约 / The patient already has an open admission order for this ward"


class IllegalTransitionError(ConflictError):
    code = "admissions.illegal_transition"
    message = "当前状态({status})不能{action} / Not possible in status {status}: {action}"


class OrderExpiredError(ConflictError):
    code = "admissions.order_expired"
    message = "该住院证已过有效期({valid_until}),请联系医生重新开具 / The order expired on {valid_until}"


class DayFullError(ConflictError):
    code = "admissions.day_full"
    message = "该日床位已约满,请选择其他日期 / No bed left on that day: choose another date"


class ChangeTooLateError(ConflictError):
    code = "admissions.change_too_late"
    message = ("入院前{hours}小时内不能在线改期或取消,请联系病区 / Within {hours} hours of admission changes go "
               "through the ward")


class RescheduleLimitError(ConflictError):
    code = "admissions.reschedule_limit"
    message = "最多可改期{limit}次,请联系病区 / At most {limit} reschedules: please contact the ward"


class NotAdmissionDayError(ConflictError):
    code = "admissions.not_admission_day"
    message = "只能在入院当天({day})办理入院 / Admission is confirmed on the admission day ({day})"


class CapacityBelowBookedError(ConflictError):
    code = "admissions.capacity_below_booked"
    message = "该日已预约{booked}人,容量不能低于此数 / {booked} already booked: the capacity cannot be lower"


class RoomFullError(ConflictError):
    code = "admissions.room_full"
    message = "该手术间当日时长或台数已满 / The room has no time or case left that day"


class RoomKindError(ConflictError):
    code = "admissions.room_kind"
    message = "该手术间不接受此类手术 / This room does not take this kind of surgery"


class ChecksMissingError(ConflictError):
    code = "admissions.checks_missing"
    message = ("日间手术须在手术日前完成术前检查和麻醉评估 / A day surgery needs the pre-op exam and the "
               "anaesthesia assessment recorded before its date")


class BeforeAdmissionError(ConflictError):
    code = "admissions.before_admission"
    message = "手术日期不能早于入院日期({day}) / The surgery cannot be before the admission date ({day})"


class NotSurgeryDayError(ConflictError):
    code = "admissions.not_surgery_day"
    message = "手术日({day})之前不能登记完成 / A surgery is recorded done from its day ({day})"


class NoExamSessionError(ConflictError):
    code = "admissions.no_exam_session"
    message = "{days}天内该检查没有可预约的号源 / No free exam slot within {days} days"


class NoFollowupSessionError(ConflictError):
    code = "admissions.no_followup_session"
    message = ("结果预计{ready}出来,其后{days}天内该医生没有可预约的出诊 / The result is expected at {ready}: "
               "no free session of the clinician starts after it within {days} days")


class NotYourClinicianError(PermissionDeniedError):
    code = "admissions.not_your_clinician"
    message = "医生只能为本人开具预就诊 / A clinician orders pre-visit exams for their own follow-up only"


class DateOutsideWindowError(_InvalidRuleError):
    code = "admissions.date_outside_window"
    message = "请选择{first}至{last}之间的日期 / Choose a date from {first} to {last}"


class NotWorkingDayError(_InvalidRuleError):
    code = "admissions.not_working_day"
    message = "择期和日间手术只安排在工作日 / Elective and day surgery are scheduled on working days only"


class SurgeryTooEarlyError(_InvalidRuleError):
    code = "admissions.surgery_too_early"
    message = "最早可安排在{earliest} / The earliest date is {earliest}"


class SurgeryTooFarError(_InvalidRuleError):
    code = "admissions.surgery_too_far"
    message = "最多可提前{days}天安排 / At most {days} days ahead"


class DaySurgeryTooLongError(_InvalidRuleError):
    code = "admissions.day_surgery_too_long"
    message = "日间手术预计时长不能超过{minutes}分钟 / A day surgery takes at most {minutes} minutes"
