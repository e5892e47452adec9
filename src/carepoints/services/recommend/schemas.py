"""Request bodies of the recommendations API (answers are documented on the endpoints)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictBool


class SwitchIn(BaseModel):
    """Recommendations on (`true`) or off (`false`) for the patient; a JSON boolean, nothing else."""

    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool
