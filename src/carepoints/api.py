"""Every domain's JSON endpoints under /api/v1."""

from fastapi import APIRouter

from carepoints.enrolment.endpoints import router as patients
from carepoints.events.endpoints import router as events
from carepoints.scheduling.endpoints import router as scheduling
from carepoints.security.endpoints import router as auth

router = APIRouter(prefix="/api/v1")
for domain in (auth, patients, events, scheduling):
    router.include_router(domain)
