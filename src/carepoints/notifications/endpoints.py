"""Notifications API: patient inbox and preferences, the staff inbox, webhook
subscriptions and the dead-letter queue of deliveries."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.notifications import service
from carepoints.notifications.schemas import DeliveryStatus, PreferencesUpdate, WebhookCreate
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["notifications"])
_ID = Query(None, max_length=36)


def _language(session: Session, patient_id: str) -> str:
    return str(service.preferences(session, patient_id)["language"])


@router.get("/patients/{patient_id}/messages")
def patient_messages(patient_id: str, unread_only: bool = False, limit: int = Query(20, ge=1, le=100),
                     before: str | None = _ID, _p: Principal = Depends(require("notifications:read"))) -> JSON:
    """The patient's in-app inbox (站内信), newest first, with the unread count."""
    with read_tx() as session:
        language = _language(session, patient_id)
        return JSON(service.messages(session, service.patient_inbox(patient_id), unread_only=unread_only,
                                     limit=limit, before=before, language=language))


@router.post("/patients/{patient_id}/messages/{message_id}/read")
def read_patient_message(patient_id: str, message_id: str,
                         _p: Principal = Depends(require("notifications:write"))) -> JSON:
    """Mark one of the patient's messages read; again changes nothing."""
    with write_tx() as session:
        language = _language(session, patient_id)
        return JSON(service.mark_read(session, service.patient_inbox(patient_id), message_id, utc_now(), language))


@router.get("/patients/{patient_id}/notification-preferences")
def get_preferences(patient_id: str, _p: Principal = Depends(require("notifications:read"))) -> JSON:
    """The patient's channels (SMS / WeChat on or off), quiet hours and language."""
    with read_tx() as session:
        return JSON(service.preferences(session, patient_id))


@router.put("/patients/{patient_id}/notification-preferences")
def put_preferences(patient_id: str, body: PreferencesUpdate,
                    p: Principal = Depends(require("notifications:write"))) -> JSON:
    """Change the patient's notification choices; fields left out keep their value."""
    with write_tx() as session:
        return JSON(service.update_preferences(session, patient_id, body, p.actor(), utc_now()))


@router.get("/inbox")
def staff_inbox(unread_only: bool = False, limit: int = Query(20, ge=1, le=100), before: str | None = _ID,
                p: Principal = Depends(require("care:read"))) -> JSON:
    """The caller's inbox: the care team's messages (care alerts, critical values) and their own."""
    with read_tx() as session:
        return JSON(service.messages(session, service.staff_inbox(p.kind, p.id, p.role), unread_only=unread_only,
                                     limit=limit, before=before))


@router.post("/inbox/{message_id}/read")
def read_staff_message(message_id: str, p: Principal = Depends(require("care:read"))) -> JSON:
    """Mark a message of the caller's inbox read."""
    with write_tx() as session:
        return JSON(service.mark_read(session, service.staff_inbox(p.kind, p.id, p.role), message_id, utc_now()))


@router.post("/webhooks", status_code=201)
def create_webhook(body: WebhookCreate, p: Principal = Depends(require("webhooks:write"))) -> JSON:
    """Subscribe a hospital system to topics; the signing secret is shown only in this answer."""
    with write_tx() as session:
        return JSON(service.create_webhook(session, body, p.actor(), utc_now()), status_code=201)


@router.get("/webhooks")
def list_webhooks(_p: Principal = Depends(require("webhooks:write"))) -> JSON:
    """Active webhook subscriptions (without their secrets)."""
    with read_tx() as session:
        return JSON(service.webhooks(session))


@router.delete("/webhooks/{webhook_id}")
def delete_webhook(webhook_id: str, p: Principal = Depends(require("webhooks:write"))) -> JSON:
    """Stop a subscription; its pending deliveries are dropped."""
    with write_tx() as session:
        return JSON(service.delete_webhook(session, webhook_id, p.actor(), utc_now()))


@router.get("/notifications/deliveries")
def list_deliveries(status: DeliveryStatus | None = None,
                    channel: str | None = Query(None, pattern="^(sms|wechat|webhook)$"),
                    limit: int = Query(50, ge=1, le=200), before: str | None = _ID,
                    _p: Principal = Depends(require("webhooks:write"))) -> JSON:
    """External deliveries, newest first; `status=dead` is the dead-letter queue."""
    with read_tx() as session:
        return JSON(service.deliveries(session, status=status.value if status else None, channel=channel,
                                       limit=limit, before=before))


@router.post("/notifications/deliveries/{delivery_id}/retry")
def retry_delivery(delivery_id: str, p: Principal = Depends(require("webhooks:write"))) -> JSON:
    """Send a dead delivery again (fresh attempts, due now)."""
    with write_tx() as session:
        return JSON(service.retry(session, delivery_id, p.actor(), utc_now()))
