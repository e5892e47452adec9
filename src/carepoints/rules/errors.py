from __future__ import annotations

from carepoints.kit.errors import AppError


class ProgrammeInvalidError(AppError):
    code = "rules.programme_invalid"
    status_code = 422
    message = "积分方案文件无效 / The programme file is invalid"


# --- governance ---

class DraftInvalidError(AppError):
    code = "programme.invalid"
    status_code = 422
    message = "积分方案草稿无效 / The programme draft is invalid"


class DraftNotFoundError(AppError):
    code = "programme.draft_not_found"
    status_code = 404
    message = "未找到积分方案草稿 / Programme draft not found"


class RewardsNotGovernedError(AppError):
    code = "programme.rewards_not_in_drafts"
    status_code = 400
    message = ("奖品请在积分商城管理中修改,方案草稿不含奖品变更 / "
               "Change rewards in the rewards catalogue, not in a draft")


class NoChangesError(AppError):
    code = "programme.no_changes"
    status_code = 400
    message = "草稿与当前方案相同 / The draft changes nothing"


class ActivationPastError(AppError):
    code = "programme.activate_at_past"
    status_code = 400
    message = "生效时间已过,请重新起草 / The activation time has passed; draft again"


class ActivationBeforeScheduledError(AppError):
    code = "programme.activate_before_scheduled"
    status_code = 409
    message = "生效时间早于已排定的版本 {version} / The activation is before scheduled version {version}"


class ApproverIsAuthorError(AppError):
    code = "programme.approver_is_author"
    status_code = 409
    message = "须由另一位管理员审核 / Another admin must decide on this draft"


class NotAuthorError(AppError):
    code = "programme.not_author"
    status_code = 409
    message = "只有起草人可以撤回草稿 / Only the author can withdraw a draft"


class DraftNotOpenError(AppError):
    code = "programme.draft_not_open"
    status_code = 409
    message = "草稿已处理({status}) / The draft is already {status}"


class DraftStaleError(AppError):
    code = "programme.draft_stale"
    status_code = 409
    message = ("草稿基于第 {base} 版,当前已是第 {current} 版,请重新起草 / "
               "The draft is based on version {base}; version {current} is newer, draft again")
