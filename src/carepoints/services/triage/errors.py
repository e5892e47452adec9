from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError


class TermNotFoundError(NotFoundError):
    code = "triage.term_not_found"
    message = "未找到该症状词条 / Symptom term not found"


class TermExistsError(ConflictError):
    code = "triage.term_exists"
    message = "该症状词条编码已存在 / A symptom term with this id already exists"


class SynonymTakenError(ConflictError):
    code = "triage.synonym_taken"
    message = ("同义词“{synonym}”已属于词条 {term},一个说法只能对应一个词条 / "
               "The synonym '{synonym}' already belongs to term {term}")


class TermInRedFlagError(ConflictError):
    code = "triage.term_in_red_flag"
    message = ("该词条用于危险信号 {flags},不能停用(请先修改或停用这些危险信号) / "
               "The term is used by the red flags {flags} and cannot be disabled: change or disable them first")


class UnknownKindError(AppError):
    code = "triage.unknown_kind"
    status_code = 422
    message = "科室类别不存在:{kinds} / Unknown department kinds: {kinds}"


class UnknownTermError(AppError):
    code = "triage.unknown_term"
    status_code = 422
    message = "危险信号引用了不存在的词条:{terms} / The red flag names unknown terms: {terms}"


class RedFlagNotFoundError(NotFoundError):
    code = "triage.red_flag_not_found"
    message = "未找到该危险信号 / Red flag not found"


class KindNotFoundError(NotFoundError):
    code = "triage.kind_not_found"
    message = "未找到该科室类别 / Department kind not found"


class DepartmentNotFoundError(NotFoundError):
    code = "triage.department_not_found"
    message = "未找到科室:{ids} / Departments not found: {ids}"


class InstitutionNotFoundError(NotFoundError):
    code = "triage.institution_not_found"
    message = "未找到该医疗机构 / Institution not found"


class InvalidPeriodError(AppError):
    code = "triage.invalid_period"
    status_code = 422
    message = "统计区间不正确(开始不能晚于结束,最长366天) / The period is invalid: start after end, or over 366 days"
