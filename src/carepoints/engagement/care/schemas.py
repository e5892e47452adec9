from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class AlertKind(StrEnum):
    abnormal_reading = "abnormal_reading"
    abnormal_answer = "abnormal_answer"
    overdue_followup = "overdue_followup"
    inactivity = "inactivity"
    critical_value = "critical_value"


class AlertStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class AlertResolution(StrEnum):
    contacted = "contacted"  # the team reached the patient
    referred = "referred"  # sent on to a clinician / the clinic
    no_action = "no_action"  # looked at; nothing needed
    false_alarm = "false_alarm"  # a wrong reading or answer


class AlertAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_user_id: str | None = Field(max_length=36)


class AlertResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: AlertResolution
