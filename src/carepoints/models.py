"""Every domain's models, so that Alembic sees one metadata."""

from carepoints.events.models import Event
from carepoints.jobs.models import JobRun
from carepoints.kit.db import Base
from carepoints.kit.outbox import OutboxMessage
from carepoints.ledger.models import Account, Allocation, Checkpoint, Hold, HoldLot, Lot, Transfer
from carepoints.patients.models import Consent, ExternalId, Patient
from carepoints.rules.models import (
    Counter,
    NoShow,
    ProgramRule,
    ProgramVersion,
    StreakRun,
    Suspension,
)
from carepoints.scheduling.models import (
    Appointment,
    CheckupBooking,
    CheckupDay,
    CheckupPackage,
    Clinician,
    ClinicSession,
    Department,
    Institution,
    Resource,
    SessionTemplate,
    Slot,
    WaitlistEntry,
)
from carepoints.security.models import ApiKey, StaffUser

metadata = Base.metadata

__all__ = [
    "Account",
    "Allocation",
    "ApiKey",
    "Appointment",
    "Checkpoint",
    "CheckupBooking",
    "CheckupDay",
    "CheckupPackage",
    "ClinicSession",
    "Clinician",
    "Consent",
    "Counter",
    "Department",
    "Event",
    "ExternalId",
    "Hold",
    "HoldLot",
    "Institution",
    "JobRun",
    "Lot",
    "NoShow",
    "OutboxMessage",
    "Patient",
    "ProgramRule",
    "ProgramVersion",
    "Resource",
    "SessionTemplate",
    "Slot",
    "StaffUser",
    "StreakRun",
    "Suspension",
    "Transfer",
    "WaitlistEntry",
    "metadata",
]
