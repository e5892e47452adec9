"""Patient login codes leave by the SMS channel, at once (not through the outbox,
so the code is never stored in clear): the app installs `PatientLogin` as the
security layer's patient directory. Without an SMS gateway nothing is sent;
the code never reaches a log."""

from __future__ import annotations

import logging
from datetime import datetime

import httpx
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.kit.ids import new_id
from carepoints.notifications.channels import Outgoing, SmsChannel
from carepoints.patients import access

log = logging.getLogger("carepoints.notifications")
TEMPLATE = "auth.login_code"


def send_code(phone: str, text: str) -> None:
    settings = get_settings()
    if not settings.sms_gateway_url:
        return
    with httpx.Client(timeout=settings.notify_http_timeout_seconds) as client:
        result = SmsChannel(client, settings.sms_gateway_url, settings.sms_gateway_token).send(
            Outgoing(id=new_id(), channel="sms", template=TEMPLATE, address=phone, body=text))
    if not result.ok:
        log.warning("login code SMS not sent: %s", result.error)


class PatientLogin:
    """security.scope.PatientDirectory over the patients domain and the SMS channel."""

    def reach(self, session: Session, patient_id: str, now: datetime) -> dict[str, frozenset[str]] | None:
        return access.reach(session, patient_id, now)

    def choices(self, session: Session, phone: str) -> list[dict[str, str]]:
        return access.choices(session, phone)

    def send_code(self, phone: str, text: str) -> None:
        send_code(phone, text)
