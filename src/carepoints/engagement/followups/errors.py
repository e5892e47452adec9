from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError


class QuestionnaireNotFoundError(NotFoundError):
    code = "followups.questionnaire_not_found"
    message = "未找到该问卷 / Questionnaire not found"


class WrongPurposeError(ConflictError):
    code = "followups.wrong_purpose"
    message = "该问卷不能用于此处 / This questionnaire is not meant for this use"


class PlanNotFoundError(NotFoundError):
    code = "followups.plan_not_found"
    message = "未找到该随访计划 / Follow-up plan not found"


class StepNotFoundError(NotFoundError):
    code = "followups.step_not_found"
    message = "未找到该随访步骤 / Follow-up step not found"


class PlanConflictError(ConflictError):
    code = "followups.plan_conflict"
    message = "该就诊的随访计划已存在且内容不同 / A different plan exists for this encounter"


class PlanCancelledError(ConflictError):
    code = "followups.plan_cancelled"
    message = "该随访计划已取消 / The follow-up plan is cancelled"


class StepCompletedError(ConflictError):
    code = "followups.step_completed"
    message = "该随访已完成 / This follow-up is already answered"


class StepNotDueError(ConflictError):
    code = "followups.step_not_due"
    message = "该随访尚未到期 / This follow-up is not due yet"


class SurveyAnsweredError(ConflictError):
    code = "followups.survey_already_answered"
    message = "本月满意度调查已完成 / The satisfaction survey for this month is already answered"


class IdempotencyConflictError(ConflictError):
    code = "followups.idempotency_conflict"
    message = "该幂等键已用于不同的请求 / The idempotency key was used for a different request"


class InvalidAnswersError(AppError):
    code = "followups.invalid_answers"
    status_code = 422
    message = "问卷回答不符合要求 / The answers do not fit the questionnaire"


class OccurredInFutureError(AppError):
    code = "followups.occurred_in_future"
    status_code = 400
    message = "出院或手术日期不能晚于今天 / The discharge or surgery date cannot be in the future"


class PeriodClosedError(AppError):
    code = "followups.period_closed"
    status_code = 400
    message = "只能填写本月或上月的调查 / Only this month's or last month's survey may be answered"


class RecordedByRequiredError(AppError):
    code = "followups.recorded_by_required"
    status_code = 400
    message = "电话随访需注明记录的护士 / A phone follow-up names the staff member who recorded it"


class StaffNotFoundError(NotFoundError):
    code = "followups.staff_not_found"
    message = "未找到该工作人员 / Staff user not found"
