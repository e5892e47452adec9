"""Whose record a route's path id names, for patient tokens (security.scope).

A patient token reaches only its patient and those who authorised it; routes
that name a patient in the path, the query or the body are checked there. This
table covers routes that name a patient's *record* by its own id (an
appointment, a redemption, a plan): `security.deps.Require` looks the owner up
— only for patient tokens — and answers 404 when the owner is out of reach.
A new route of that kind joins by one line here (tests/security/test_matrix.py
lists the routes a patient may call)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Column, select
from sqlalchemy.orm import Session

from carepoints.engagement.community.models import Photo
from carepoints.engagement.followups.models import FollowupPlan, FollowupStep
from carepoints.engagement.health.models import MedicationPlan
from carepoints.engagement.learning.models import LectureRegistration
from carepoints.kit.db import table
from carepoints.kit.ids import is_id
from carepoints.notifications.models import InboxMessage
from carepoints.operations.models import Appeal
from carepoints.patients.models import HouseholdMember
from carepoints.rewards.models import Redemption
from carepoints.scheduling.models import Appointment, CheckupBooking, WaitlistEntry
from carepoints.security import scope
from carepoints.services.admissions.models import AdmissionOrder, PrevisitOrder, SurgeryRequest
from carepoints.services.consult.models import ConsultThread


def _by(key: Column[str], owner: Column[str], *where: object) -> Callable[[Session, str], list[str]]:
    def lookup(session: Session, value: str) -> list[str]:
        if not is_id(value):
            return []
        stmt = select(owner).where(key == value, *where)  # type: ignore[arg-type]
        return [str(v) for v in session.connection().execute(stmt).scalars()]

    return lookup


def _owned(model: type) -> Callable[[Session, str], list[str]]:
    t = table(model)
    return _by(t.c.id, t.c.patient_id)


_members = table(HouseholdMember)

OWNED: list[tuple[str, str, Callable[[Session, str], list[str]]]] = [
    ("/api/v1/appointments/", "appointment_id", _owned(Appointment)),
    ("/fhir/Appointment/", "appointment_id", _owned(Appointment)),
    ("/api/v1/waitlist/", "entry_id", _owned(WaitlistEntry)),
    ("/api/v1/checkup-bookings/", "booking_id", _owned(CheckupBooking)),
    ("/api/v1/redemptions/", "redemption_id", _owned(Redemption)),
    ("/api/v1/medication-plans/", "plan_id", _owned(MedicationPlan)),
    ("/api/v1/followup-plans/", "plan_id", _owned(FollowupPlan)),
    ("/api/v1/followup-steps/", "step_id", _owned(FollowupStep)),
    ("/api/v1/photos/", "photo_id", _owned(Photo)),
    ("/api/v1/lectures/", "registration_id", _owned(LectureRegistration)),
    ("/api/v1/households/", "household_id",
     _by(_members.c.household_id, _members.c.patient_id, _members.c.left_at.is_(None))),
    # (ops.identity owned)
    # (ops.appeals owned)
    ("/api/v1/appeals/", "appeal_id", _owned(Appeal)),
    # (ops.adjustments owned)
    # (ops.wechat owned)
    # (pages.patient owned)
    ("/me/appeals/", "appeal_id", _owned(Appeal)),
    ("/me/messages/", "message_id",
     _by(table(InboxMessage).c.id, table(InboxMessage).c.recipient_id,
         table(InboxMessage).c.recipient_kind == "patient")),
    # (pages.booking owned)
    ("/me/appointments/", "appointment_id", _owned(Appointment)),
    ("/me/waitlist/", "entry_id", _owned(WaitlistEntry)),
    # (pages.health owned)
    ("/me/health/doses/", "plan_id", _owned(MedicationPlan)),
    ("/me/lectures/", "registration_id", _owned(LectureRegistration)),
    ("/me/followups/", "step_id", _owned(FollowupStep)),
    ("/me/reviews/", "appointment_id", _owned(Appointment)),
    # (pages.mall owned)
    ("/me/coupons/", "redemption_id", _owned(Redemption)),
    # (pages.staff owned)
    # (pages.queues owned)
    # (pages.admin owned)
    # (pages.admin2 owned)
    # (services.admissions owned) admission orders, surgery requests, pre-visit orders; the patient's order pages
    ("/api/v1/admission-orders/", "order_id", _owned(AdmissionOrder)),
    ("/api/v1/surgery-requests/", "surgery_id", _owned(SurgeryRequest)),
    ("/api/v1/previsit-orders/", "previsit_id", _owned(PrevisitOrder)),
    ("/me/admissions/", "order_id", _owned(AdmissionOrder)),
    # (services.consult owned) a consultation thread, in the API and the patient pages
    ("/api/v1/consultations/", "thread_id", _owned(ConsultThread)),
    ("/me/consult/", "thread_id", _owned(ConsultThread)),
]


def install() -> None:
    for prefix, param, lookup in OWNED:
        scope.register_owner(prefix, param, lookup)
