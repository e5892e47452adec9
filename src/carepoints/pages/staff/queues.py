"""The staff console's review queues (issue 8 §2): adjustments with maker-checker, appeals,
duplicate records and their merge, care alerts, follow-ups, moderation and fraud signals."""

from __future__ import annotations

from fastapi import APIRouter

from carepoints.pages.staff import queues_care, queues_points, queues_review

router = APIRouter(include_in_schema=False)
router.include_router(queues_points.router)  # /staff/adjustments, /staff/appeals
router.include_router(queues_review.router)  # /staff/duplicates, /staff/fraud
router.include_router(queues_care.router)  # /staff/care-alerts, /staff/followups, /staff/moderation
