from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError, PermissionDeniedError


class PatientNotFoundError(NotFoundError):
    code = "patients.not_found"
    message = "未找到该患者 / Patient not found"


class ExternalIdTakenError(ConflictError):
    code = "patients.external_id_taken"
    message = "外部编号已属于其他患者 / The external id belongs to another patient"


class HouseholdNotFoundError(NotFoundError):
    code = "households.not_found"
    message = "未找到该家庭 / Household not found"


class AlreadyInHouseholdError(ConflictError):
    code = "households.already_member"
    message = "该患者已加入一个家庭 / The patient already belongs to a household"


class NotHouseholdMemberError(ConflictError):
    code = "households.not_a_member"
    message = "该患者不是此家庭的成员 / The patient is not a member of this household"


class HeadMustStayError(ConflictError):
    code = "households.head_must_transfer"
    message = "户主需先转交户主身份才能退出 / The head must hand over headship before leaving"


class RedeemNotAllowedError(PermissionDeniedError):
    code = "households.redeem_not_allowed"
    message = "该成员无权使用家庭积分 / This member may not redeem from the household wallet"


class ProxyNotAuthorisedError(PermissionDeniedError):
    code = "patients.proxy_not_authorised"
    message = "代办人未获授权执行此操作({scope}) / The proxy is not authorised to {scope} for this patient"


class ProxyExistsError(ConflictError):
    code = "patients.proxy_exists"
    message = "已存在有效的代办授权 / An active authorisation for this proxy exists"


class ProxyNotFoundError(NotFoundError):
    code = "patients.proxy_not_found"
    message = "未找到该代办授权 / Proxy authorisation not found"


class InvalidProxyError(AppError):
    code = "patients.invalid_proxy"
    status_code = 422
    message = ("代办人须为患者本人以外的人,监护人须为已登记的患者 / "
               "A proxy must be someone else, and a guardian a registered patient")


class PatientMergedError(ConflictError):
    """The record was merged into another (enrolment.merge): send to `merged_into` instead."""

    code = "patients.merged"
    message = "该患者档案已合并到 {merged_into} / The record was merged into {merged_into}"
