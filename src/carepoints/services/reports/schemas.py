"""Report payloads: what the HIS / LIS pushes as JSON (and what a FHIR DiagnosticReport is mapped to)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from carepoints.events.schemas import PatientRef


class ReportStatus(StrEnum):
    registered = "registered"
    preliminary = "preliminary"
    final = "final"
    amended = "amended"
    corrected = "corrected"
    cancelled = "cancelled"
    entered_in_error = "entered-in-error"


class Category(StrEnum):
    lab = "lab"
    imaging = "imaging"
    other = "other"


class Flag(StrEnum):
    """Interpretation flags (HL7 v3 ObservationInterpretation subset); `critical` is a critical
    value the sender marked without a direction."""

    normal = "N"
    high = "H"
    low = "L"
    critical_high = "HH"
    critical_low = "LL"
    abnormal = "A"
    critical = "critical"


# the patient sees only these statuses (registered / preliminary are not results yet)
VISIBLE = (ReportStatus.final, ReportStatus.amended, ReportStatus.corrected)
VERSIONS = (ReportStatus.amended, ReportStatus.corrected)
WITHDRAWN = (ReportStatus.cancelled, ReportStatus.entered_in_error)


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=64)
    display: str = Field(min_length=1, max_length=200)
    value: float | str | None = None
    unit: str | None = Field(default=None, max_length=40)
    range_low: float | None = None
    range_high: float | None = None
    range_text: str | None = Field(default=None, max_length=200)
    flag: Flag | None = None

    @model_validator(mode="after")
    def _check(self) -> ResultIn:
        if isinstance(self.value, str) and not 1 <= len(self.value) <= 500:
            raise ValueError("a text value has 1 to 500 characters")
        if isinstance(self.value, float) and self.value != self.value:  # NaN
            raise ValueError("the value is not a number")
        if self.range_low is not None and self.range_high is not None and self.range_low > self.range_high:
            raise ValueError("range_low is above range_high")
        return self


class ReportIn(BaseModel):
    """One report as the sender has it; (source, source_id) names it across versions."""

    model_config = ConfigDict(extra="forbid")
    patient: PatientRef
    institution_id: str | None = Field(default=None, max_length=36)
    source: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")
    source_id: str = Field(min_length=1, max_length=200)
    category: Category = Category.lab
    code: str = Field(min_length=1, max_length=64)
    code_system: str | None = Field(default=None, max_length=200)
    display: str = Field(min_length=1, max_length=200)
    status: ReportStatus
    issued_at: AwareDatetime
    conclusion: str | None = Field(default=None, max_length=4000)
    performer: str | None = Field(default=None, max_length=200)
    results: list[ResultIn] = Field(default_factory=list, max_length=200)
