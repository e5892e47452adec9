from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError


class ReportNotFoundError(NotFoundError):
    code = "reports.not_found"
    message = "未找到该报告 / Report not found"


class ReportConflictError(ConflictError):
    code = "reports.conflict"
    message = ("该报告已存在且内容不同;更正请以 amended / corrected 状态发送新版本 / This report exists with "
               "different content: send a new version with status amended or corrected")


class ConsentRequiredError(ConflictError):
    code = "reports.consent_required"
    message = ("患者未同意“健康数据”用途,不能保存或查看报告 / The patient has not consented to the health_data "
               "purpose: reports cannot be stored or shown")


class InstitutionNotFoundError(AppError):
    code = "reports.institution_not_found"
    status_code = 422
    message = "未找到该医疗机构 / Institution not found"


class NotHeldError(ConflictError):
    code = "reports.not_held"
    message = "该报告没有待审核的危急结果 / This report has no critical result awaiting review"
