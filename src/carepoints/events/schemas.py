"""The validated shape of every event type (API.md). Attributes beyond the
listed ones are allowed and kept; timestamps must carry an offset and are
stored normalised to UTC ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from carepoints.kit.errors import ValidationFailedError
from carepoints.rules.programme import EVENT_TYPES

Text = Field(min_length=1, max_length=200)


class _Attrs(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=False)


class Registered(_Attrs):
    channel: str | None = None


class _Appointment(_Attrs):
    appointment_id: str = Text
    slot_start: AwareDatetime


class Booked(_Appointment):
    booked_at: AwareDatetime
    booked_by: Literal["patient", "clinician", "staff"] | None = None
    department: str | None = None
    clinician: str | None = None


class Cancelled(_Appointment):
    cancelled_at: AwareDatetime
    by: Literal["patient", "hospital"]


class CheckedIn(_Appointment):
    checked_in_at: AwareDatetime


class Attended(_Appointment):
    booked_at: AwareDatetime
    booked_by: Literal["patient", "clinician", "staff"] | None = None
    checked_in_at: AwareDatetime | None = None


class NoShow(_Appointment):
    pass


class Exam(_Attrs):
    exam_id: str = Text
    modality: str = Text
    slot_start: AwareDatetime


class SelfService(_Attrs):
    action: Literal["pay", "print_report", "register", "query"]
    kiosk_id: str | None = None


# Plausibility ranges of health readings (inclusive), in one place: every entry path
# (POST /events, FHIR, engagement.health) rejects values outside them with a 422.
SYSTOLIC_RANGE = (50, 300)  # mmHg
DIASTOLIC_RANGE = (30, 200)  # mmHg, and below the systolic value
PULSE_RANGE = (30, 250)  # beats per minute
GLUCOSE_RANGE = (1.1, 33.3)  # mmol/L
MG_DL_PER_MMOL_L = 18.0


class Measurement(_Attrs):
    kind: Literal["blood_pressure", "blood_glucose"]
    systolic: int | None = Field(default=None, ge=SYSTOLIC_RANGE[0], le=SYSTOLIC_RANGE[1])
    diastolic: int | None = Field(default=None, ge=DIASTOLIC_RANGE[0], le=DIASTOLIC_RANGE[1])
    pulse: int | None = Field(default=None, ge=PULSE_RANGE[0], le=PULSE_RANGE[1])
    glucose_mmol_l: float | None = Field(default=None, ge=GLUCOSE_RANGE[0], le=GLUCOSE_RANGE[1])
    provenance: Literal["self_reported", "device", "clinic"]

    @model_validator(mode="after")
    def _values(self) -> Measurement:
        if self.kind == "blood_pressure":
            if self.systolic is None or self.diastolic is None:
                raise ValueError("blood_pressure needs systolic and diastolic")
            if self.diastolic >= self.systolic:
                raise ValueError("diastolic must be below systolic")
        if self.kind == "blood_glucose" and self.glucose_mmol_l is None:
            raise ValueError("blood_glucose needs glucose_mmol_l")
        return self


class Medication(_Attrs):
    plan_id: str = Text
    scheduled_for: AwareDatetime | None = None


class Education(_Attrs):
    content_id: str = Text
    score: float = Field(ge=0)
    pass_mark: float = Field(ge=0)


class Lecture(_Attrs):
    lecture_id: str = Text


class Review(_Attrs):
    appointment_id: str = Text
    rating: int = Field(ge=1, le=5)
    text: str = Field(max_length=5000)


class Survey(_Attrs):
    survey_id: str = Text
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")


class FollowUp(_Attrs):
    plan_id: str = Text
    step: str | int
    kind: Literal["routine", "rehab"]
    channel: Literal["phone", "sms", "app"]


class ProfileItem(_Attrs):
    item: str = Text


class Referral(_Attrs):
    referral_id: str = Text
    from_institution: str = Text


class PublicHealth(_Attrs):
    programme: Literal["vaccination", "elderly_checkup", "prenatal"]
    item: str = Text


class Photo(_Attrs):
    task_id: str = Text
    photo_id: str = Text


class Post(_Attrs):
    post_id: str = Text


class Invite(_Attrs):
    invitee_id: str = Text


class Violation(_Attrs):
    reason: str = Field(min_length=1, max_length=500)
    staff_id: str = Text


class OfflineEntry(_Attrs):
    behaviour: str
    attributes: dict[str, Any]
    sheet_ref: str = Text
    staff_id: str = Text


class CriticalValue(_Attrs):
    test: str = Text
    value: str | float
    unit: str = Field(max_length=50)
    clinician: str | None = None


class Discharged(_Attrs):
    """A hospital stay ended (the HIS, or a FHIR Encounter that finished as an inpatient stay)."""

    encounter_id: str = Text
    discharged_at: AwareDatetime
    disposition: str | None = Field(default=None, max_length=100)


ATTRIBUTES: dict[str, type[_Attrs]] = {
    "account.registered": Registered, "appointment.booked": Booked, "appointment.cancelled": Cancelled,
    "appointment.checked_in": CheckedIn, "appointment.attended": Attended, "appointment.no_show": NoShow,
    "exam.attended": Exam, "selfservice.used": SelfService, "health.measurement": Measurement,
    "medication.taken": Medication, "education.completed": Education, "lecture.attended": Lecture,
    "review.submitted": Review, "survey.completed": Survey, "followup.completed": FollowUp,
    "profile.item_completed": ProfileItem, "referral.visit": Referral, "public_health.completed": PublicHealth,
    "photo.checkin": Photo, "community.post_approved": Post, "invite.completed": Invite,
    "conduct.violation": Violation, "staff.offline_entry": OfflineEntry, "lab.critical_value": CriticalValue,
    "encounter.discharged": Discharged,
}
assert set(ATTRIBUTES) == set(EVENT_TYPES)  # noqa: S101 - a programming error, caught at import
_ADAPTERS = {k: TypeAdapter(v) for k, v in ATTRIBUTES.items()}


class PatientRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, max_length=64)
    system: str | None = Field(default=None, max_length=200)
    value: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one_form(self) -> PatientRef:
        if self.id is None and (self.system is None or self.value is None):
            raise ValueError("a patient reference is {id} or {system, value}")
        return self


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    patient: PatientRef
    occurred_at: AwareDatetime
    source: str = Field(min_length=1, max_length=100)
    source_event_id: str = Field(min_length=1, max_length=200)
    attributes: dict[str, Any] = Field(default_factory=dict)


_ENVELOPE = TypeAdapter(EventIn)


def _fields(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    return [{"loc": [*prefix, *e["loc"]], "msg": e["msg"]} for e in exc.errors(include_url=False)]


def _normalise(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def parse_event(raw: Any) -> EventIn:
    """Validate the envelope and the attributes of the event's type."""
    if not isinstance(raw, dict):
        raise ValidationFailedError("事件必须是JSON对象 / An event must be a JSON object")
    try:
        event = _ENVELOPE.validate_python(raw)
    except ValidationError as exc:
        raise ValidationFailedError(fields=_fields(exc)) from exc
    adapter = _ADAPTERS.get(event.type)
    if adapter is None:
        raise ValidationFailedError("未知的事件类型 / Unknown event type",
                                    fields=[{"loc": ["type"], "msg": "unknown event type"}])
    try:
        attrs = adapter.validate_python(event.attributes)
    except ValidationError as exc:
        raise ValidationFailedError(fields=_fields(exc, ("attributes",))) from exc
    if event.type == "staff.offline_entry":
        inner_type = event.attributes.get("behaviour")
        inner = _ADAPTERS.get(inner_type) if isinstance(inner_type, str) else None
        if inner is None or inner_type in ("staff.offline_entry", "lab.critical_value"):
            raise ValidationFailedError(fields=[{"loc": ["attributes", "behaviour"], "msg": "unknown behaviour"}])
        try:
            nested = inner.validate_python(event.attributes.get("attributes") or {})
        except ValidationError as exc:
            raise ValidationFailedError(fields=_fields(exc, ("attributes", "attributes"))) from exc
        dumped = attrs.model_dump(exclude_none=True)
        dumped["attributes"] = _normalise(nested.model_dump(exclude_none=True))
        event.attributes = _normalise(dumped)
    else:
        event.attributes = _normalise(attrs.model_dump(exclude_none=True))
    return event
