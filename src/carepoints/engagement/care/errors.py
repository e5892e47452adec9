from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError


class AlertNotFoundError(NotFoundError):
    code = "care.alert_not_found"
    message = "未找到该关怀提醒 / Care alert not found"


class AlertClosedError(ConflictError):
    code = "care.alert_resolved"
    message = "该提醒已处理完毕 / The alert is already resolved"


class StaffNotFoundError(AppError):
    code = "care.staff_not_found"
    status_code = 404
    message = "未找到该工作人员 / Staff user not found"
