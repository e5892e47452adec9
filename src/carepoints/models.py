"""Every domain's models, so that Alembic sees one metadata."""

from carepoints.audit.models import AuditEntry
from carepoints.engagement.care.models import CareAlert
from carepoints.events.models import Event
from carepoints.jobs.models import JobRun
from carepoints.kit.db import Base
from carepoints.kit.outbox import OutboxMessage
from carepoints.ledger.models import Account, Allocation, Checkpoint, Hold, HoldLot, Lot, Transfer
from carepoints.patients.models import (
    Consent,
    ExternalId,
    Household,
    HouseholdMember,
    Patient,
    ProxyAuthorisation,
)
from carepoints.rewards.models import BudgetYear, Coupon, FeeOffset, Redemption, Reward, RewardUsage
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
from carepoints.tiers.models import PatientAdvisor, TierChange

metadata = Base.metadata

__all__ = [
    "Account",
    "Allocation",
    "ApiKey",
    "Appointment",
    "AuditEntry",
    "BudgetYear",
    "CareAlert",
    "Checkpoint",
    "CheckupBooking",
    "CheckupDay",
    "CheckupPackage",
    "ClinicSession",
    "Clinician",
    "Consent",
    "Counter",
    "Coupon",
    "Department",
    "Event",
    "ExternalId",
    "FeeOffset",
    "Hold",
    "HoldLot",
    "Household",
    "HouseholdMember",
    "Institution",
    "JobRun",
    "Lot",
    "NoShow",
    "OutboxMessage",
    "Patient",
    "PatientAdvisor",
    "ProgramRule",
    "ProgramVersion",
    "ProxyAuthorisation",
    "Redemption",
    "Resource",
    "Reward",
    "RewardUsage",
    "SessionTemplate",
    "Slot",
    "StaffUser",
    "StreakRun",
    "Suspension",
    "TierChange",
    "Transfer",
    "WaitlistEntry",
    "metadata",
]
