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


# --- merge ---

class MergeSamePatientError(ConflictError):
    code = "merge.same_patient"
    message = "不能将档案合并到其自身 / A record cannot be merged into itself"


class MergeInactiveError(ConflictError):
    code = "merge.inactive"
    message = ("只能合并两份在用的档案(患者 {patient_id} 的状态为 {status}) / "
               "Both records must be active (patient {patient_id} is {status})")


class MergeAlreadyMergedError(ConflictError):
    code = "merge.already_merged"
    message = "该档案已合并到 {merged_into} / The record was already merged into {merged_into}"


class MergeOpenHoldsError(ConflictError):
    code = "merge.open_holds"
    message = ("重复档案有未结算的积分冻结(如抵扣),请先结算或撤销 / "
               "The duplicate has open holds (fee offsets): commit or void them first")


class MergeHouseholdsDifferError(ConflictError):
    code = "merge.households_differ"
    message = ("两份档案属于不同的家庭积分账户,请先让其中一方退出家庭 / "
               "The records belong to different households: one must leave its household first")


class MergeIdempotencyConflictError(ConflictError):
    code = "merge.idempotency_conflict"
    message = "该幂等键已用于另一次合并 / The idempotency key was used for another merge"


# --- identity ---

class CheckerUnavailableError(ConflictError):
    code = "identity.checker_unavailable"
    message = "未配置外部实名核验服务 / No external identity check is configured"


class CheckerFailedError(ConflictError):
    code = "identity.checker_failed"
    message = "外部实名核验服务暂时无法使用,请稍后重试或在窗口核验证件 / " \
              "The external identity check did not answer; try again later or check a document at the desk"


class NoIdNumberError(ConflictError):
    code = "identity.no_id_number"
    message = "该患者没有登记证件号码,无法进行外部核验 / The patient has no ID number on record to check"


class DocumentKindRequiredError(AppError):
    code = "identity.document_kind_required"
    status_code = 400
    message = "窗口核验需要注明证件类型 / A desk verification needs the document kind"


class PatientInactiveError(ConflictError):
    code = "identity.patient_inactive"
    message = "该患者档案不在用(状态 {status}) / The patient record is not active ({status})"


class CandidateNotFoundError(NotFoundError):
    code = "identity.candidate_not_found"
    message = "未找到该疑似重复档案记录 / No such duplicate candidate"


class CandidateClosedError(ConflictError):
    code = "identity.candidate_closed"
    message = "该疑似重复记录已处理(状态 {status}) / The duplicate candidate is already {status}"


class StatusTransitionError(ConflictError):
    code = "patients.status_transition"
    message = "患者状态不能从 {status_from} 改为 {status_to} / A patient cannot go from {status_from} to {status_to}"


class DeceasedFinalError(ConflictError):
    code = "patients.deceased_final"
    message = ("已故状态只能由管理员以“登记错误”(recorded_in_error)更正 / "
               "A deceased status can only be corrected by an admin with reason recorded_in_error")
