from __future__ import annotations

from carepoints.kit.errors import AppError


class BadRangeError(AppError):
    code = "analytics.bad_range"
    status_code = 422
    message = "开始日期晚于结束日期 / The start ({start}) is after the end ({end})"


class UnknownViewError(AppError):
    code = "analytics.unknown_view"
    status_code = 404
    message = "没有这个报表 / No such analytics view: {name}"


class BadBreakdownError(AppError):
    code = "analytics.bad_breakdown"
    status_code = 422
    message = "此报表不能按该维度拆分 / This view cannot be broken down by {by}"


class BadFormatError(AppError):
    code = "analytics.bad_format"
    status_code = 422
    message = "导出格式应为 json、csv 或 xlsx / The format must be json, csv or xlsx"


class UnknownParameterError(AppError):
    code = "analytics.unknown_parameter"
    status_code = 422
    message = "此报表没有这个参数 / This view has no parameter {name}"


class BadFilterError(AppError):
    code = "analytics.bad_filter"
    status_code = 422
    message = "筛选条件的值无效 / The value of the filter {name} is not valid"


class TooManyFiltersError(AppError):
    code = "analytics.too_many_filters"
    status_code = 422
    message = ("除机构外最多一个筛选条件(不拆分时两个) / At most one filter besides the institution "
               "(two without a breakdown)")


class BadParameterError(AppError):
    code = "analytics.bad_parameter"
    status_code = 422
    message = "参数的值无效 / The value of the parameter {name} is not valid"
