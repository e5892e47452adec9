from __future__ import annotations

from typing import Any

from carepoints.kit.errors import AppError, ConflictError, NotFoundError, UnauthenticatedError


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
    message = ("该密钥要求签名请求(X-Carepoints-Timestamp、X-Carepoints-Nonce、X-Carepoints-Signature)"
               " / This key requires signed requests (X-Carepoints-Timestamp, -Nonce, -Signature)")


# (trust.signing) signed requests, security.signing
class SignatureInvalidError(UnauthenticatedError):
    code = "auth.signature_invalid"
    message = "请求签名无效 / The request signature is invalid"


class SignatureExpiredError(UnauthenticatedError):
    code = "auth.signature_expired"
    message = "请求时间戳不在5分钟有效期内 / The request timestamp is outside the 5-minute window"


class NonceReusedError(UnauthenticatedError):
    code = "auth.nonce_reused"
    message = "该随机数已被使用,请重新签名 / This nonce was already used; sign the request again with a new one"


# (trust.auth) staff lockout, sessions, TOTP; API key expiry; patient one-time-code login


class AccountLockedError(AppError):
    code = "auth.locked"
    status_code = 423
    message = ("登录失败次数过多,账户已暂时锁定,请 {minutes} 分钟后再试"
               " / Too many failed logins; the account is locked for {minutes} min")


class SessionExpiredError(UnauthenticatedError):
    code = "auth.session_expired"
    message = "会话已超时或已退出,请重新登录 / The session has timed out or ended; please log in again"


class OtpRequiredError(UnauthenticatedError):
    code = "auth.otp_required"
    message = "管理员登录需要动态验证码 / An administrator login needs the authenticator code (otp)"


class OtpInvalidError(UnauthenticatedError):
    code = "auth.otp_invalid"
    message = "动态验证码错误或已使用 / The authenticator code is wrong or was already used"


class KeyExpiredError(UnauthenticatedError):
    code = "auth.key_expired"
    message = "API密钥已过期 / The API key has expired"


class StaffNotFoundError(NotFoundError):
    code = "staff.not_found"
    message = "未找到该员工 / Staff user not found"


class ApiKeyNotFoundError(NotFoundError):
    code = "auth.key_not_found"
    message = "未找到该API密钥 / API key not found"


class CodeInvalidError(UnauthenticatedError):
    code = "auth.code_invalid"
    message = "验证码错误或已过期 / The code is wrong or has expired"


class CodeAttemptsExceededError(UnauthenticatedError):
    code = "auth.code_attempts_exceeded"
    message = "验证码尝试次数过多,请重新获取 / Too many wrong codes; request a new one"


class ChoosePatientError(ConflictError):
    code = "auth.choose_patient"
    message = "该手机号关联多位就诊人,请选择 / Several patients use this phone; choose one (patient_id)"

    def __init__(self, choices: list[dict[str, str]]) -> None:
        super().__init__()
        self.choices = choices

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["choices"] = self.choices
        return body


class LoginRequestInvalidError(AppError):
    code = "auth.login_invalid"
    status_code = 422
    message = "请提供用户名和密码,或手机号和验证码 / Give username and password, or phone and code"


class PatientOutOfReachError(NotFoundError):
    """A patient a patient token may not reach: answered as not found, so ids cannot be probed."""

    code = "patients.not_found"
    message = "未找到该患者 / Patient not found"


class DevInboxOffError(NotFoundError):
    code = "resource.not_found"
    message = "未找到 / Not found"


class NoPatientForPhoneError(NotFoundError):
    code = "auth.no_patient"
    message = "该手机号尚未登记就诊人,请先到医院登记 / No patient is registered with this phone yet"


# (ops.alliance) institution scope of bound keys and staff, security.scope
class IdentifierOutOfScopeError(AppError):
    code = "alliance.identifier_out_of_scope"
    status_code = 403
    message = ("该标识体系不属于本机构 / This identifier system is not issued by the caller's institutions")


class InstitutionOutOfScopeError(AppError):
    code = "alliance.institution_out_of_scope"
    status_code = 403
    message = "调用方无权代表该机构 / The caller may not act for this institution"


# --- (ops.wechat) WeChat binding and login, security.wechat ---
class WechatNotConfiguredError(NotFoundError):
    code = "wechat.not_configured"
    message = "本院尚未开通微信登录 / WeChat login is not set up at this hospital"


class WechatRedirectNotAllowedError(AppError):
    code = "wechat.redirect_not_allowed"
    message = "回调地址不在允许列表中 / redirect_uri is not an allowed page"


class WechatStateInvalidError(AppError):
    code = "wechat.state_invalid"
    message = "授权已失效,请重新打开页面 / The authorisation has expired or was already used; start again"


class WechatCodeInvalidError(AppError):
    code = "wechat.code_invalid"
    message = "微信授权码无效或已使用,请重新授权 / The WeChat code is invalid or was already used; authorise again"


class WechatUnavailableError(AppError):
    """WeChat did not answer (timeout, network, its 5xx) or refused our credentials: a failed
    dependency (424), not our fault (a 5xx from carepoints is always a bug, API.md)."""

    code = "wechat.unavailable"
    status_code = 424
    message = "微信服务暂时无法使用,请稍后再试 / WeChat is not answering; please try again later"


class WechatNotBoundError(NotFoundError):
    code = "wechat.not_bound"
    message = ("该微信尚未绑定就诊人,请先用手机号登录后绑定 / "
               "This WeChat is not bound to a patient; log in by phone and bind it first")


class WechatPatientInactiveError(AppError):
    code = "wechat.patient_inactive"
    status_code = 403
    message = "该就诊人账户已停用,请到医院咨询 / This patient's account is no longer active; please ask at the hospital"


class WechatChoosePatientError(ChoosePatientError):
    message = "该微信绑定了多位就诊人,请选择 / Several patients are bound to this WeChat; choose one (patient_id)"
