from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError, PayloadTooLargeError


class EventNotFoundError(NotFoundError):
    code = "events.not_found"
    message = "未找到该事件 / Event not found"


class EventConflictError(ConflictError):
    code = "events.conflict"
    message = "相同来源编号的事件内容不同 / Same source and source_event_id with a different payload"


class BatchTooLargeError(PayloadTooLargeError):
    code = "events.batch_too_large"
    message = "一次最多提交{limit}个事件 / At most {limit} events per request"


class EventInvalidError(AppError):
    code = "request.invalid"
    status_code = 422
    message = "事件格式不正确 / The event is malformed"
