"""Every surface's HTML pages (server-rendered, Jinja2 + HTMX) on the same services the API uses:
the patient pages (`/`, `/login`, `/me/...`), the staff console (`/staff/...`) and the programme
admin (`/admin/...`), plus the programme's public terms (`/terms`). pages.web holds the session,
CSRF and error rendering they share."""

from fastapi import APIRouter

from carepoints.kit.web import error_surface
from carepoints.pages import icons, web
from carepoints.pages.admin import home as admin_home
from carepoints.pages.patient import auth as patient_auth
from carepoints.pages.patient import home as patient_home
from carepoints.pages.staff import auth as staff_auth
from carepoints.rules.pages import render_error
from carepoints.rules.pages import router as programme_terms

router = APIRouter(include_in_schema=False)
icons.install()  # template globals icon() and qr()
router.include_router(programme_terms)  # (ops.governance) 积分规则: GET /terms
error_surface("/terms", render_error)
web.page_prefixes("/", "/login", "/logout", "/me", "/dev/inbox", "/staff", "/admin")
router.include_router(patient_auth.router)  # /login, /logout, /dev/inbox, /me/settings
router.include_router(patient_home.router)  # GET / (the login when signed out)
router.include_router(staff_auth.router)  # /staff/login, /staff/logout, GET /staff
router.include_router(admin_home.router)  # GET /admin
# (pages.patient routers)
# (pages.booking routers)
# (pages.health routers)
# (pages.mall routers)
# (pages.staff routers)
# (pages.queues routers)
from carepoints.pages.staff import queues as staff_queues  # noqa: E402

router.include_router(staff_queues.router)  # the review queues: /staff/adjustments, /staff/appeals, ...
# (pages.admin routers)
# (pages.admin2 routers)
