"""Every domain's JSON endpoints under /api/v1."""

from fastapi import APIRouter

from carepoints.engagement.care.endpoints import router as care
from carepoints.enrolment.endpoints import router as patients
from carepoints.enrolment.household_endpoints import router as households
from carepoints.events.endpoints import router as events
from carepoints.patients.endpoints import router as proxies
from carepoints.rewards.endpoints import router as rewards
from carepoints.scheduling.endpoints import router as scheduling
from carepoints.security.endpoints import router as auth
from carepoints.tiers.endpoints import router as tiers

router = APIRouter(prefix="/api/v1")
for domain in (auth, patients, events, scheduling, tiers, rewards, households, proxies, care):
    router.include_router(domain)
