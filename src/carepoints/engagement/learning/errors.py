from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError


class ContentNotFoundError(NotFoundError):
    code = "engagement.content_not_found"
    message = "未找到该学习内容 / Education item not found"


class ContentNotPublishedError(ConflictError):
    code = "engagement.content_not_published"
    message = "该学习内容未发布 / The education item is not published"


class ContentRetiredError(ConflictError):
    code = "engagement.content_retired"
    message = "该学习内容已下线,不能修改 / The education item is retired and cannot change"


class AnswersMismatchError(AppError):
    code = "engagement.quiz_answers_invalid"
    status_code = 422
    message = "答案与测验题目不符 / The answers do not fit the quiz: {reason}"


class IdempotencyConflictError(ConflictError):
    code = "engagement.idempotency_conflict"
    message = "该幂等键已用于另一请求 / The idempotency key was used for a different request"


class LectureNotFoundError(NotFoundError):
    code = "engagement.lecture_not_found"
    message = "未找到该健康讲座 / Lecture not found"


class LectureFullError(ConflictError):
    code = "engagement.lecture_full"
    message = "讲座座位已满 / The lecture is full"


class RegistrationClosedError(ConflictError):
    code = "engagement.lecture_registration_closed"
    message = "讲座已开始或已结束,不能再报名 / The lecture has started or ended: registration is closed"


class RegistrationNotFoundError(NotFoundError):
    code = "engagement.registration_not_found"
    message = "未找到该报名 / Registration not found"


class AlreadyAttendedError(ConflictError):
    code = "engagement.lecture_already_attended"
    message = "已签到,不能取消报名 / Already signed in: the registration cannot be cancelled"


class SignInWindowError(ConflictError):
    code = "engagement.lecture_sign_in_closed"
    message = ("不在签到时间内(讲座开始前{before}分钟至结束后{after}分钟) / Outside the sign-in window "
               "({before} minutes before the start to {after} minutes after the end)")


class InstitutionNotFoundError(NotFoundError):
    code = "engagement.institution_not_found"
    message = "未找到该机构 / Institution not found"


class ReviewNotAttendedError(ConflictError):
    code = "engagement.review_not_attended"
    message = "只能评价已完成的就诊 / Only an attended visit can be reviewed"


class ReviewExistsError(ConflictError):
    code = "engagement.review_exists"
    message = "该次就诊已评价过 / This visit has already been reviewed"


class ReviewNotFoundError(NotFoundError):
    code = "engagement.review_not_found"
    message = "该次就诊尚无评价 / This visit has no review"


class ProfileValueInvalidError(AppError):
    code = "engagement.profile_value_invalid"
    status_code = 422
    message = "该档案项的内容格式不正确 / The value does not fit this profile item: {expected}"
