"""Rewards errors: every refusal a patient, the desk or the HIS cashier can meet."""

from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError


class RewardNotFoundError(NotFoundError):
    code = "rewards.reward_not_found"
    message = "未找到该礼品 / Reward not found"


class RewardExistsError(ConflictError):
    code = "rewards.reward_exists"
    message = "礼品编码已存在 / A reward with that code exists"


class RewardInactiveError(ConflictError):
    code = "rewards.inactive"
    message = "该礼品已下架 / This reward is not available"


class RewardNotValidError(ConflictError):
    code = "rewards.not_in_validity"
    message = ("不在兑换有效期内({valid_from} 至 {valid_to}) / "
               "Outside the redemption window ({valid_from} to {valid_to})")


class NotRedeemableError(ConflictError):
    code = "rewards.not_redeemable"
    message = "挂号费抵扣请在收费窗口办理 / Fee offsets are taken at the cashier, not redeemed here"


class RewardNotAvailableError(ConflictError):
    """(ops.alliance) A reward of other institutions of the alliance."""

    code = "rewards.not_available"
    message = "该礼品不适用于您所在的机构 / This reward is not offered at your institution"


class OutOfStockError(ConflictError):
    code = "rewards.out_of_stock"
    message = "库存不足 / Out of stock"


class StockUnlimitedError(ConflictError):
    code = "rewards.stock_unlimited"
    message = "该奖品不限库存,无需补货 / This reward has no counted stock to add to"


class LimitReachedError(ConflictError):
    code = "rewards.limit_reached"
    message = "已达到兑换上限({period_zh}{count}次) / Redemption limit reached ({count} {period_en})"


class BudgetExhaustedError(ConflictError):
    code = "rewards.budget_exhausted"
    message = "本年度积分兑换预算已用完 / This year's redemption budget is used up"


class PatientInactiveError(ConflictError):
    code = "rewards.patient_inactive"
    message = "该账户已停用 / This account is closed"


class RedemptionNotFoundError(NotFoundError):
    code = "rewards.redemption_not_found"
    message = "未找到该兑换记录 / Redemption not found"


class CouponUsedRefundError(ConflictError):
    code = "rewards.coupon_used"
    message = "兑换券已核销,不能退回 / A code of this redemption was already used; it cannot be refunded"


class CouponNotFoundError(NotFoundError):
    code = "rewards.coupon_not_found"
    message = "无效的兑换码 / Unknown code"


class CouponUsedError(ConflictError):
    code = "rewards.coupon_used"
    message = "该兑换码已于{used_at}核销 / This code was already used at {used_at}"


class CouponExpiredError(ConflictError):
    code = "rewards.coupon_expired"
    message = "该兑换码已于{expires_at}过期 / This code expired at {expires_at}"


class CouponNotYetValidError(ConflictError):
    code = "rewards.coupon_not_yet_valid"
    message = "该兑换码自{valid_from}起可用 / This code is valid from {valid_from}"


class CouponRefundedError(ConflictError):
    code = "rewards.coupon_refunded"
    message = "该兑换码已退回作废 / This code was refunded and is void"


class IdempotencyConflictError(ConflictError):
    code = "rewards.idempotency_conflict"
    message = "该幂等键已用于另一个请求 / The idempotency key was used for a different request"


class FeeOffsetNotFoundError(NotFoundError):
    code = "rewards.fee_offset_not_found"
    message = "未找到该抵扣 / Fee offset not found"


class FeeOffsetStateError(ConflictError):
    code = "rewards.fee_offset_state"
    message = "该抵扣当前为{status},不能{action} / The fee offset is {status}; it cannot be {action}"


class InvalidQuantityError(AppError):
    code = "rewards.invalid_quantity"
    status_code = 422
    message = "兑换数量超出范围 / Quantity out of range"
