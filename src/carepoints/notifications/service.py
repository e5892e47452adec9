"""Notification use cases: the inbox (patients and staff), patient preferences,
webhook subscriptions, the dead-letter queue, and "sent once" marks for the
domains that produce notices. Services flush, never commit; staff changes are
audited in the same transaction (ids and codes only)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.kit.bulk import insert_new, upsert
from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.time import utc_now
from carepoints.notifications import channels
from carepoints.notifications.dispatch import default_window
from carepoints.notifications.errors import (
    ChannelUnavailableError,
    DeliveryNotDeadError,
    DeliveryNotFoundError,
    MessageNotFoundError,
    OpenIdRequiredError,
    WebhookNotFoundError,
)
from carepoints.notifications.models import Delivery, InboxMessage, Preference, SentMark, WebhookSubscription
from carepoints.notifications.schemas import PreferencesUpdate, WebhookCreate
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError

_marks = table(SentMark)
_inbox = table(InboxMessage)
_prefs = table(Preference)
_hooks = table(WebhookSubscription)
_d = table(Delivery)

Recipient = tuple[str, str]


def once(session: Session, kind: str, ref: str, now: datetime | None = None) -> bool:
    """True the first time (kind, ref) is marked, False ever after: the unique key decides,
    also when two job runs race. Roll back with the caller's transaction."""
    return insert_new(session.connection(), _marks, {"kind": kind, "ref": ref, "created_at": now or utc_now()},
                      ("kind", "ref"))


# --- inbox --------------------------------------------------------------------------


def _message_doc(row: RowMapping, language: str = "zh") -> dict[str, Any]:
    en = language == "en"
    return {"id": row["id"], "topic": row["topic"], "template": row["template"],
            "title": row["title_en"] if en else row["title_zh"], "body": row["body_en"] if en else row["body_zh"],
            "text": {"zh": {"title": row["title_zh"], "body": row["body_zh"]},
                     "en": {"title": row["title_en"], "body": row["body_en"]}},
            "refs": row["refs"], "urgent": row["urgent"], "created_at": row["created_at"].isoformat(),
            "read_at": row["read_at"].isoformat() if row["read_at"] else None}


def _mine(recipients: list[Recipient]) -> Any:
    return or_(*(and_(_inbox.c.recipient_kind == k, _inbox.c.recipient_id == r) for k, r in recipients))


def messages(session: Session, recipients: list[Recipient], *, unread_only: bool, limit: int,
             before: str | None, language: str = "zh") -> dict[str, Any]:
    """Newest first, paged by id; with the unread count."""
    conn = session.connection()
    stmt = select(_inbox).where(_mine(recipients))
    if unread_only:
        stmt = stmt.where(_inbox.c.read_at.is_(None))
    if before is not None:
        stmt = stmt.where(_inbox.c.id < before)
    rows = conn.execute(stmt.order_by(_inbox.c.id.desc()).limit(limit + 1)).mappings().all()
    unread = conn.execute(select(func.count()).select_from(_inbox).where(
        _mine(recipients), _inbox.c.read_at.is_(None))).scalar_one()
    return {"items": [_message_doc(r, language) for r in rows[:limit]], "unread": int(unread),
            "next": rows[limit - 1]["id"] if len(rows) > limit else None}


def mark_read(session: Session, recipients: list[Recipient], message_id: str, now: datetime,
              language: str = "zh") -> dict[str, Any]:
    """Mark one of the recipients' messages read (again: unchanged)."""
    if not is_id(message_id):
        raise MessageNotFoundError()
    conn = session.connection()
    conn.execute(update(_inbox).where(_inbox.c.id == message_id, _mine(recipients), _inbox.c.read_at.is_(None))
                 .values(read_at=now))
    row = conn.execute(select(_inbox).where(_inbox.c.id == message_id, _mine(recipients))).mappings().first()
    if row is None:
        raise MessageNotFoundError()
    return _message_doc(row, language)


def patient_inbox(patient_id: str) -> list[Recipient]:
    return [("patient", patient_id)]


def staff_inbox(kind: str, principal_id: str, role: str) -> list[Recipient]:
    """A staff user's inbox: the care team's messages, their own, and the admins' for admins."""
    out: list[Recipient] = [("care_team", "care_team")]
    if kind == "staff":
        out.append(("staff", principal_id))
    if role == "admin":
        out.append(("admins", "admins"))
    return out


def require_patient(session: Session, patient_id: str) -> None:
    if not patients.exists(session, patient_id):
        raise PatientNotFoundError()


# --- preferences ----------------------------------------------------------------------


def preferences(session: Session, patient_id: str) -> dict[str, Any]:
    """The patient's choices (defaults when never set) and the channels the hospital offers."""
    require_patient(session, patient_id)
    settings = get_settings()
    row = session.connection().execute(select(_prefs).where(_prefs.c.patient_id == patient_id)).mappings().first()
    offered = sorted(channels.offered(settings))
    if row is None:
        window = default_window(settings)
        return {"patient_id": patient_id, "sms": True, "wechat": True, "wechat_openid": None,
                "quiet_hours": {"start": window[0].strftime("%H:%M"), "end": window[1].strftime("%H:%M")}
                if window else None, "language": "zh", "offered": offered, "updated_at": None}
    quiet = {"start": row["quiet_start"], "end": row["quiet_end"]} if row["quiet_start"] else None
    return {"patient_id": patient_id, "sms": row["sms"], "wechat": row["wechat"],
            "wechat_openid": row["wechat_openid"], "quiet_hours": quiet, "language": row["language"],
            "offered": offered, "updated_at": row["updated_at"].isoformat()}


def update_preferences(session: Session, patient_id: str, data: PreferencesUpdate, actor: Actor,
                       now: datetime) -> dict[str, Any]:
    """Change some choices; switching on a channel the hospital has no gateway for is a 409,
    and WeChat needs an openid. Audited (which fields changed, no values)."""
    current = preferences(session, patient_id)
    offered = set(current["offered"])
    for name in ("sms", "wechat"):
        if getattr(data, name) is True and name not in offered:
            raise ChannelUnavailableError(channel=name)
    openid = data.wechat_openid if data.wechat_openid is not None else current["wechat_openid"]
    if data.wechat is True and not openid:
        raise OpenIdRequiredError()
    quiet = None if data.no_quiet_hours else (data.quiet_hours.model_dump() if data.quiet_hours
                                              else current["quiet_hours"])
    row = {"patient_id": patient_id, "sms": current["sms"] if data.sms is None else data.sms,
           "wechat": current["wechat"] if data.wechat is None else data.wechat, "wechat_openid": openid,
           "quiet_start": quiet["start"] if quiet else None, "quiet_end": quiet["end"] if quiet else None,
           "language": str(data.language or current["language"]), "updated_at": now}
    conn = session.connection()
    stmt = upsert(conn, _prefs).values(**row)
    conn.execute(stmt.on_conflict_do_update(index_elements=["patient_id"],
                                            set_={k: v for k, v in row.items() if k != "patient_id"}))
    changed = sorted(k for k in data.model_fields_set)
    audit.record(session, actor, "notifications:preferences:update", now, subject_id=patient_id,
                 patient_id=patient_id, fields=changed)
    return preferences(session, patient_id)


# --- webhooks -------------------------------------------------------------------------


def _hook_doc(row: RowMapping) -> dict[str, Any]:
    return {"id": row["id"], "url": row["url"], "topics": row["topics"], "description": row["description"],
            "created_at": row["created_at"].isoformat()}


def create_webhook(session: Session, data: WebhookCreate, actor: Actor, now: datetime) -> dict[str, Any]:
    """Register a subscription; the signing secret is answered this once."""
    hid, secret = new_id(), "whsec_" + secrets.token_urlsafe(32)
    row = {"id": hid, "url": data.url, "topics": data.topics, "description": data.description, "secret": secret,
           "active": True, "created_at": now, "deleted_at": None}
    session.connection().execute(_hooks.insert(), [row])
    audit.record(session, actor, "notifications:webhook:create", now, subject_id=hid, topics=data.topics)
    return {**_hook_doc(row), "secret": secret}  # type: ignore[arg-type]


def webhooks(session: Session) -> dict[str, Any]:
    rows = session.connection().execute(select(_hooks).where(_hooks.c.active.is_(True))
                                        .order_by(_hooks.c.id)).mappings()
    return {"items": [_hook_doc(r) for r in rows]}


def delete_webhook(session: Session, webhook_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """Stop a subscription; its pending deliveries die with `webhook_deleted`."""
    if not is_id(webhook_id):
        raise WebhookNotFoundError()
    conn = session.connection()
    done = conn.execute(update(_hooks).where(_hooks.c.id == webhook_id, _hooks.c.active.is_(True))
                        .values(active=False, deleted_at=now).returning(_hooks.c.id)).first()
    if done is None:
        raise WebhookNotFoundError()
    conn.execute(update(_d).where(_d.c.channel == "webhook", _d.c.recipient_id == webhook_id,
                                  _d.c.status == "pending")
                 .values(status="dead", last_error="webhook_deleted", updated_at=now))
    audit.record(session, actor, "notifications:webhook:delete", now, subject_id=webhook_id)
    return {"id": webhook_id, "deleted": True}


# --- deliveries (dead-letter queue) -----------------------------------------------------


def _delivery_doc(row: RowMapping) -> dict[str, Any]:
    def iso(v: datetime | None) -> str | None:
        return v.isoformat() if v else None

    return {"id": row["id"], "outbox_id": row["outbox_id"], "topic": row["topic"], "template": row["template"],
            "channel": row["channel"], "recipient_kind": row["recipient_kind"], "recipient_id": row["recipient_id"],
            "status": row["status"], "attempts": row["attempts"], "last_error": row["last_error"],
            "available_at": iso(row["available_at"]), "created_at": iso(row["created_at"]),
            "sent_at": iso(row["sent_at"])}


def deliveries(session: Session, *, status: str | None, channel: str | None, limit: int,
               before: str | None) -> dict[str, Any]:
    stmt = select(_d)
    if status is not None:
        stmt = stmt.where(_d.c.status == status)
    if channel is not None:
        stmt = stmt.where(_d.c.channel == channel)
    if before is not None:
        stmt = stmt.where(_d.c.id < before)
    rows = session.connection().execute(stmt.order_by(_d.c.id.desc()).limit(limit + 1)).mappings().all()
    return {"items": [_delivery_doc(r) for r in rows[:limit]],
            "next": rows[limit - 1]["id"] if len(rows) > limit else None}


def retry(session: Session, delivery_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """Put a dead delivery back in the queue with fresh attempts; audited."""
    if not is_id(delivery_id):
        raise DeliveryNotFoundError()
    conn = session.connection()
    done = conn.execute(update(_d).where(_d.c.id == delivery_id, _d.c.status == "dead").values(
        status="pending", attempts=0, available_at=now, lease_until=None, updated_at=now).returning(_d.c.id)).first()
    row = conn.execute(select(_d).where(_d.c.id == delivery_id)).mappings().first()
    if row is None:
        raise DeliveryNotFoundError()
    if done is None:
        raise DeliveryNotDeadError()
    audit.record(session, actor, "notifications:delivery:retry", now, subject_id=delivery_id,
                 patient_id=row["recipient_id"] if row["recipient_kind"] == "patient" else None,
                 channel=row["channel"])
    return _delivery_doc(row)
