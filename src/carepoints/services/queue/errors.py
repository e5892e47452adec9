from __future__ import annotations

from carepoints.kit.errors import ConflictError, NotFoundError, PermissionDeniedError


class SessionNotFoundError(NotFoundError):
    code = "queue.session_not_found"
    message = "未找到该出诊时段 / Session not found"


class StaffNotFoundError(NotFoundError):
    code = "queue.staff_not_found"
    message = "未找到该工作人员 / Staff user not found"


class DepartmentNotFoundError(NotFoundError):
    code = "queue.department_not_found"
    message = "未找到该科室 / Department not found"


class NotYourDepartmentError(PermissionDeniedError):
    code = "queue.not_your_department"
    message = "您不属于该出诊时段的科室,不能叫号 / You do not work in this session's department"


class QueueEmptyError(ConflictError):
    code = "queue.empty"
    message = "当前没有已签到的候诊患者 / No checked-in patient is waiting"


class NothingCalledError(ConflictError):
    code = "queue.nothing_called"
    message = "当前没有正在叫号的患者 / No patient is being called"


class SessionClosedError(ConflictError):
    code = "queue.session_closed"
    message = "该出诊时段已停诊 / The session is cancelled"


class NotDeskRoleError(ConflictError):
    code = "queue.not_desk_role"
    message = "只有前台和护士可以被指派叫号 / Only front-desk and nurse users can be assigned to call"
