"""Every domain's HTML pages (server-rendered), and how their errors are shown."""

from fastapi import APIRouter

from carepoints.kit.web import error_surface
from carepoints.rules.pages import render_error
from carepoints.rules.pages import router as programme_terms

router = APIRouter()
router.include_router(programme_terms)  # (ops.governance) 积分规则: GET /terms
error_surface("/terms", render_error)
