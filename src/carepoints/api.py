"""Every domain's JSON endpoints under /api/v1."""

from fastapi import APIRouter

from carepoints.analytics.endpoints import router as analytics
from carepoints.engagement.care.endpoints import router as care
from carepoints.engagement.community.endpoints import router as community
from carepoints.engagement.followups.endpoints import router as followups
from carepoints.engagement.health.endpoints import router as health
from carepoints.engagement.learning.endpoints import router as learning
from carepoints.enrolment.endpoints import router as patients
from carepoints.enrolment.household_endpoints import router as households
from carepoints.enrolment.identity_endpoints import router as identity
from carepoints.enrolment.merge_endpoints import router as merges
from carepoints.enrolment.privacy_endpoints import router as privacy
from carepoints.events.endpoints import router as events
from carepoints.experiments.endpoints import router as experiments
from carepoints.notifications.endpoints import router as notifications
from carepoints.operations.adjustment_endpoints import router as adjustments
from carepoints.operations.appeal_endpoints import router as appeals
from carepoints.operations.fraud_endpoints import router as fraud
from carepoints.patients.endpoints import router as proxies
from carepoints.rewards.endpoints import router as rewards
from carepoints.rules.governance_endpoints import router as programme
from carepoints.scheduling.alliance_endpoints import router as alliance
from carepoints.scheduling.endpoints import router as scheduling
from carepoints.security.audit_endpoints import router as audit_log
from carepoints.security.endpoints import router as auth
from carepoints.security.wechat_endpoints import router as wechat
from carepoints.services.admissions.endpoints import router as admissions
from carepoints.services.consult.endpoints import router as consult
from carepoints.services.forecast.endpoints import router as forecast
from carepoints.services.pricing.endpoints import router as pricing
from carepoints.services.queue.endpoints import router as queue
from carepoints.services.recommend.endpoints import router as recommend
from carepoints.services.reports.endpoints import router as reports
from carepoints.services.satisfaction.endpoints import router as satisfaction
from carepoints.services.triage.endpoints import router as triage
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
# (ops.identity routers)
router.include_router(identity)  # (ops.identity) real-name verification, duplicates, deceased / closed
# (ops.merge routers)
router.include_router(merges)  # (ops.merge) merging duplicate records
# (ops.adjustments routers)
router.include_router(adjustments)  # (ops.adjustments) manual adjustments, maker-checker
# (ops.appeals routers)
router.include_router(appeals)  # (ops.appeals) appeals of penalties and suspensions
# (ops.governance routers)
router.include_router(programme)  # (ops.governance) programme drafts, terms, versions
# (ops.fraud routers)
router.include_router(fraud)  # (ops.fraud) fraud review queue, earning freezes
# (ops.wechat routers)
router.include_router(wechat)  # (ops.wechat) WeChat binding and login
# (ops.alliance routers)
router.include_router(alliance)  # (ops.alliance) alliances, institution systems, patient links
router.include_router(analytics)  # (analytics) dashboards: KPIs, care list, equity, experiments; CSV / Excel
router.include_router(experiments)  # (experiments) A/B tests of rules: create, start, stop, assignment
router.include_router(pricing)  # (services.pricing) price catalogue import, items, packages, cost estimates
router.include_router(triage)  # (services.triage) triage guidance (智能导诊) and its knowledge base
router.include_router(queue)  # (services.queue) queue calls (候诊提醒): call next, recall, skip, positions
router.include_router(reports)  # (services.reports) diagnostic reports (检查检验报告): push, patient reads, release
router.include_router(admissions)  # (services.admissions) 住院预约, 择期/日间手术, 预就诊
router.include_router(consult)  # (services.consult) online consultation (在线咨询): threads, queue, claim, rating
router.include_router(recommend)  # (services.recommend) recommendations (为您推荐) and the patient's switch
router.include_router(satisfaction)  # (services.satisfaction) complaints, improvement items, dashboard, alerts
router.include_router(forecast)  # (services.forecast) demand-driven quotas (智能号源): runs, suggestions, apply
