"""Analytics' own tables: the roll-up watermark here; each area's roll-up tables in its module
(imported by `carepoints.models`)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base


class RollupState(Base):
    """Where `rollup-analytics` got to: `rolled_through` (the last closed local day rolled up)
    and `transfer_id` (the newest ledger entry seen; older days touched later are re-rolled)."""

    __tablename__ = "analytics_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
