from __future__ import annotations

from carepoints.kit.errors import ConflictError, NotFoundError


class ItemNotFoundError(NotFoundError):
    code = "satisfaction.item_not_found"
    message = "未找到该改进事项 / Improvement item not found"


class ComplaintNotFoundError(NotFoundError):
    code = "satisfaction.complaint_not_found"
    message = "未找到该投诉 / Complaint not found"


class AlertNotFoundError(NotFoundError):
    code = "satisfaction.alert_not_found"
    message = "未找到该满意度提醒 / Satisfaction alert not found"


class AppointmentNotFoundError(NotFoundError):
    code = "satisfaction.appointment_not_found"
    message = "未找到该患者的这次就诊 / This visit of the patient was not found"


class DepartmentNotFoundError(NotFoundError):
    code = "satisfaction.department_not_found"
    message = "未找到该科室 / Department not found"


class AssigneeNotFoundError(NotFoundError):
    code = "satisfaction.assignee_not_found"
    message = "未找到可处理改进事项的在岗工作人员 / No active staff user who handles improvement items has this id"


class DepartmentMismatchError(ConflictError):
    code = "satisfaction.department_mismatch"
    message = "所选科室与该次就诊的科室不一致 / The department is not the department of that visit"


class ItemClosedError(ConflictError):
    code = "satisfaction.item_closed"
    message = "该改进事项已关闭 / The improvement item is already closed"


class AlertAcknowledgedError(ConflictError):
    code = "satisfaction.alert_acknowledged"
    message = "该提醒已确认 / The alert is already acknowledged"


class IdempotencyConflictError(ConflictError):
    code = "satisfaction.idempotency_conflict"
    message = ("同一幂等键已用于内容不同的投诉 / The idempotency key was already used for a different "
               "complaint")
