"""Every domain's JSON endpoints under /api/v1."""

from fastapi import APIRouter

from carepoints.engagement.care.endpoints import router as care
from carepoints.engagement.community.endpoints import router as community
from carepoints.engagement.followups.endpoints import router as followups
from carepoints.engagement.health.endpoints import router as health
from carepoints.engagement.learning.endpoints import router as learning
from carepoints.enrolment.endpoints import router as patients
from carepoints.enrolment.household_endpoints import router as households
from carepoints.enrolment.privacy_endpoints import router as privacy
from carepoints.events.endpoints import router as events
from carepoints.notifications.endpoints import router as notifications
from carepoints.patients.endpoints import router as proxies
from carepoints.rewards.endpoints import router as rewards
from carepoints.scheduling.endpoints import router as scheduling
from carepoints.security.audit_endpoints import router as audit_log
from carepoints.security.endpoints import router as auth
from carepoints.tiers.endpoints import router as tiers

router = APIRouter(prefix="/api/v1")
for domain in (auth, patients, events, scheduling, tiers, rewards, households, proxies, care):
    router.include_router(domain)
router.include_router(learning)
router.include_router(notifications)
router.include_router(health)
router.include_router(community)
router.include_router(followups)
router.include_router(privacy)  # (trust.privacy) consents, download, erasure
router.include_router(audit_log)  # (trust.audit) access report, audit search
