"""Every surface's HTML pages (server-rendered, Jinja2 + HTMX) on the same services the API uses:
the patient pages (`/`, `/login`, `/me/...`), the staff console (`/staff/...`) and the programme
admin (`/admin/...`), plus the programme's public terms (`/terms`). pages.web holds the session,
CSRF and error rendering they share."""

from fastapi import APIRouter

from carepoints.config import get_settings
from carepoints.kit.templating import environment
from carepoints.kit.web import error_surface
from carepoints.pages import icons, web
from carepoints.pages.admin import analytics as admin_analytics
from carepoints.pages.admin import experiments as admin_experiments
from carepoints.pages.admin import forecast as admin_forecast
from carepoints.pages.admin import home as admin_home
from carepoints.pages.admin import manage as admin_manage
from carepoints.pages.admin import pricing as admin_pricing
from carepoints.pages.admin import rules as admin_rules
from carepoints.pages.admin import satisfaction as admin_satisfaction
from carepoints.pages.admin import triage as admin_triage
from carepoints.pages.patient import admissions as patient_admissions
from carepoints.pages.patient import auth as patient_auth
from carepoints.pages.patient import booking as patient_booking
from carepoints.pages.patient import complaints as patient_complaints
from carepoints.pages.patient import consult as patient_consult
from carepoints.pages.patient import costs as patient_costs
from carepoints.pages.patient import health as patient_health
from carepoints.pages.patient import home as patient_home
from carepoints.pages.patient import mall as patient_mall
from carepoints.pages.patient import me as patient_me
from carepoints.pages.patient import queue as patient_queue
from carepoints.pages.patient import recommend as patient_recommend
from carepoints.pages.patient import reports as patient_reports
from carepoints.pages.patient import triage as patient_triage
from carepoints.pages.staff import admissions as staff_admissions
from carepoints.pages.staff import auth as staff_auth
from carepoints.pages.staff import care_list as staff_care_list
from carepoints.pages.staff import consult as staff_consult
from carepoints.pages.staff import costs as staff_costs
from carepoints.pages.staff import desk as staff_desk
from carepoints.pages.staff import improvements as staff_improvements
from carepoints.pages.staff import queue as staff_queue
from carepoints.pages.staff import queues as staff_queues
from carepoints.pages.staff import reports as staff_reports
from carepoints.rules.pages import render_error
from carepoints.rules.pages import router as programme_terms

router = APIRouter(include_in_schema=False)
icons.install()  # template globals icon() and qr()
# login.html: how long a login code lives, in minutes as the SMS says it (security.otp.sms_text)
environment().globals["otp_minutes"] = lambda: max(1, get_settings().otp_ttl_seconds // 60)
router.include_router(programme_terms)  # (ops.governance) 积分规则: GET /terms
error_surface("/terms", render_error)
web.page_prefixes("/", "/login", "/logout", "/me", "/dev/inbox", "/staff", "/admin")
router.include_router(patient_auth.router)  # /login, /logout, /dev/inbox, /me/settings
router.include_router(patient_home.router)  # GET / (the login when signed out)
router.include_router(staff_auth.router)  # /staff/login, /staff/logout, GET /staff
router.include_router(admin_home.router)  # GET /admin
router.include_router(patient_me.router)  # /me, /me/earn, /me/points, /me/appeals, /me/messages, /me/privacy, ...
router.include_router(patient_booking.router)  # /me/book, /me/appointments, /me/waitlist
router.include_router(patient_health.router)  # /me/health, /me/learn, /me/lectures, /me/followups, ...
router.include_router(patient_mall.router)  # /me/mall, /me/coupons
router.include_router(staff_desk.router)  # /staff/patients, /staff/register, /staff/checkin, ...
router.include_router(staff_queues.router)  # the review queues: /staff/adjustments, /staff/appeals, ...
router.include_router(admin_rules.router)  # /admin/rules, /admin/drafts
router.include_router(admin_manage.router)  # /admin/rewards, /admin/tiers, /admin/budget, ...
router.include_router(admin_analytics.router)  # /admin/analytics, /admin/analytics/{name} (+ export.xlsx|csv)
router.include_router(admin_experiments.router)  # /admin/experiments: list, create, start / stop, results
router.include_router(staff_care_list.router)  # /staff/care-list (the nurses' care list)
router.include_router(patient_costs.router)  # (services.pricing) /me/costs: the patient's cost estimate
router.include_router(staff_costs.router)  # (services.pricing) /staff/costs: the desk's printable estimate
router.include_router(admin_pricing.router)  # (services.pricing) /admin/pricing: the price list and its import
router.include_router(patient_triage.router)  # (services.triage) /me/triage: 智能导诊, which department to book
router.include_router(admin_triage.router)  # (services.triage) /admin/triage: the triage knowledge base
router.include_router(admin_forecast.router)  # (services.forecast) /admin/forecast: 智能号源, suggestions, apply
router.include_router(staff_queue.router)  # (services.queue) /staff/queue: call next, recall, skip; the TV display
router.include_router(patient_queue.router)  # (services.queue) /me/queue/card: the patient's place in the queue
router.include_router(patient_reports.router)  # (services.reports) /me/reports: the patient's reports
router.include_router(patient_recommend.router)  # (services.recommend) /me/recommendations: 为您推荐 and the switch
router.include_router(staff_reports.router)  # (services.reports) /staff/patients/{id}/reports/{id}: read, release
router.include_router(patient_admissions.router)  # (services.admissions) /me/admissions: 住院与手术
router.include_router(staff_admissions.router)  # (services.admissions) /staff/admissions: orders, day views
router.include_router(patient_complaints.router)  # (services.satisfaction) /me/complaints: 我的投诉, the complaint form
router.include_router(staff_improvements.router)  # (services.satisfaction) /staff/improvements: the improvement items
router.include_router(admin_satisfaction.router)  # (services.satisfaction) /admin/satisfaction: the loop's dashboard
router.include_router(patient_consult.router)  # (services.consult) /me/consult: 在线咨询, the notice first, threads
router.include_router(staff_consult.router)  # (services.consult) /staff/consult: the advisers' queue and threads
