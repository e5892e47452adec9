"""Every domain's models, so that Alembic sees one metadata."""

from carepoints.audit.models import AuditEntry, AuditPurgeGate, AuditSeal
from carepoints.engagement.care.models import CareAlert
from carepoints.engagement.community.models import CommunityPost, Invite, InviteCode, Photo, PhotoTask
from carepoints.engagement.followups.models import FollowupPlan, FollowupStep, Questionnaire, QuestionnaireResponse
from carepoints.engagement.health.models import HealthMeasurement, MedicationDose, MedicationPlan, PatientCondition
from carepoints.engagement.learning.models import (
    EducationCompletion,
    EducationItem,
    EducationLabel,
    Lecture,
    LectureAttendance,
    LectureRegistration,
    ProfileItem,
    QuizAttempt,
    Review,
)
from carepoints.enrolment.models import Erasure
from carepoints.events.models import Event
from carepoints.fhir_ingest.models import FhirResource
from carepoints.jobs.models import JobRun
from carepoints.kit.db import Base
from carepoints.kit.outbox import OutboxMessage
from carepoints.ledger.models import Account, Allocation, Checkpoint, Hold, HoldLot, Lot, Transfer
from carepoints.notifications.models import Delivery, InboxMessage, Preference, SentMark, WebhookSubscription
from carepoints.patients.models import (
    Consent,
    ExternalId,
    Household,
    HouseholdMember,
    Patient,
    PatientKey,
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
from carepoints.security.models import ApiKey, OtpCode, RequestNonce, StaffSession, StaffUser
from carepoints.tiers.models import PatientAdvisor, TierChange

metadata = Base.metadata

__all__ = [
    "Account",
    "Allocation",
    "ApiKey",
    "Appointment",
    "AuditEntry",
    "AuditPurgeGate",
    "AuditSeal",
    "BudgetYear",
    "CareAlert",
    "Checkpoint",
    "CheckupBooking",
    "CheckupDay",
    "CheckupPackage",
    "ClinicSession",
    "Clinician",
    "CommunityPost",
    "Consent",
    "Counter",
    "Coupon",
    "Delivery",
    "Department",
    "EducationCompletion",
    "EducationItem",
    "EducationLabel",
    "Erasure",
    "Event",
    "ExternalId",
    "FeeOffset",
    "FhirResource",
    "FollowupPlan",
    "FollowupStep",
    "HealthMeasurement",
    "Hold",
    "HoldLot",
    "Household",
    "HouseholdMember",
    "InboxMessage",
    "Institution",
    "Invite",
    "InviteCode",
    "JobRun",
    "Lecture",
    "LectureAttendance",
    "LectureRegistration",
    "Lot",
    "MedicationDose",
    "MedicationPlan",
    "NoShow",
    "OtpCode",
    "OutboxMessage",
    "Patient",
    "PatientAdvisor",
    "PatientCondition",
    "PatientKey",
    "Photo",
    "PhotoTask",
    "Preference",
    "ProfileItem",
    "ProgramRule",
    "ProgramVersion",
    "ProxyAuthorisation",
    "Questionnaire",
    "QuestionnaireResponse",
    "QuizAttempt",
    "Redemption",
    "RequestNonce",
    "Resource",
    "Review",
    "Reward",
    "RewardUsage",
    "SentMark",
    "SessionTemplate",
    "Slot",
    "StaffSession",
    "StaffUser",
    "StreakRun",
    "Suspension",
    "TierChange",
    "Transfer",
    "WaitlistEntry",
    "WebhookSubscription",
    "metadata",
]
