"""Typed application errors: a machine code, an HTTP status and a message.

Services raise these; one handler per surface renders them. Messages carry
ids only, never PII or health data."""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    code: ClassVar[str] = "app.error"
    status_code: ClassVar[int] = 400
    message: ClassVar[str] = "请求无法处理 / The request cannot be processed"

    def __init__(self, detail: str | None = None, *, fields: list[dict[str, Any]] | None = None,
                 **params: Any) -> None:
        self.detail = detail or self.message.format(**params)
        self.fields = fields
        self.params = params
        super().__init__(self.detail)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "detail": self.detail}
        if self.fields:
            body["fields"] = self.fields
        return body


class BadRequestError(AppError):
    code = "request.bad"
    status_code = 400


class ValidationFailedError(AppError):
    code = "request.invalid"
    status_code = 422
    message = "请求格式不正确 / The request is malformed"


class UnauthenticatedError(AppError):
    code = "auth.unauthenticated"
    status_code = 401
    message = "需要登录或有效的API密钥 / Authentication required"


class PermissionDeniedError(AppError):
    code = "auth.forbidden"
    status_code = 403
    message = "没有权限执行此操作 / Permission denied: {permission}"


class NotFoundError(AppError):
    code = "resource.not_found"
    status_code = 404
    message = "未找到 / Not found"


class ConflictError(AppError):
    code = "resource.conflict"
    status_code = 409
    message = "与现有数据冲突 / Conflicts with existing data"


class PayloadTooLargeError(AppError):
    code = "request.too_large"
    status_code = 413
    message = "请求过大 / Payload too large"
