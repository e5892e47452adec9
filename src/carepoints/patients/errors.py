from __future__ import annotations

from carepoints.kit.errors import ConflictError, NotFoundError


class PatientNotFoundError(NotFoundError):
    code = "patients.not_found"
    message = "未找到该患者 / Patient not found"


class ExternalIdTakenError(ConflictError):
    code = "patients.external_id_taken"
    message = "外部编号已属于其他患者 / The external id belongs to another patient"
