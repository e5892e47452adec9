"""The patient's home page (GET /): the entry, the login when signed out (API.md).

Balance, available and held points, the tier, points expiring soon, today's tasks (the health
check-in, planned medicine doses, follow-ups due) and the latest messages, with tiles to book,
health, the rewards mall and how to earn; elderly mode shows fewer things, bigger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.engagement.followups import service as followups
from carepoints.engagement.health import measurements
from carepoints.engagement.health import service as health
from carepoints.enrolment import service as enrolment
from carepoints.kit.time import local_date, utc_now
from carepoints.notifications import service as notifications
from carepoints.pages.web import Page, patient_page, reading
from carepoints.patients import service as patients
from carepoints.security.permissions import proxy_allows
from carepoints.tiers import service as tiers

router = APIRouter(include_in_schema=False)

TIERS: dict[str, tuple[str, str]] = {"standard": ("普通会员", "Standard"), "silver": ("银卡会员", "Silver"),
                                     "gold": ("金卡会员", "Gold")}


def _may(page: Page, permission: str) -> bool:
    """The signed-in principal may use `permission` for the patient shown (a proxy: by its scopes)."""
    principal = page.principal
    if principal is None or not principal.can(permission):
        return False
    return not page.acting or proxy_allows((principal.reach or {}).get(page.patient_id, frozenset()), permission)


def _tasks(session: Session, page: Page, now: datetime) -> list[dict[str, Any]]:
    """Today's tasks: a reading per condition (or the daily check-in), medicine doses, follow-ups due."""
    if not _may(page, "health:read"):
        return []
    pid = page.patient_id
    today = local_date(now, get_settings().tz)
    planned = health.tasks_for(session, pid, today)["items"]
    out: list[dict[str, Any]] = []
    readings = [t for t in planned if t["kind"] != "medication"]
    if readings:
        out += [{"kind": t["kind"], "text": page.tr(t["names"]["zh"], t["names"]["en"]), "done": t["done"],
                 "href": "/me/health", "icon": "heart"} for t in readings]
    else:
        days = measurements.trend(session, pid, 7, None, now)["summaries"]
        done = any(s["day"] == today.isoformat() for s in days)
        out.append({"kind": "checkin", "text": page.tr("健康打卡:记录血压或血糖", "Check in: record BP or glucose"),
                    "done": done, "href": "/me/health", "icon": "heart"})
    for t in planned:
        if t["kind"] == "medication":
            at = datetime.fromisoformat(t["scheduled_for"]).strftime("%H:%M")
            out.append({"kind": "medication", "text": page.tr(f"{at} 按时服药:{t['medicine_name']}",
                                                              f"{at} take {t['medicine_name']}"),
                        "done": t["done"], "href": "/me/health", "icon": "pill"})
    if _may(page, "followups:read"):
        for plan in followups.patient_plans(session, pid, now)["items"]:
            for step in plan["steps"]:
                if step["state"] in ("due", "overdue"):
                    out.append({"kind": "followup", "text": page.tr("填写随访问卷", "Answer your follow-up"),
                                "done": False, "href": "/me/followups", "icon": "chat",
                                "overdue": step["state"] == "overdue"})
    return out


@router.get("/")
def home(page: Annotated[Page, Depends(patient_page("points:read"))]) -> Response:
    now = utc_now()
    with reading() as session:
        points = enrolment.points(session, page.patient_id, now)
        tier = tiers.view(session, page.patient_id, now, tiers.settings_at(session, now))
        tasks = _tasks(session, page, now)
        messages: dict[str, Any] = {"items": [], "unread": 0}
        if _may(page, "notifications:read"):
            messages = notifications.messages(session, notifications.patient_inbox(page.patient_id),
                                              unread_only=False, limit=3, before=None, language=page.lang)
        acting_name = patients.display_name(session, page.patient_id, masked=True) if page.acting else None
    words = TIERS.get(str(tier["tier"]))
    tier_name = page.tr(*words) if words else str(tier["tier"])
    nxt = tier.get("next")
    next_words = TIERS.get(str(nxt["tier"])) if nxt else None
    return page.render("patient/home.html", tab="home", points=points, tier=tier, tier_name=tier_name,
                       next_tier_name=page.tr(*next_words) if next_words else None, tasks=tasks,
                       messages=messages, acting_name=acting_name)
