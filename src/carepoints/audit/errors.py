from __future__ import annotations

from carepoints.kit.errors import BadRequestError, NotFoundError


class AuditPatientNotFoundError(NotFoundError):
    code = "patients.not_found"
    message = "未找到该患者 / Patient not found"


class BadAuditCursorError(BadRequestError):
    code = "audit.bad_cursor"
    message = "分页游标无效 / The page cursor is not valid"
