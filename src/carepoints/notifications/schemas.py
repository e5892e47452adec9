from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
TOPIC = r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,4})$"


class Language(StrEnum):
    zh = "zh"
    en = "en"


class DeliveryStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    dead = "dead"


class QuietHours(BaseModel):
    """A local-time window (it may wrap midnight) in which SMS and WeChat wait."""

    model_config = ConfigDict(extra="forbid")
    start: str = Field(pattern=_HHMM)
    end: str = Field(pattern=_HHMM)

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ (omit quiet_hours for none)")
        return self


class PreferencesUpdate(BaseModel):
    """A patient's notification choices; fields left out keep their current value."""

    model_config = ConfigDict(extra="forbid")
    sms: bool | None = None
    wechat: bool | None = None
    wechat_openid: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    quiet_hours: QuietHours | None = None
    no_quiet_hours: bool = False  # true clears the quiet hours
    language: Language | None = None


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=500, pattern=r"^https?://[^\s/?#]+[^\s]*$")
    topics: list[str] = Field(min_length=1, max_length=50)
    description: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _topics(self) -> WebhookCreate:
        bad = [t for t in self.topics if len(t) > 64 or not re.match(TOPIC, t)]
        if bad:
            raise ValueError("topics must be topic names like points.changed, or *")
        self.topics = list(dict.fromkeys(self.topics))
        return self
