"""Roles and what they may do. `admin` holds every permission of `integration`."""

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


API_KEY_ROLES = (Role.integration, Role.admin)
STAFF_ROLES = (Role.frontdesk, Role.nurse, Role.moderator, Role.clinician, Role.admin, Role.auditor)

INTEGRATION = frozenset({"events:write", "events:revoke", "patients:write", "patients:read", "points:read",
                         "schedule:read", "appointments:read", "appointments:write",
                         "rewards:read", "redemptions:write", "coupons:verify", "fee_offsets:write",
                         "households:read", "households:write", "proxies:write",
                         # engagement and notifications, acting for the patient from the hospital's app
                         "health:read", "health:write", "engagement:read", "engagement:write",
                         "followups:read", "notifications:read", "notifications:write"})
CARE = frozenset({"health:read", "care:read", "care:write", "followups:read", "followups:write", "engagement:read"})
PERMISSIONS: dict[str, frozenset[str]] = {
    Role.integration: INTEGRATION,
    Role.admin: INTEGRATION | {"pii:read", "programme:write", "ledger:verify", "staff:write", "audit:read",
                               "schedule:write", "tiers:write", "rewards:write", "reports:read",
                               "content:write", "moderation:write", "lectures:write", "webhooks:write"} | CARE,
    Role.frontdesk: frozenset({"patients:read", "patients:write", "points:read", "events:write", "pii:read",
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
                             "rewards:read", "households:read"}),
}


def allows(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())
