from __future__ import annotations

from carepoints.kit.errors import AppError, BadRequestError, PayloadTooLargeError, ValidationFailedError


class FhirInvalidError(ValidationFailedError):
    code = "fhir.invalid"
    message = "FHIR资源格式不正确 / The FHIR resource is invalid"


class FhirCodeError(ValidationFailedError):
    code = "fhir.invalid_code"
    message = "{element} 的取值不受支持 / Unsupported value of {element}"


class BundleRequiredError(BadRequestError):
    code = "fhir.bundle_required"
    message = "此处只接受 batch 或 transaction 类型的 Bundle / Only a batch or transaction Bundle is accepted here"


class TypeMismatchError(BadRequestError):
    code = "fhir.type_mismatch"
    message = "资源类型与地址不符 / The resource type does not match the URL"


class BundleTooLargeError(PayloadTooLargeError):
    code = "fhir.bundle_too_large"
    message = "一个Bundle最多{limit}个条目 / At most {limit} entries per Bundle"


class BodyTooLargeError(PayloadTooLargeError):
    code = "fhir.body_too_large"
    message = "请求体最多{limit}字节 / The body may be at most {limit} bytes"


class MissingElementError(ValidationFailedError):
    code = "fhir.missing_element"
    message = "缺少必需的元素 {element} / The element {element} is required"


class UnitError(ValidationFailedError):
    code = "fhir.unit_unsupported"
    message = "不支持的单位 / Unsupported unit in {element}"


class PatientIncompleteError(ValidationFailedError):
    code = "fhir.patient_incomplete"
    message = "患者资料不足以注册(需要姓名和电话) / Not enough to enrol the patient (a name and a phone are needed)"


class MethodNotSupportedError(AppError):
    code = "fhir.method_not_supported"
    status_code = 405
    message = "不支持该条目的请求方法 / This entry's request method is not supported"
