"""The health observers of the spine (events.service.observe): they run in the ingest
transaction for every newly accepted event of their type, whichever path it took
(POST /events, FHIR, engagement, scheduling)."""

from __future__ import annotations

from carepoints.engagement.health.care_signals import critical_values
from carepoints.engagement.health.measurements import store_readings
from carepoints.events import service as events


def connect() -> None:
    """Register the observers (idempotent: observe ignores a second registration)."""
    events.observe("health.measurement", store_readings)
    events.observe("lab.critical_value", critical_values)
