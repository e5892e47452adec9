"""Errors of consent and the PIPL rights (download, erasure)."""

from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError, PermissionDeniedError


class ConsentNotFoundError(NotFoundError):
    code = "consent.not_found"
    message = "该用途没有有效的同意 / No active consent for this purpose"


class ConsentMissingError(PermissionDeniedError):
    code = "consent.missing"
    message = "患者未同意此用途的个人信息处理({purpose}) / The patient has not consented to {purpose}"


class GuardianRequiredError(AppError):
    code = "consent.guardian_required"
    status_code = 422
    message = ("不满14周岁的患者须由监护人同意(source: guardian) / "
               "A patient under 14 needs a guardian's consent (source: guardian)")


class InvalidGuardianError(AppError):
    code = "consent.invalid_guardian"
    status_code = 422
    message = ("监护人信息只能随监护人同意提供,且监护人须为本人以外的已登记患者 / "
               "Guardian details go with source guardian, and a guardian patient must be someone else who is "
               "registered")


class PatientErasedError(ConflictError):
    code = "patients.erased"
    message = "该患者的个人信息已删除 / The patient's personal data has been erased"
