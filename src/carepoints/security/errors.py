from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, UnauthenticatedError


class BadCredentialsError(UnauthenticatedError):
    code = "auth.bad_credentials"
    message = "用户名或密码错误 / Wrong username or password"


class UnknownRoleError(AppError):
    code = "auth.unknown_role"
    status_code = 422
    message = "未知角色 / Unknown role: {role}"


class UsernameTakenError(ConflictError):
    code = "auth.username_taken"
    message = "用户名已存在 / Username already exists"


class SignatureRequiredError(UnauthenticatedError):
    code = "auth.signature_required"
    message = "该密钥要求签名请求,签名校验尚未开放 / This key requires signed requests, which are not accepted yet"
