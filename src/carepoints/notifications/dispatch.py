"""Dispatch: turn due outbox rows into inbox messages and external deliveries.

One transaction per batch: claim the rows (`FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite's `BEGIN IMMEDIATE` serialises dispatchers), render each
through the template registry, write the inbox messages (unique per outbox row
and recipient) and the delivery rows (unique per outbox row, channel and
recipient) and mark the row dispatched, skipped (no template, no webhook) or
failed (the template needs a value the payload lacks). A re-run never writes
anything twice."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, RowMapping

from carepoints.config import Settings
from carepoints.kit.bulk import insert_new
from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import OutboxMessage
from carepoints.notifications import channels as ch
from carepoints.notifications import templates as tpl
from carepoints.notifications.models import Delivery, InboxMessage, Preference, WebhookSubscription
from carepoints.patients.models import Consent, Patient

log = logging.getLogger("carepoints.notifications")

_outbox = table(OutboxMessage)
_inbox = table(InboxMessage)
_deliveries = table(Delivery)
_prefs = table(Preference)
_hooks = table(WebhookSubscription)
_patients = table(Patient)
_consents = table(Consent)

# (trust.privacy) Without `notifications` consent a patient still gets these (in the inbox):
# answers to their own requests, changes to their account, and safety messages (abnormal-
# reading advice, critical lab values). Reminders and nudges (appointment / medication
# reminders, the queue's call "请到…就诊" and "还有N位" notice, follow-up due, points expiring,
# inactivity care) and any template not listed here, new marketing included, are not sent. A
# template key matches an entry or its variants.
ESSENTIAL_TEMPLATES = (
    "appointment.booked", "appointment.cancelled", "appointment.cancelled_by_hospital", "appointment.no_show",
    "appointment.waitlist", "checkup.booked", "rewards.redeemed", "points.changed", "tiers.changed",
    "tiers.advisor_changed", "health.advice", "lab.critical_value.patient", "lecture.registered",
    "lecture.registration_cancelled", "community.post_rejected", "programme.changed",
    # (ops) answers to the patient's own requests and changes to their account
    "appeal", "account.wechat_bound", "account.wechat_unbound", "points.earning_frozen", "points.earning_resumed",
    "account.closed", "account.reopened",  # (ops.identity)
    "reports.new",  # (services.reports) a new report of the patient's own care (no values), like health.advice
    # (services) bookings of the patient's own care, like appointment.booked, and answers to their own requests
    "admissions", "surgery", "previsit.booked", "consult.reply", "consult.closed", "complaints",
)


def essential(template_key: str) -> bool:
    """Whether a patient message is sent even without `notifications` consent."""
    return any(template_key == e or template_key.startswith(e + ".") for e in ESSENTIAL_TEMPLATES)


CARE_TEAM = ("care_team", "care_team")
ADMINS = ("admins", "admins")
Window = tuple[time, time] | None


def parse_window(start: str | None, end: str | None) -> Window:
    if not start or not end or start == end:
        return None
    return time.fromisoformat(start), time.fromisoformat(end)


def default_window(settings: Settings) -> Window:
    start, _, end = settings.notify_quiet_hours.partition("-")
    return parse_window(start, end)


def after_quiet(at: datetime, window: Window, tz: ZoneInfo) -> datetime:
    """`at`, or the end of the local quiet window [start, end) that contains it
    (a window may wrap midnight: 21:30-07:30)."""
    if window is None:
        return at
    start, end = window
    local = at.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    if start < end:
        inside, day = start <= t < end, local.date()
    else:
        inside = t >= start or t < end
        day = local.date() + timedelta(days=1) if t >= start else local.date()
    if not inside:
        return at
    return datetime.combine(day, end, tzinfo=tz).astimezone(UTC)


def backoff(attempts: int, base: int, cap: int) -> timedelta:
    """Exponential: base, 2·base, 4·base, … capped (attempts counts the one that just failed)."""
    return timedelta(seconds=min(cap, base * 2 ** min(max(attempts - 1, 0), 30)))


@dataclass(slots=True)
class _Ctx:
    settings: Settings
    templates: dict[str, tpl.Template]
    offered: set[str]
    hooks: list[RowMapping]
    tz: ZoneInfo
    known: dict[str, bool]  # patient → may be reached outside the app
    prefs: dict[str, RowMapping]
    now: datetime
    unconsented: frozenset[str] = frozenset()  # withdrew `notifications`: essential messages only
    erased: frozenset[str] = frozenset()  # erased (PIPL): no message at all


def due(conn: Connection, now: datetime, limit: int) -> list[RowMapping]:
    stmt = (select(_outbox).where(_outbox.c.status == "pending", _outbox.c.available_at <= now)
            .order_by(_outbox.c.available_at, _outbox.c.id).limit(limit))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(conn.execute(stmt).mappings().all())


def dispatch(conn: Connection, settings: Settings, now: datetime, limit: int) -> dict[str, int]:
    """Dispatch up to `limit` due outbox rows; answers how many ended in each state."""
    rows = due(conn, now, limit)
    if not rows:
        return {}
    pids = sorted({str(r["payload"].get("patient_id")) for r in rows if is_id(r["payload"].get("patient_id"))})
    ctx = _Ctx(settings, tpl.registry(settings.notification_templates), ch.offered(settings),
               list(conn.execute(select(_hooks).where(_hooks.c.active.is_(True))).mappings()), settings.tz,
               _reachable(conn, pids),
               {r["patient_id"]: r for r in conn.execute(select(_prefs).where(_prefs.c.patient_id.in_(pids)))
                .mappings()} if pids else {}, now, *_privacy(conn, pids))
    outcome: dict[str, list[str]] = {}
    for row in rows:
        outcome.setdefault(_one(conn, ctx, row), []).append(row["id"])
    for status, ids in outcome.items():
        conn.execute(update(_outbox).where(_outbox.c.id.in_(ids)).values(status=status,
                                                                          attempts=_outbox.c.attempts + 1))
    return dict(Counter({k: len(v) for k, v in outcome.items()}))


def _reachable(conn: Connection, pids: list[str]) -> dict[str, bool]:
    """The patients that exist, and whether SMS / WeChat may reach them: active (not
    deceased or closed) and not having withdrawn their `notifications` consent (PIPL)."""
    if not pids:
        return {}
    out = {pid: status == "active" for pid, status in
           conn.execute(select(_patients.c.id, _patients.c.status).where(_patients.c.id.in_(pids)))}
    consents: dict[str, bool] = {}
    for pid, withdrawn in conn.execute(select(_consents.c.patient_id, _consents.c.withdrawn_at).where(
            _consents.c.patient_id.in_(pids), _consents.c.purpose == "notifications")):
        consents[pid] = consents.get(pid, False) or withdrawn is None
    for pid, active in consents.items():
        if not active and pid in out:
            out[pid] = False  # withdrawn, never given again
    return out


def _privacy(conn: Connection, pids: list[str]) -> tuple[frozenset[str], frozenset[str]]:
    """(patients without an active `notifications` consent who once had one, erased patients)."""
    if not pids:
        return frozenset(), frozenset()
    given: dict[str, bool] = {}
    for pid, withdrawn in conn.execute(select(_consents.c.patient_id, _consents.c.withdrawn_at).where(
            _consents.c.patient_id.in_(pids), _consents.c.purpose == "notifications")):
        given[pid] = given.get(pid, False) or withdrawn is None
    erased = {pid for (pid,) in conn.execute(select(_patients.c.id).where(
        _patients.c.id.in_(pids), _patients.c.status == "erased"))}
    return frozenset(p for p, active in given.items() if not active), frozenset(erased)


def _one(conn: Connection, ctx: _Ctx, row: RowMapping) -> str:
    topic, payload = row["topic"], dict(row["payload"] or {})
    hooks = [h for h in ctx.hooks if topic in h["topics"] or "*" in h["topics"]]
    for hook in hooks:
        _delivery(conn, ctx, row, "webhook", "webhook", hook["id"], topic, ctx.now, {
            "id": row["id"], "topic": topic, "created_at": row["created_at"].isoformat(), "payload": payload})
    template = tpl.lookup(ctx.templates, topic, tpl.variant_of(topic, payload))
    if template is None or template.audience == tpl.Audience.none:
        return "dispatched" if hooks else "skipped"
    try:
        rendered = tpl.render(template, tpl.params_of(payload, ctx.tz))
    except tpl.RenderError as exc:
        log.warning("notification %s (%s): template %s needs %s", row["id"], topic, template.key, exc)
        return "failed"
    urgent = template.urgent or payload.get("severity") == "critical"
    pid = payload.get("patient_id")
    if template.audience == tpl.Audience.patient and (
            pid in ctx.erased or (pid in ctx.unconsented and not essential(template.key))):
        return "dispatched" if hooks else "skipped"  # PIPL: not for this patient (see ESSENTIAL_TEMPLATES)
    if template.audience == tpl.Audience.patient:
        return _to_patient(conn, ctx, row, template, rendered, urgent)
    recipients = {tpl.Audience.care_team: [CARE_TEAM], tpl.Audience.admins: [ADMINS],
                  tpl.Audience.staff: [CARE_TEAM]}[template.audience]
    staff = payload.get("staff_user_id")
    if template.audience == tpl.Audience.staff and is_id(staff):
        recipients = [("staff", str(staff)), *recipients]
    for kind, rid in recipients:
        _message(conn, row, kind, rid, rendered, urgent, payload)
    return "dispatched"


def _to_patient(conn: Connection, ctx: _Ctx, row: RowMapping, template: tpl.Template, rendered: tpl.Rendered,
                urgent: bool) -> str:
    payload = dict(row["payload"])
    pid = payload.get("patient_id")
    if not isinstance(pid, str) or pid not in ctx.known:
        log.warning("notification %s (%s): no such patient", row["id"], row["topic"])
        return "failed"
    if "inbox" in template.channels:
        _message(conn, row, "patient", pid, rendered, urgent, payload)
    if not ctx.known[pid]:
        return "dispatched"
    pref = ctx.prefs.get(pid)
    window = parse_window(pref["quiet_start"], pref["quiet_end"]) if pref else default_window(ctx.settings)
    language = pref["language"] if pref else "zh"
    title, body = rendered.text(language)
    content = {"title": title, "body": body, "language": language, "urgent": urgent,
               "quiet": [w.strftime("%H:%M") for w in window] if window else None}
    at = ctx.now if urgent else after_quiet(ctx.now, window, ctx.tz)
    for channel in ("sms", "wechat"):
        wanted = pref[channel] if pref else True
        if channel == "wechat" and not (pref and pref["wechat_openid"] and ch.template_id_for(
                ch.parse_template_ids(ctx.settings.wechat_template_ids), template.key)):
            wanted = False  # WeChat needs a bound account and an approved template id
        if channel in template.channels and channel in ctx.offered and wanted:
            _delivery(conn, ctx, row, channel, "patient", pid, template.key, at, content)
    return "dispatched"


def _message(conn: Connection, row: RowMapping, kind: str, rid: str, rendered: tpl.Rendered, urgent: bool,
             payload: dict[str, Any]) -> None:
    insert_new(conn, _inbox, {
        "id": new_id(), "outbox_id": row["id"], "recipient_kind": kind, "recipient_id": rid, "topic": row["topic"],
        "template": rendered.key, "title_zh": rendered.title_zh, "body_zh": rendered.body_zh,
        "title_en": rendered.title_en, "body_en": rendered.body_en, "refs": payload, "urgent": urgent,
        "created_at": row["created_at"], "read_at": None}, ("outbox_id", "recipient_kind", "recipient_id"))


def _delivery(conn: Connection, ctx: _Ctx, row: RowMapping, channel: str, kind: str, rid: str, template: str,
              at: datetime, content: dict[str, Any]) -> None:
    insert_new(conn, _deliveries, {
        "id": new_id(), "outbox_id": row["id"], "topic": row["topic"], "template": template, "channel": channel,
        "recipient_kind": kind, "recipient_id": rid, "content": content, "status": "pending", "attempts": 0,
        "available_at": at, "lease_until": None, "last_error": None, "created_at": ctx.now, "updated_at": ctx.now,
        "sent_at": None}, ("outbox_id", "channel", "recipient_id"))
