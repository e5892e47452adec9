"""Roles and what they may do: the one access-control matrix of carepoints.

Every endpoint names one permission (`security.deps.require(permission)`);
a role may call it exactly when its set below holds that permission
(`tests/security/test_matrix.py` walks every route of the app over HTTP with a
credential of every role and fails on a route without a rule).

| role | who | holds |
|---|---|---|
| integration | hospital systems (API keys) | events, enrolment, points, booking, rewards, engagement for the patient |
| admin | programme admin (API key or staff + TOTP) | every permission of `integration`, programme, staff, audit, PII |
| frontdesk | service window (积分服务专窗) | patients, PII, check-in, coupons (核销), offline entries, households |
| nurse | follow-up team | care alerts, follow-ups, health readings, booking |
| moderator | community moderation | moderation, reading engagement |
| clinician | doctors | care, health readings, doctor-booked follow-ups |
| auditor | audit | audit log, ledger verification, reports (read only) |
| patient | a patient (phone + one-time code) | `PATIENT`: only for themself — see below |
| proxy | a patient acting for another (代办) | `PROXY_SCOPES` of the authorisation: view → the reads, |
|  |  | book → appointments:write, redeem → redemptions:write |

A patient token reaches only its own patient and those who authorised it as
proxy (active `ProxyAuthorisation` rows naming it). `require` checks the role
first (403), then the patient named in the path (404 `patients.not_found` when
out of reach, so ids cannot be probed), and patients named in a body or query
are checked where the request resolves them (`patients.service.id_for`)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    integration = "integration"
    admin = "admin"
    frontdesk = "frontdesk"
    nurse = "nurse"
    moderator = "moderator"
    clinician = "clinician"
    auditor = "auditor"
    patient = "patient"
    proxy = "proxy"


API_KEY_ROLES = (Role.integration, Role.admin)
STAFF_ROLES = (Role.frontdesk, Role.nurse, Role.moderator, Role.clinician, Role.admin, Role.auditor)

INTEGRATION = frozenset({"events:write", "events:revoke", "patients:write", "patients:read", "points:read",
                         "schedule:read", "appointments:read", "appointments:write",
                         "rewards:read", "redemptions:write", "coupons:verify", "fee_offsets:write",
                         "households:read", "households:write", "proxies:write",
                         # engagement and notifications, acting for the patient from the hospital's app
                         "health:read", "health:write", "engagement:read", "engagement:write",
                         "followups:read", "notifications:read", "notifications:write",
                         # FHIR ingest may enrol a Patient it cannot match (consent source institution)
                         "patients:enrol",
                         # (trust.privacy) consents per purpose and the patient's data download (PIPL)
                         "consents:read", "consents:write", "privacy:export"})
CARE = frozenset({"health:read", "care:read", "care:write", "followups:read", "followups:write", "engagement:read"})
PERMISSIONS: dict[str, frozenset[str]] = {
    Role.integration: INTEGRATION,
    Role.admin: INTEGRATION | {"pii:read", "programme:write", "ledger:verify", "staff:write", "audit:read",
                               "access_report:read", "schedule:write", "tiers:write", "rewards:write", "reports:read",
                               "content:write", "moderation:write", "lectures:write", "webhooks:write",
                               "privacy:erase"} | CARE,
    Role.frontdesk: frozenset({"patients:read", "patients:write", "points:read", "events:write", "pii:read",
                               "consents:read", "consents:write", "privacy:export", "privacy:erase",
                               "schedule:read", "appointments:read", "appointments:write", "tiers:write",
                               "rewards:read", "redemptions:write", "coupons:verify",
                               "households:read", "households:write", "proxies:write",
                               "health:read", "health:write", "engagement:read", "engagement:write",
                               "lectures:write"}),
    Role.nurse: frozenset({"patients:read", "points:read", "events:write", "schedule:read", "appointments:read",
                           "appointments:write", "health:write", "lectures:write"}) | CARE,
    Role.moderator: frozenset({"patients:read", "events:write", "engagement:read", "moderation:write"}),
    Role.clinician: frozenset({"patients:read", "points:read", "schedule:read", "appointments:read",
                               "appointments:follow_up", "health:write"}) | CARE,
    Role.auditor: frozenset({"patients:read", "points:read", "ledger:verify", "audit:read", "reports:read",
                             "rewards:read", "households:read", "access_report:read"}),
}

# issue 7 additions: each area widens the role sets above at its marker, e.g.
# PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"x:write"}
# (ops.identity permissions)
# real-name verification (the service window), the duplicate review list, deceased / closed accounts;
# a verification status is read by the hospital's systems and auditors too
PERMISSIONS[Role.integration] = PERMISSIONS[Role.integration] | {"identity:read"}
PERMISSIONS[Role.frontdesk] = PERMISSIONS[Role.frontdesk] | {"identity:read", "identity:verify", "identity:review",
                                                             "patients:close"}
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"identity:read", "identity:verify", "identity:review",
                                                     "patients:close"}
PERMISSIONS[Role.auditor] = PERMISSIONS[Role.auditor] | {"identity:read"}
# (ops.merge permissions)
PERMISSIONS[Role.frontdesk] = PERMISSIONS[Role.frontdesk] | {"patients:merge"}
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"patients:merge"}
# (ops.adjustments permissions)
# manual adjustments: the service window and admins make and approve them (never their own), auditors read
PERMISSIONS[Role.frontdesk] = PERMISSIONS[Role.frontdesk] | {"adjustments:write", "adjustments:read",
                                                             "adjustments:approve"}
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"adjustments:write", "adjustments:read", "adjustments:approve"}
PERMISSIONS[Role.auditor] = PERMISSIONS[Role.auditor] | {"adjustments:read"}
# (ops.appeals permissions)
# appeals of penalties and suspensions: filed by the patient, the service window or the hospital app;
# decided by the service window or admins; the queue (every appeal) is staff's, `appeals:view` reads a
# named patient's (a patient token: only its own)
APPEALS_PATIENT = frozenset({"appeals:write", "appeals:view"})
PERMISSIONS[Role.integration] = PERMISSIONS[Role.integration] | APPEALS_PATIENT
PERMISSIONS[Role.frontdesk] = PERMISSIONS[Role.frontdesk] | {"appeals:write", "appeals:read", "appeals:decide"}
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | APPEALS_PATIENT | {"appeals:read", "appeals:decide"}
PERMISSIONS[Role.auditor] = PERMISSIONS[Role.auditor] | {"appeals:read"}
# (ops.governance permissions)
# programme drafts: admins draft and approve (programme:write); admins and auditors read them
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"programme:read"}
PERMISSIONS[Role.auditor] = PERMISSIONS[Role.auditor] | {"programme:read"}
# (ops.fraud permissions)
# the fraud review queue: admins review (freeze earning, revoke events); auditors may read it
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"fraud:read", "fraud:review"}
PERMISSIONS[Role.auditor] = PERMISSIONS[Role.auditor] | {"fraud:read"}
# (ops.wechat permissions)
# a patient binds / unbinds their own WeChat; the patient and the service window see whether one is bound
# (PERMISSIONS[Role.patient] is set below from PATIENT: these join it there)
WECHAT_PATIENT = frozenset({"wechat:bind", "wechat:read"})
PERMISSIONS[Role.frontdesk] = PERMISSIONS[Role.frontdesk] | {"wechat:read"}
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"wechat:read"}
# (ops.alliance permissions)
# the alliance's set-up is the admin's; front desks and HIS integrations link patients to institutions
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"alliance:write", "alliance:link"}
PERMISSIONS[Role.frontdesk] = PERMISSIONS[Role.frontdesk] | {"alliance:link"}
PERMISSIONS[Role.integration] = PERMISSIONS[Role.integration] | {"alliance:link"}

# (analytics permissions)
# dashboards and exports are the programme admin's and the auditor's; the care list is the care team's
# (care:read); experiments are run by admins and read by auditors
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"analytics:read", "experiments:read", "experiments:write"}
PERMISSIONS[Role.auditor] = PERMISSIONS[Role.auditor] | {"analytics:read", "experiments:read"}
# (services.pricing permissions)
# the price catalogue and cost estimates are read by the hospital's systems, staff and patients (the
# patient's grant is below, after PATIENT); admins import the catalogue and set the 乙 share
for _reader in (Role.integration, Role.admin, Role.frontdesk, Role.nurse, Role.clinician, Role.auditor):
    PERMISSIONS[_reader] = PERMISSIONS[_reader] | {"pricing:read"}
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"pricing:write"}
# (services.triage permissions)
# triage guidance is asked by patients for themself (below, after PATIENT), kiosks (integration keys) and
# the staff who help patients choose a department; the knowledge base is the admin's, its counts are read
# by admins and auditors
for _asker in (Role.integration, Role.admin, Role.frontdesk, Role.nurse, Role.clinician):
    PERMISSIONS[_asker] = PERMISSIONS[_asker] | {"triage:ask"}
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"triage:read", "triage:write"}
PERMISSIONS[Role.auditor] = PERMISSIONS[Role.auditor] | {"triage:read"}
# (services.queue permissions)
# queue calls: the desk, nurses and clinicians (of the session's department: the service checks) and the HIS
# call and read a session's queue; admins assign desk staff to departments; patients read their own
# position through appointments:read
for _caller in (Role.integration, Role.admin, Role.frontdesk, Role.nurse, Role.clinician):
    PERMISSIONS[_caller] = PERMISSIONS[_caller] | {"queue:call", "queue:read"}
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"queue:assign"}
# (services.reports permissions)
# diagnostic reports are pushed by the HIS / LIS (integration keys); read by the care team, the service
# window and the hospital app (every staff read is audited); clinicians release held ones (care:write)
for _pusher in (Role.integration, Role.admin):
    PERMISSIONS[_pusher] = PERMISSIONS[_pusher] | {"diagnostic_reports:write", "diagnostic_reports:read"}
for _reader in (Role.frontdesk, Role.nurse, Role.clinician):
    PERMISSIONS[_reader] = PERMISSIONS[_reader] | {"diagnostic_reports:read"}
# (services.admissions permissions)
# wards and operating rooms are set up by admins; clinicians, ward nurses and the HIS issue admission orders,
# surgery requests and pre-visit exams and run them (admit, checks, schedule); the desk reads the day views;
# a patient reads their own and chooses their admission date through appointments:read / appointments:write
for _runner in (Role.integration, Role.admin, Role.nurse, Role.clinician):
    PERMISSIONS[_runner] = PERMISSIONS[_runner] | {"admissions:read", "admissions:write"}
PERMISSIONS[Role.frontdesk] = PERMISSIONS[Role.frontdesk] | {"admissions:read"}
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"admissions:setup"}
# (services.satisfaction permissions)
# complaints (投诉) are filed and read by patients for themselves (below, after PATIENT), the hospital's app and
# the staff who take them; improvement items are worked by the front desk, nurses, clinicians and admins and
# read by auditors; the loop's dashboard and department alerts are the admin's (auditors read)
for _handler in (Role.admin, Role.frontdesk, Role.nurse, Role.clinician):
    PERMISSIONS[_handler] = PERMISSIONS[_handler] | {"complaints:write", "complaints:read", "improvements:read",
                                                     "improvements:write"}
PERMISSIONS[Role.integration] = PERMISSIONS[Role.integration] | {"complaints:write", "complaints:read"}
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"satisfaction:read", "satisfaction:write"}
PERMISSIONS[Role.auditor] = PERMISSIONS[Role.auditor] | {"improvements:read", "satisfaction:read"}

# (services.consult permissions)
# online consultations are answered by clinician- and nurse-role staff on a department's roster (the service
# checks the roster; pharmacists sign in with one of those roles); admins keep the roster and may read every
# thread (each staff read audited); patients ask for themselves (below, after PATIENT)
for _adviser in (Role.clinician, Role.nurse, Role.admin):
    PERMISSIONS[_adviser] = PERMISSIONS[_adviser] | {"consult:answer"}
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"consult:manage"}
# (services.recommend permissions)
# a patient's recommendations are read by the hospital's app (shown to the patient), the front desk and admins
# (each staff read audited); the patient's switch is set by them (below, after PATIENT), the hospital's app
# acting for them, the front desk helping them and admins
for _recommender in (Role.integration, Role.admin, Role.frontdesk):
    PERMISSIONS[_recommender] = PERMISSIONS[_recommender] | {"recommendations:read", "recommendations:write"}
# (services.forecast permissions)
# demand forecasts and capacity suggestions (智能号源) are the programme admin's (who applies them through the
# scheduling service) and read by auditors
PERMISSIONS[Role.admin] = PERMISSIONS[Role.admin] | {"forecast:read", "forecast:write"}
PERMISSIONS[Role.auditor] = PERMISSIONS[Role.auditor] | {"forecast:read"}

# (trust.auth) what a patient may do for themself; a route naming another patient answers 404
PATIENT = frozenset({"points:read", "schedule:read", "appointments:read", "appointments:write",
                     "rewards:read", "redemptions:write", "health:read", "health:write",
                     "engagement:read", "engagement:write", "followups:read",
                     "notifications:read", "notifications:write", "households:read",
                     "consents:read", "consents:write", "access_report:read", "privacy:export", "privacy:erase"})
# what a proxy may do for the patient who authorised them, by the authorisation's scopes
PROXY_SCOPES: dict[str, frozenset[str]] = {
    "view": frozenset(p for p in PATIENT if p.endswith(":read")),
    "book": frozenset({"appointments:write"}),
    "redeem": frozenset({"redemptions:write"}),
}
PERMISSIONS[Role.patient] = PATIENT | WECHAT_PATIENT | APPEALS_PATIENT  # (ops.wechat; ops.appeals)
PERMISSIONS[Role.patient] = PERMISSIONS[Role.patient] | {"pricing:read"}  # (services.pricing) not about a patient
PERMISSIONS[Role.patient] = PERMISSIONS[Role.patient] | {"triage:ask"}  # (services.triage) for themself
# (services.reports) a patient reads their own reports, a proxy with view those of who authorised it
PERMISSIONS[Role.patient] = PERMISSIONS[Role.patient] | {"diagnostic_reports:read"}
PROXY_SCOPES["view"] = PROXY_SCOPES["view"] | {"diagnostic_reports:read"}
# (services.satisfaction) a patient files and reads their own complaints, a proxy with view reads them
PERMISSIONS[Role.patient] = PERMISSIONS[Role.patient] | {"complaints:write", "complaints:read"}
PROXY_SCOPES["view"] = PROXY_SCOPES["view"] | {"complaints:read"}
# (services.consult) a patient asks and reads their own consultations; a proxy with view reads them, one with
# book (who arranges the patient's care) also asks for them
PERMISSIONS[Role.patient] = PERMISSIONS[Role.patient] | {"consult:ask", "consult:read"}
PROXY_SCOPES["view"] = PROXY_SCOPES["view"] | {"consult:read"}
PROXY_SCOPES["book"] = PROXY_SCOPES["book"] | {"consult:ask", "consult:read"}
# (services.recommend) a patient reads and switches their own recommendations, a proxy with view reads them
PERMISSIONS[Role.patient] = PERMISSIONS[Role.patient] | {"recommendations:read", "recommendations:write"}
PROXY_SCOPES["view"] = PROXY_SCOPES["view"] | {"recommendations:read"}
PERMISSIONS[Role.proxy] = frozenset().union(*PROXY_SCOPES.values())
PATIENT_ROLES = (Role.patient,)
# every signed-in caller may end their own session
for _role in list(PERMISSIONS):
    PERMISSIONS[_role] = PERMISSIONS[_role] | {"auth:logout"}


def proxy_allows(scopes: frozenset[str], permission: str) -> bool:
    """May a proxy holding `scopes` use `permission` for the patient who authorised them?"""
    return any(permission in PROXY_SCOPES.get(scope, frozenset()) for scope in scopes)


def allows(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())
