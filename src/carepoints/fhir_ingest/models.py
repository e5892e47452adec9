"""What carepoints remembers of ingested FHIR resources: per sender and resource id,
the content version last seen and the event it produced, so that a resend is a
duplicate and a new version revokes the previous version's event. No health values."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class FhirResource(Base):
    __tablename__ = "fhir_resources"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[str | None] = mapped_column(String(64))  # meta.versionId, as sent
    # 1, 2, …: bumped on each new content; the event's source key ends in it
    revision: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    # source_event_id of the event the current version produced (None: it produced none)
    event_source_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # accepted (its event stands) | revoked
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
