"""Typed errors of the recommendations domain (ids and codes only, never health data)."""

from __future__ import annotations

from carepoints.kit.errors import AppError


class RulesInvalidError(AppError):
    """The recommendation rules file does not validate: raised where it is loaded (at start-up
    or on first use), never for a request of a patient."""

    code = "recommend.rules_invalid"
    status_code = 500
    message = "推荐规则文件有误 / The recommendation rules file is invalid: {problem}"


class SwitchValueError(AppError):
    code = "recommend.invalid_switch"
    status_code = 422
    message = "请选择打开或关闭推荐 / Choose whether recommendations are on or off"
