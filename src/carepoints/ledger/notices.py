"""Points-expiring notices (积分到期提醒): for each personal wallet with points
expiring within the programme's notice days, one `points.expiring` outbox
message per local expiry date, once ever (a "sent once" mark per wallet and
date), in the job's transaction."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carepoints.kit.db import table
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import iso_z, local_date
from carepoints.ledger.models import Account, Lot
from carepoints.notifications import service as notifications

_acc = table(Account)
_lots = table(Lot)
KIND = "points.expiring"


def expiring(session: Session, now: datetime, notice_days: int, tz: ZoneInfo
             ) -> dict[tuple[str, str, date], tuple[int, datetime]]:
    """(wallet, patient, local expiry date) → (points not held, earliest expiry instant) for
    personal wallets' lots expiring in (now, now + notice_days]."""
    spendable = _lots.c.remaining - _lots.c.held
    rows = session.connection().execute(
        select(_lots.c.wallet_id, _acc.c.patient_id, _lots.c.expires_at, func.sum(spendable))
        .select_from(_lots.join(_acc, _acc.c.id == _lots.c.wallet_id))
        .where(_lots.c.remaining > 0, _lots.c.expires_at > now,
               _lots.c.expires_at <= now + timedelta(days=notice_days), _acc.c.patient_id.is_not(None))
        .group_by(_lots.c.wallet_id, _acc.c.patient_id, _lots.c.expires_at))
    out: dict[tuple[str, str, date], tuple[int, datetime]] = {}
    for wallet, patient, at, points in rows:
        if not points or points <= 0:
            continue
        key = (wallet, patient, local_date(at, tz))
        prior = out.get(key)
        out[key] = (int(points), at) if prior is None else (prior[0] + int(points), min(prior[1], at))
    return out


def notify_expiring(session: Session, now: datetime, notice_days: int, tz: ZoneInfo) -> int:
    """Queue the notices not sent before; answers how many were queued."""
    messages: list[tuple[str, str | None, dict[str, Any]]] = []
    for (wallet, patient, day), (points, at) in sorted(expiring(session, now, notice_days, tz).items()):
        if notifications.once(session, KIND, f"{wallet}:{day.isoformat()}", now):
            messages.append((KIND, patient, {"patient_id": patient, "points": points, "expires_at": iso_z(at)}))
    enqueue_many(session.connection(), messages, now)
    return len(messages)
