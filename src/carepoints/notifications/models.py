"""Delivery of the outbox: in-app inbox messages, external deliveries (SMS, WeChat,
webhooks) with their retry state, per-patient preferences, webhook subscriptions
and "sent once" marks. No phone numbers, names or health values are stored here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class InboxMessage(Base):
    """One in-app message (站内信) for a patient, a staff user, the care team or the
    programme admins. Unique per outbox row and recipient: a re-run dispatch writes none twice."""

    __tablename__ = "inbox_messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    outbox_id: Mapped[str] = mapped_column(String(36))
    recipient_kind: Mapped[str] = mapped_column(String(16))  # patient | staff | care_team | admins
    recipient_id: Mapped[str] = mapped_column(String(36))  # patient / staff id, or the group's name
    topic: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(96))
    title_zh: Mapped[str] = mapped_column(String(200))
    body_zh: Mapped[str] = mapped_column(String(1000))
    title_en: Mapped[str] = mapped_column(String(200))
    body_en: Mapped[str] = mapped_column(String(1000))
    refs: Mapped[dict[str, Any]] = mapped_column(JSON)  # the outbox payload: ids, codes and numbers
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("outbox_id", "recipient_kind", "recipient_id"),
        Index("ix_inbox_messages_recipient", "recipient_kind", "recipient_id", "id"),
    )


class Delivery(Base):
    """One message to send over an external channel. Claimed with a lease (status
    `sending`, `lease_until`) committed before the HTTP call; `attempts` doubles as
    the lease token, so a worker whose lease expired cannot overwrite a newer claim."""

    __tablename__ = "notification_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    outbox_id: Mapped[str] = mapped_column(String(36))
    topic: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(96))
    channel: Mapped[str] = mapped_column(String(16))  # sms | wechat | webhook
    recipient_kind: Mapped[str] = mapped_column(String(16))  # patient | webhook
    recipient_id: Mapped[str] = mapped_column(String(36))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)  # rendered text (no PII) or the webhook body
    status: Mapped[str] = mapped_column(String(16))  # pending | sending | sent | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(64))  # a code: http_500, timeout, no_phone
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("outbox_id", "channel", "recipient_id"),
        Index("ix_notification_deliveries_due", "status", "available_at"),
    )


class Preference(Base):
    """A patient's notification choices; no row means the defaults."""

    __tablename__ = "notification_preferences"

    patient_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sms: Mapped[bool] = mapped_column(Boolean, default=True)
    wechat: Mapped[bool] = mapped_column(Boolean, default=True)
    wechat_openid: Mapped[str | None] = mapped_column(String(64))
    quiet_start: Mapped[str | None] = mapped_column(String(5))  # HH:MM local; NULL = no quiet hours
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    language: Mapped[str] = mapped_column(String(2), default="zh")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookSubscription(Base):
    """A hospital system that receives signed copies of outbox messages of some topics."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    topics: Mapped[list[str]] = mapped_column(JSON)  # exact topics, or "*" for all
    description: Mapped[str] = mapped_column(String(200))
    secret: Mapped[str] = mapped_column(String(64))  # the HMAC key, shown once at creation
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SentMark(Base):
    """"Sent once" marks: (kind, ref) is unique, so a notice is produced once per cause
    (an appointment's reminder, a wallet's expiry date) whichever job run gets there first."""

    __tablename__ = "notification_marks"

    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    ref: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
