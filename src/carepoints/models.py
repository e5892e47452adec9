"""Every domain's models, so that Alembic sees one metadata."""

from carepoints.analytics.care import CareDaily, PublicHealthFacts
from carepoints.analytics.cubes import VisitPeriod
from carepoints.analytics.models import RollupState
from carepoints.analytics.points_rollup import ActiveDaily, ActivePeriod, Participation, PointsDaily
from carepoints.analytics.visits import VisitPatients, VisitsDaily
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
from carepoints.enrolment.models import (
    DuplicateCandidate,
    Erasure,
    PatientMerge,
    PatientStatusChange,
    PatientVerification,
)
from carepoints.events.models import Event
from carepoints.experiments.models import Experiment
from carepoints.fhir_ingest.models import FhirResource
from carepoints.jobs.models import JobRun
from carepoints.kit.db import Base
from carepoints.kit.outbox import OutboxMessage
from carepoints.ledger.models import Account, Allocation, Checkpoint, Hold, HoldLot, Lot, Transfer
from carepoints.notifications.models import Delivery, InboxMessage, Preference, SentMark, WebhookSubscription
from carepoints.operations.models import Adjustment, AdjustmentOperatorDay, Appeal, FraudScanCursor, FraudSignal
from carepoints.patients.models import (
    Consent,
    ExternalId,
    Household,
    HouseholdMember,
    InstitutionSystem,
    Patient,
    PatientInstitution,
    PatientKey,
    ProxyAuthorisation,
)
from carepoints.rewards.models import (
    BudgetYear,
    Coupon,
    FeeOffset,
    InstitutionBudgetYear,
    Redemption,
    Reward,
    RewardUsage,
)
from carepoints.rules.models import (
    Counter,
    NoShow,
    ProgrammeDraft,
    ProgramRule,
    ProgramVersion,
    StreakRun,
    Suspension,
)
from carepoints.scheduling.models import (
    Alliance,
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
from carepoints.security.models import (
    ApiKey,
    ApiKeyInstitution,
    OtpCode,
    RequestNonce,
    StaffSession,
    StaffUser,
    WechatBinding,
    WechatState,
)
from carepoints.tiers.models import PatientAdvisor, TierChange

metadata = Base.metadata

__all__ = [
    "Account",
    "ActiveDaily",
    "ActivePeriod",
    "Adjustment",
    "AdjustmentOperatorDay",
    "Alliance",
    "Allocation",
    "ApiKey",
    "ApiKeyInstitution",
    "Appeal",
    "Appointment",
    "AuditEntry",
    "AuditPurgeGate",
    "AuditSeal",
    "BudgetYear",
    "CareAlert",
    "CareDaily",
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
    "DuplicateCandidate",
    "EducationCompletion",
    "EducationItem",
    "EducationLabel",
    "Erasure",
    "Event",
    "Experiment",
    "ExternalId",
    "FeeOffset",
    "FhirResource",
    "FollowupPlan",
    "FollowupStep",
    "FraudScanCursor",
    "FraudSignal",
    "HealthMeasurement",
    "Hold",
    "HoldLot",
    "Household",
    "HouseholdMember",
    "InboxMessage",
    "Institution",
    "InstitutionBudgetYear",
    "InstitutionSystem",
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
    "Participation",
    "Patient",
    "PatientAdvisor",
    "PatientCondition",
    "PatientInstitution",
    "PatientKey",
    "PatientMerge",
    "PatientStatusChange",
    "PatientVerification",
    "Photo",
    "PhotoTask",
    "PointsDaily",
    "Preference",
    "ProfileItem",
    "ProgramRule",
    "ProgramVersion",
    "ProgrammeDraft",
    "ProxyAuthorisation",
    "PublicHealthFacts",
    "Questionnaire",
    "QuestionnaireResponse",
    "QuizAttempt",
    "Redemption",
    "RequestNonce",
    "Resource",
    "Review",
    "Reward",
    "RewardUsage",
    "RollupState",
    "SentMark",
    "SessionTemplate",
    "Slot",
    "StaffSession",
    "StaffUser",
    "StreakRun",
    "Suspension",
    "TierChange",
    "Transfer",
    "VisitPatients",
    "VisitPeriod",
    "VisitsDaily",
    "WaitlistEntry",
    "WebhookSubscription",
    "WechatBinding",
    "WechatState",
    "metadata",
]
