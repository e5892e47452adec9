from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError, PermissionDeniedError


class ThreadNotFoundError(NotFoundError):
    code = "consult.not_found"
    message = "未找到该咨询 / Consultation not found"


class ImageNotFoundError(NotFoundError):
    code = "consult.image_not_found"
    message = "未找到该图片 / Image not found"


class AdviserNotFoundError(NotFoundError):
    code = "consult.adviser_not_found"
    message = "未找到该咨询人员或其暂不接受咨询 / This adviser was not found or takes no consultations now"


class DepartmentNotFoundError(NotFoundError):
    code = "consult.department_not_found"
    message = "未找到该科室 / Department not found"


class DisclaimerRequiredError(AppError):
    code = "consult.disclaimer_required"
    status_code = 422
    message = ("请先阅读并同意在线咨询须知(版本 {version}) / Read and accept the consultation notice (version "
               "{version}) first")


class TargetRequiredError(AppError):
    code = "consult.target_required"
    status_code = 422
    message = "请选择科室或一位咨询人员(二选一) / Choose a department or one adviser (one of the two)"


class NoAdvisersError(ConflictError):
    code = "consult.no_advisers"
    message = "该科室暂无可咨询的人员 / Nobody in this department takes consultations now"


class ConsentRequiredError(ConflictError):
    code = "consult.consent_required"
    message = ("在线咨询需要您同意“健康数据”用途 / Online consultation needs your consent to the health_data "
               "purpose")


class ThreadClosedError(ConflictError):
    code = "consult.closed"
    message = "该咨询已结束 / This consultation is closed"


class ThreadNotClosedError(ConflictError):
    code = "consult.not_closed"
    message = "咨询结束后才能评价 / A consultation can be rated once it is closed"


class AlreadyRatedError(ConflictError):
    code = "consult.already_rated"
    message = "该咨询已评价 / This consultation is rated already"


class AlreadyClaimedError(ConflictError):
    code = "consult.already_claimed"
    message = "该咨询已由其他人员接诊 / Another adviser has taken this consultation"


class NotAdviserError(PermissionDeniedError):
    code = "consult.not_adviser"
    message = "您不是该科室的在线咨询人员 / You do not answer consultations for this department"


class NotAssigneeError(PermissionDeniedError):
    code = "consult.not_assignee"
    message = "该咨询由其他人员负责 / Another adviser answers this consultation"


class ChangedError(ConflictError):
    code = "consult.changed"
    message = "该咨询刚刚有变化,请刷新后重试 / The consultation just changed: reload and try again"


class EmptyMessageError(AppError):
    code = "consult.empty_message"
    status_code = 422
    message = "请输入内容或选择一张图片 / Write a message or choose an image"


class TooManyImagesError(ConflictError):
    code = "consult.too_many_images"
    message = "每个咨询最多 {limit} 张图片 / At most {limit} images per consultation"


class ImageTooLargeError(AppError):
    code = "consult.image_too_large"
    status_code = 413
    message = "图片不能超过 {limit_mb} MB / The image must be at most {limit_mb} MB"


class IdempotencyConflictError(ConflictError):
    code = "consult.idempotency_conflict"
    message = ("该幂等键已用于不同的内容 / This idempotency key was already used for different content")
