from __future__ import annotations

from carepoints.kit.errors import ConflictError, NotFoundError


class RunNotFoundError(NotFoundError):
    code = "forecast.run_not_found"
    message = "未找到该预测 / Forecast run not found"


class SuggestionNotFoundError(NotFoundError):
    code = "forecast.suggestion_not_found"
    message = "未找到该号源建议 / Capacity suggestion not found"


class SuggestionSupersededError(ConflictError):
    code = "forecast.suggestion_superseded"
    message = ("该建议已被更新的预测取代,请按最新预测操作 / A newer forecast replaced this suggestion: "
               "use the latest one")


class NothingToApplyError(ConflictError):
    code = "forecast.nothing_to_apply"
    message = "该建议与当前号源数量相同,无需应用 / This suggestion equals the current capacity: nothing to apply"


class NoHistoryError(ConflictError):
    code = "forecast.no_history"
    message = ("没有可用于预测的预约记录(需要至少 {days} 天) / There is no booking history to forecast from "
               "(at least {days} days are needed)")
