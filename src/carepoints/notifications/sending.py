"""Delivery over external channels: claim due deliveries with a lease, commit the
claim, send outside any transaction, then record the result.

A claim sets `status = sending`, `lease_until` and `attempts + 1` on rows that
are due (pending and available, or sending with an expired lease: a worker
crashed) — `FOR UPDATE SKIP LOCKED` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite
— so two workers never hold the same delivery. The result is written only
while the claim is still ours (`status = sending AND attempts = n`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from carepoints.config import Settings
from carepoints.kit.db import table
from carepoints.notifications.channels import Outgoing, Result
from carepoints.notifications.dispatch import after_quiet, backoff, parse_window
from carepoints.notifications.models import Delivery, Preference, WebhookSubscription
from carepoints.patients import service as patients
from carepoints.patients.models import Patient

_d = table(Delivery)
_prefs = table(Preference)
_hooks = table(WebhookSubscription)
_patients = table(Patient)


@dataclass(frozen=True, slots=True)
class Claimed:
    outgoing: Outgoing
    attempts: int  # the claim's token
    quiet: list[str] | None
    urgent: bool


def claim(conn: Connection, now: datetime, limit: int, lease_seconds: int
          ) -> tuple[list[Claimed], list[tuple[Claimed, Result]]]:
    """Claim up to `limit` due deliveries. Answers those to send, and those that cannot
    be sent at all (no phone, no openid, the webhook was deleted) with their result."""
    due = or_(and_(_d.c.status == "pending", _d.c.available_at <= now),
              and_(_d.c.status == "sending", _d.c.lease_until <= now))
    stmt = select(_d).where(due).order_by(_d.c.available_at, _d.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(conn.execute(stmt).mappings().all())
    if not rows:
        return [], []
    lease = now + timedelta(seconds=lease_seconds)
    for row in rows:
        conn.execute(update(_d).where(_d.c.id == row["id"]).values(
            status="sending", lease_until=lease, attempts=row["attempts"] + 1, updated_at=now))
    addresses = _addresses(conn, rows)
    ready: list[Claimed] = []
    unsendable: list[tuple[Claimed, Result]] = []
    for row in rows:
        content = dict(row["content"] or {})
        found = addresses.get((row["channel"], row["recipient_id"]))
        claimed = Claimed(Outgoing(
            id=row["id"], channel=row["channel"], template=row["template"], address=found[0] if found else "",
            title=str(content.get("title", "")), body=str(content.get("body", "")),
            document=content if row["channel"] == "webhook" else {}, secret=found[1] if found else ""),
            row["attempts"] + 1, content.get("quiet"), bool(content.get("urgent")))
        if found is None:
            unsendable.append((claimed, Result("dead", f"no_{_ADDRESS[row['channel']]}")))
        else:
            ready.append(claimed)
    return ready, unsendable


_ADDRESS = {"sms": "phone", "wechat": "openid", "webhook": "webhook"}


def _addresses(conn: Connection, rows: list[RowMapping]) -> dict[tuple[str, str], tuple[str, str]]:
    """(channel, recipient) → (address, secret), read now and never stored by us."""
    want: dict[str, set[str]] = {}
    for row in rows:
        want.setdefault(row["channel"], set()).add(row["recipient_id"])
    out: dict[tuple[str, str], tuple[str, str]] = {}
    if want.get("sms"):
        active = conn.execute(select(_patients.c.id).where(
            _patients.c.id.in_(sorted(want["sms"])), _patients.c.status == "active")).scalars()
        for pid, phone in patients.contact(conn, active).items():  # decrypted now, never stored by us
            out[("sms", pid)] = (phone, "")
    if want.get("wechat"):
        for pid, openid, on in conn.execute(select(_prefs.c.patient_id, _prefs.c.wechat_openid, _prefs.c.wechat)
                                            .where(_prefs.c.patient_id.in_(sorted(want["wechat"])))):
            if openid and on:
                out[("wechat", pid)] = (openid, "")
    if want.get("webhook"):
        for hid, url, secret in conn.execute(select(_hooks.c.id, _hooks.c.url, _hooks.c.secret).where(
                _hooks.c.id.in_(sorted(want["webhook"])), _hooks.c.active.is_(True))):
            out[("webhook", hid)] = (url, secret)
    return out


def finish(conn: Connection, settings: Settings, claimed: Claimed, result: Result, now: datetime) -> str:
    """Record a send's result while the claim is still ours; answers the new status
    (sent, pending for a retry, dead) or "lost" when another worker re-claimed it."""
    values: dict[str, object] = {"lease_until": None, "updated_at": now, "last_error": result.error}
    if result.ok:
        status = "sent"
        values["sent_at"] = now
    elif result.outcome == "retry" and claimed.attempts < settings.notify_max_attempts:
        status = "pending"
        at = now + backoff(claimed.attempts, settings.notify_backoff_base_seconds, settings.notify_backoff_cap_seconds)
        window = parse_window(*claimed.quiet) if claimed.quiet and len(claimed.quiet) == 2 else None
        values["available_at"] = at if claimed.urgent else after_quiet(at, window, settings.tz)
    else:
        status = "dead"
    changed = conn.execute(update(_d).where(_d.c.id == claimed.outgoing.id, _d.c.status == "sending",
                                            _d.c.attempts == claimed.attempts)
                           .values(status=status, **values).returning(_d.c.id)).first()
    return status if changed is not None else "lost"
