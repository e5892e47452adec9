from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError


class PostNotFoundError(NotFoundError):
    code = "community.post_not_found"
    message = "未找到该帖子 / Post not found"


class ParentNotFoundError(AppError):
    code = "community.parent_not_found"
    status_code = 422
    message = "要回答的问题不存在或尚未公开 / The question to answer does not exist or is not public"


class PostDecidedError(ConflictError):
    code = "community.post_already_decided"
    message = "该帖子已审核 / The post has already been moderated"


class PhotoTaskNotFoundError(NotFoundError):
    code = "engagement.photo_task_not_found"
    message = "未找到该拍照打卡任务 / Photo task not found"


class PhotoTaskExistsError(ConflictError):
    code = "engagement.photo_task_exists"
    message = "任务代码已存在 / A photo task with this code exists"


class PhotoTaskInactiveError(ConflictError):
    code = "engagement.photo_task_inactive"
    message = "该任务已停用 / The photo task is not active"


class PhotoTaskNotForPatientError(AppError):
    code = "engagement.photo_task_not_for_patient"
    status_code = 422
    message = "该任务仅适用于儿童 / The photo task is for children only"


class PhotoNotFoundError(NotFoundError):
    code = "engagement.photo_not_found"
    message = "未找到该照片 / Photo not found"


class PhotoTooLargeError(AppError):
    code = "engagement.photo_too_large"
    status_code = 413
    message = "照片不能超过 {limit} 字节 / The photo must be at most {limit} bytes"


class PhotoTypeError(AppError):
    code = "engagement.photo_type"
    status_code = 415
    message = "仅支持 JPEG、PNG、WebP 图片 / Only JPEG, PNG and WebP images are accepted"


class PhotoInvalidError(AppError):
    code = "engagement.photo_invalid"
    status_code = 422
    message = "图片无法读取或尺寸过大 / The image cannot be read or is too large"


class PhotoDailyLimitError(ConflictError):
    code = "engagement.photo_daily_limit"
    message = "今天已完成该任务 {limit} 次 / This task was done {limit} time(s) today already"


class DoneByNotAllowedError(AppError):
    code = "engagement.photo_done_by_not_family"
    status_code = 403
    message = "代为打卡者须为同一家庭成员或已授权代办人 / Only a household member or an authorised proxy may check in"


class InviteCodeNotFoundError(NotFoundError):
    code = "engagement.invite_code_not_found"
    message = "邀请码无效 / Invite code not found"


class SelfInviteError(AppError):
    code = "engagement.invite_self"
    status_code = 422
    message = "不能使用自己的邀请码 / You cannot use your own invite code"


class SameHouseholdInviteError(AppError):
    code = "engagement.invite_same_household"
    status_code = 422
    message = "不能邀请同一家庭的成员 / You cannot invite a member of your household"


class InviteTooLateError(AppError):
    code = "engagement.invite_too_late"
    status_code = 422
    message = "仅限入组 {days} 天内的新患者 / Only for patients enrolled within {days} days"


class InviteExistsError(ConflictError):
    code = "engagement.invite_already_accepted"
    message = "已接受过邀请 / An invite was already accepted"
