"""Spine observers of the community: an invitee's first attended visit completes the invite."""

from __future__ import annotations

from carepoints.engagement.community import invites
from carepoints.events import service as events

VISIT_EVENTS = ("appointment.attended", "exam.attended")


def connect() -> None:
    for type_ in VISIT_EVENTS:
        events.observe(type_, invites.on_visit)
