from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError


class InsufficientPointsError(AppError):
    code = "ledger.insufficient_points"
    status_code = 409
    message = "可用积分不足 / Not enough available points"


class WalletNotFoundError(NotFoundError):
    code = "ledger.wallet_not_found"
    message = "未找到积分账户 / Wallet not found"


class HoldNotFoundError(NotFoundError):
    code = "ledger.hold_not_found"
    message = "未找到冻结记录 / Hold not found"


class HoldClosedError(ConflictError):
    code = "ledger.hold_closed"
    message = "冻结已结束({status}) / The hold is already {status}"


class ConcurrentUpdateError(ConflictError):
    code = "ledger.concurrent_update"
    message = "账户已被并发修改,请重试 / The wallet changed concurrently; retry"


class InvalidAmountError(AppError):
    code = "ledger.invalid_amount"
    status_code = 422
    message = "积分数量必须为正整数 / Points must be a positive whole number"


class NotRefundableError(ConflictError):
    code = "ledger.not_refundable"
    message = "该记录不是可退回的消费 / That entry is not a spend that can be refunded"


class TransferNotFoundError(NotFoundError):
    code = "ledger.entry_not_found"
    message = "未找到该积分记录 / Ledger entry not found"


class IdempotencyConflictError(ConflictError):
    code = "ledger.idempotency_conflict"
    message = "该幂等键已用于另一个请求 / The idempotency key was used for a different request"
