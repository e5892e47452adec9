from __future__ import annotations

from carepoints.kit.errors import AppError, ConflictError, NotFoundError


class MessageNotFoundError(NotFoundError):
    code = "notifications.message_not_found"
    message = "未找到该消息 / Message not found"


class DeliveryNotFoundError(NotFoundError):
    code = "notifications.delivery_not_found"
    message = "未找到该投递记录 / Delivery not found"


class DeliveryNotDeadError(ConflictError):
    code = "notifications.delivery_not_dead"
    message = "只有投递失败(死信)的消息可以重试 / Only dead deliveries can be retried"


class WebhookNotFoundError(NotFoundError):
    code = "notifications.webhook_not_found"
    message = "未找到该Webhook订阅 / Webhook subscription not found"


class ChannelUnavailableError(AppError):
    code = "notifications.channel_unavailable"
    status_code = 409
    message = "医院未开通该通知渠道 / The hospital has not set up this channel: {channel}"


class OpenIdRequiredError(AppError):
    code = "notifications.wechat_openid_required"
    status_code = 409
    message = "开启微信通知需要先绑定微信 / WeChat notifications need a bound WeChat account (openid)"
