from __future__ import annotations

from carepoints.kit.errors import AppError


class ProgrammeInvalidError(AppError):
    code = "rules.programme_invalid"
    status_code = 422
    message = "积分方案文件无效 / The programme file is invalid"
