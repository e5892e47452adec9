"""Scheduling errors: every refusal a patient or a hospital system can meet, with its code."""

from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError


class SessionNotFoundError(NotFoundError):
    code = "scheduling.session_not_found"
    message = "未找到该出诊安排 / Session not found"


class TemplateNotFoundError(NotFoundError):
    code = "scheduling.template_not_found"
    message = "未找到该排班模板(或已停用) / Session template not found (or no longer active)"


class SlotNotFoundError(NotFoundError):
    code = "scheduling.slot_not_found"
    message = "未找到该号源 / Slot not found"


class AppointmentNotFoundError(NotFoundError):
    code = "scheduling.appointment_not_found"
    message = "未找到该预约 / Appointment not found"


class DepartmentNotFoundError(NotFoundError):
    code = "scheduling.department_not_found"
    message = "未找到该科室 / Department not found"


class ClinicianNotFoundError(NotFoundError):
    code = "scheduling.clinician_not_found"
    message = "未找到该医生 / Clinician not found"


class InstitutionNotFoundError(NotFoundError):
    code = "scheduling.institution_not_found"
    message = "未找到该机构 / Institution not found"


class ResourceNotFoundError(NotFoundError):
    code = "scheduling.resource_not_found"
    message = "未找到该检查设备 / Resource not found"


class SessionFullError(ConflictError):
    code = "scheduling.session_full"
    message = "该时段号源已约满 / No free slot left in this session for this channel"


class SlotTakenError(ConflictError):
    code = "scheduling.slot_taken"
    message = "该号源已被预约 / This slot is already booked"


class SlotNotAvailableError(ConflictError):
    code = "scheduling.slot_not_available"
    message = "该号源不对此渠道开放 / This slot is not open to this channel"


class NotOpenError(ConflictError):
    code = "scheduling.not_open"
    message = "该时段尚未开放预约,开放时间 {release_at} / Booking opens at {release_at}"


class SessionStartedError(ConflictError):
    code = "scheduling.session_closed"
    message = "该时段已开始或已结束,不能预约 / The slot has already started"


class SessionCancelledError(ConflictError):
    code = "scheduling.session_cancelled"
    message = "该出诊已停诊 / This session has been cancelled by the hospital"


class DailyLimitError(ConflictError):
    code = "scheduling.daily_limit"
    message = "同一天最多预约{limit}个号 / At most {limit} active bookings per day"


class ClinicianDayLimitError(ConflictError):
    code = "scheduling.clinician_limit"
    message = "同一天同一医生只能预约一个号 / One active booking per clinician per day"


class PatientInactiveError(ConflictError):
    code = "scheduling.patient_inactive"
    message = "该患者账户不可预约 / This patient's account cannot book"


class ReferralRequiredError(AppError):
    code = "request.invalid"
    status_code = 422
    message = "转诊预约需要 referral_id / A referral booking needs referral_id"


class IdempotencyConflictError(ConflictError):
    code = "scheduling.idempotency_conflict"
    message = "相同幂等键的预约内容不同 / Same idempotency key with a different booking"


class IllegalTransitionError(ConflictError):
    code = "scheduling.illegal_transition"
    message = "预约当前状态为{status},不能{action} / The appointment is {status}: cannot {action}"


class CancelTooLateError(ConflictError):
    code = "scheduling.cancel_too_late"
    message = "就诊前{hours}小时内不能在线取消,请联系医院 / Cancellation closes {hours} h before the slot"


class CheckInNotOpenError(ConflictError):
    code = "scheduling.check_in_not_open"
    message = "签到尚未开始,就诊前{minutes}分钟起可签到 / Check-in opens {minutes} minutes before the slot"


class CheckInClosedError(ConflictError):
    code = "scheduling.check_in_closed"
    message = "该出诊已结束,不能签到 / The session is over: check-in is closed"


class DuplicateCodeError(ConflictError):
    code = "scheduling.duplicate_code"
    message = "编码已存在 / This code already exists"


class WaitlistEntryNotFoundError(NotFoundError):
    code = "scheduling.waitlist_not_found"
    message = "未找到该候补记录 / Waitlist entry not found"


class NotFullError(ConflictError):
    code = "scheduling.not_full"
    message = "该时段仍有号源,请直接预约 / The session has free slots: book one instead"


class AlreadyWaitingError(ConflictError):
    code = "scheduling.already_waiting"
    message = "已在该时段的候补队列中 / Already on this session's waitlist"


class AlreadyBookedError(ConflictError):
    code = "scheduling.already_booked"
    message = "已预约该时段 / Already booked in this session"


class OfferExpiredError(ConflictError):
    code = "scheduling.offer_expired"
    message = "候补号源确认已超时,已顺延给下一位 / The offer has lapsed and passed to the next patient"


class WaitlistStateError(ConflictError):
    code = "scheduling.waitlist_state"
    message = "该候补记录当前状态不允许此操作 / Not possible in the waitlist entry's current state"


class AttendTooEarlyError(ConflictError):
    code = "scheduling.attend_too_early"
    message = ("就诊时间未到,就诊前{minutes}分钟起才能记录就诊 / "
               "Too early to record the visit: from {minutes} minutes before the slot")


class NotOwnSessionError(AppError):
    code = "scheduling.not_own_session"
    status_code = 403
    message = "只能在本人出诊时段内预约复诊 / Follow-ups are booked in your own sessions only"


class PackageNotFoundError(NotFoundError):
    code = "scheduling.package_not_found"
    message = "未找到该体检套餐 / Checkup package not found"


class CheckupBookingNotFoundError(NotFoundError):
    code = "scheduling.checkup_not_found"
    message = "未找到该体检预约 / Checkup booking not found"


class CheckupFullError(ConflictError):
    code = "scheduling.checkup_full"
    message = "该日体检名额已满 / No checkup places left that day"


class CheckupDayError(ConflictError):
    code = "scheduling.checkup_day"
    message = "体检日期须在今天到{days}天内 / The checkup day must be between today and {days} days ahead"


class AlreadyBookedCheckupError(ConflictError):
    code = "scheduling.checkup_already_booked"
    message = "当天已预约该体检套餐 / This package is already booked for that day"


class CheckupNotTodayError(ConflictError):
    code = "scheduling.checkup_not_today"
    message = "体检日期未到,不能记录完成 / The checkup's day has not come yet"


# --- alliance (ops.alliance) ---
class AllianceCodeTakenError(ConflictError):
    code = "alliance.code_taken"
    message = "医联体编码已存在 / An alliance with this code already exists"


class SystemTakenError(ConflictError):
    code = "alliance.system_taken"
    message = "该标识体系已属于另一机构 / This identifier system belongs to another institution"
