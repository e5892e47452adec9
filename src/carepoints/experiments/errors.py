from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError


class ExperimentNotFoundError(NotFoundError):
    code = "experiments.not_found"
    message = "未找到该试验 / Experiment not found"


class EthicsRefRequiredError(AppError):
    code = "experiments.ethics_ref_required"
    status_code = 422
    message = "须填写伦理审批号 / An ethics approval reference (伦理审批号) is required"


class UnknownRuleError(AppError):
    code = "experiments.unknown_rule"
    status_code = 422
    message = "积分方案中没有生效的规则 {rule} / The programme has no active rule {rule}"


class BadOverrideError(AppError):
    code = "experiments.bad_override"
    status_code = 422
    message = "规则 {rule} 的调整无效:{reason_zh} / Invalid override of rule {rule}: {reason_en}"


class ExperimentCodeTakenError(ConflictError):
    code = "experiments.code_taken"
    message = "试验编码 {code} 已用于另一份设计 / Experiment code {code} is taken by a different design"


class NotDraftError(ConflictError):
    code = "experiments.not_draft"
    message = "只有草稿状态的试验可以开始(当前:{status}) / Only a draft can start (it is {status})"


class NotRunningError(ConflictError):
    code = "experiments.not_running"
    message = "只有进行中的试验可以停止(当前:{status}) / Only a running experiment can stop (it is {status})"


class OverlappingExperimentError(ConflictError):
    code = "experiments.overlap"
    message = ("试验 {other} 正在调整同样的规则({rules}) / "
               "Running experiment {other} already overrides rule(s) {rules}")


class UnknownOutcomeError(AppError):
    code = "experiments.unknown_outcome"
    status_code = 422
    message = ("结果指标应为 participation、checkin_completeness 或 no_show_rate / "
               "The outcome must be participation, checkin_completeness or no_show_rate")
