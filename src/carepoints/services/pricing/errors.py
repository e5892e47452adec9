from __future__ import annotations

from carepoints.kit.errors import AppError, NotFoundError, PayloadTooLargeError


class InstitutionNotFoundError(NotFoundError):
    code = "pricing.institution_not_found"
    message = "未找到该机构 / Institution not found"


class UploadNotFoundError(NotFoundError):
    code = "pricing.upload_not_found"
    message = "该导入文件已过期或已导入,请重新上传 / This upload has expired or was imported already: upload it again"


class UnreadableFileError(AppError):
    code = "pricing.unreadable_file"
    status_code = 422
    message = ("无法读取文件:请上传UTF-8(可带BOM)或GB18030编码的CSV,或Excel(.xlsx)文件 / "
               "The file cannot be read: upload a CSV in UTF-8 (with or without BOM) or GB18030, or an .xlsx workbook")


class FileTooLargeError(PayloadTooLargeError):
    code = "pricing.file_too_large"
    message = "文件不能超过 {limit_mb} MB / The file may be at most {limit_mb} MB"


class InvalidCatalogueError(AppError):
    """A real import with row errors: nothing is stored; `fields` hold every error
    (row, column, code, message)."""

    code = "pricing.invalid_rows"
    status_code = 422
    message = "文件中有 {count} 处错误,未导入任何内容 / The file has {count} errors: nothing was imported"


class UnknownItemError(AppError):
    code = "pricing.unknown_item"
    status_code = 422
    message = "未找到或已停用的收费项目或套餐: {codes} / Unknown or inactive price items or packages: {codes}"


class InvalidQuantityError(AppError):
    code = "pricing.invalid_quantity"
    status_code = 422
    message = "数量须为 1 到 999: {codes} / The quantity must be 1 to 999: {codes}"


class NothingToEstimateError(AppError):
    code = "pricing.nothing_to_estimate"
    status_code = 422
    message = "请至少选择一个项目或套餐 / Choose at least one item or package"
