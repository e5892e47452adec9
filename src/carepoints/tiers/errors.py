from __future__ import annotations

from carepoints.kit.errors import ConflictError, NotFoundError


class StaffNotFoundError(NotFoundError):
    code = "tiers.staff_not_found"
    message = "未找到该工作人员或其已停用 / Staff user not found or inactive"


class AdvisorNotIncludedError(ConflictError):
    code = "tiers.advisor_not_included"
    message = "该患者的等级({tier})不含专属健康顾问 / The patient's tier ({tier}) has no health advisor"
