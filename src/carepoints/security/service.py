"""Principals: API keys (stored as SHA-256 hashes) for hospital systems and
staff users (argon2 password hashes) who exchange a password for a signed,
short-lived token."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import jwt
from argon2 import PasswordHasher
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.kit.errors import UnauthenticatedError, ValidationFailedError
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.time import utc_now
from carepoints.security import scope, signing, staff
from carepoints.security.errors import (
    KeyExpiredError,
    StaffNotFoundError,
    UnknownRoleError,
    UsernameTakenError,
)
from carepoints.security.models import ApiKey, ApiKeyInstitution, StaffUser
from carepoints.security.permissions import API_KEY_ROLES, STAFF_ROLES, Role, allows

_hasher = PasswordHasher()
_KEY_PREFIX = "cpk_"
MAX_RATE_LIMIT = 100_000  # (trust.signing) requests per minute a key may be given


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # api_key | staff
    id: str
    role: str
    name: str
    # (trust.signing) set for keys that must sign: the HMAC key their requests are verified with
    signing_secret: str | None = field(default=None, repr=False, compare=False)
    rate_limit: int | None = None  # (trust.signing) requests per minute (kit.ratelimit); None = no limit
    # (trust.auth) a patient token: the patients who authorised it as proxy, with scopes (security.scope)
    reach: Mapping[str, frozenset[str]] | None = field(default=None, repr=False, compare=False)
    # (trust.auth) a staff token's session (jti), and whether its last_seen_at is due a touch
    session_id: str | None = field(default=None, compare=False)
    touch: bool = field(default=False, compare=False)
    # (ops.alliance) a key bound to institutions or a staff user working at one: the institution ids
    # it reaches (security.scope); None = the whole alliance
    institutions: frozenset[str] | None = field(default=None, compare=False)

    def can(self, permission: str) -> bool:
        return allows(self.role, permission)

    def actor(self) -> Actor:
        """Who this principal is in the audit log."""
        return Actor(self.kind, self.id, self.role)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(session: Session, name: str, role: str, now: datetime, *,
                   require_signature: bool = False, rate_limit: int | None = None,
                   institutions: Sequence[str] = ()) -> tuple[str, str]:
    """Returns (key id, secret). Only the hash is stored; the secret is shown once. A key that
    must sign also keeps its secret sealed as its signing secret (security.signing);
    `rate_limit` caps its requests per minute (None = no limit)."""
    if role not in API_KEY_ROLES:
        raise UnknownRoleError(role=role)
    if rate_limit is not None and not 1 <= rate_limit <= MAX_RATE_LIMIT:
        raise ValidationFailedError(fields=[{"loc": ["rate_limit"], "msg": f"must be 1..{MAX_RATE_LIMIT}"}])
    secret = _KEY_PREFIX + secrets.token_urlsafe(32)
    kid = new_id()
    sealed = signing.seal(secret, kid, get_settings().secret_key) if require_signature else None
    session.connection().execute(insert(ApiKey), [{
        "id": kid, "name": name, "role": role, "key_hash": _digest(secret), "prefix": secret[:10],
        "require_signature": require_signature, "signing_secret": sealed, "rate_limit_per_minute": rate_limit,
        "created_at": now, "revoked_at": None}])
    if institutions:  # (ops.alliance) institution ids, resolved from codes by the caller
        session.connection().execute(insert(ApiKeyInstitution), [
            {"key_id": kid, "institution_id": i} for i in dict.fromkeys(institutions)])
    return kid, secret


def authenticate_key(session: Session, secret: str, now: datetime | None = None) -> Principal | None:
    if not secret.startswith(_KEY_PREFIX):
        return None
    row = session.connection().execute(
        select(ApiKey.id, ApiKey.role, ApiKey.name, ApiKey.require_signature, ApiKey.signing_secret,
               ApiKey.rate_limit_per_minute, ApiKey.expires_at)
        .where(ApiKey.key_hash == _digest(secret), ApiKey.revoked_at.is_(None))).first()
    if row is None:
        return None
    if row[6] is not None and row[6] <= (now or utc_now()):  # (trust.auth) expired, or rotated past its grace
        raise KeyExpiredError()
    signing_secret = None
    if row[3]:
        # The caller (security.deps) verifies every request of such a key; the signing secret
        # is the key's secret, so one sealed before a secret-key change (or never) is the credential.
        signing_secret = (signing.unseal(row[4], row[0], get_settings().secret_key) if row[4] else None) or secret
    bound = frozenset(session.connection().execute(  # (ops.alliance) cached with the key (security.deps)
        select(ApiKeyInstitution.institution_id).where(ApiKeyInstitution.key_id == row[0])).scalars())
    return Principal("api_key", row[0], row[1], row[2], signing_secret=signing_secret, rate_limit=row[5],
                     institutions=bound or None)


def revoke_api_key(session: Session, key_id: str, now: datetime) -> None:
    session.connection().execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=now))


def create_staff(session: Session, username: str, password: str, role: str, now: datetime, *,
                 institution_id: str | None = None, alliance_wide: bool = False) -> str:
    if role not in STAFF_ROLES:
        raise UnknownRoleError(role=role)
    conn = session.connection()
    if conn.execute(select(StaffUser.id).where(StaffUser.username == username)).first():
        raise UsernameTakenError()
    sid = new_id()
    conn.execute(insert(StaffUser), [{"id": sid, "username": username, "password_hash": _hasher.hash(password),
                                      "role": role, "active": True, "created_at": now,
                                      "institution_id": institution_id, "alliance_wide": alliance_wide}])
    return sid


def authenticate_token(session: Session, token: str, secret_key: str, now: datetime | None = None) -> Principal:
    """A staff token is honoured only while its user is active and its session live (security.staff:
    idle time-out, logout); the role is the user's current one. A patient token (security.otp)
    reaches its patient and those who authorised it as proxy (security.scope), while the patient
    may log in."""
    try:
        claims = jwt.decode(token, secret_key, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError:
        raise UnauthenticatedError() from None
    now = now or utc_now()
    sub = str(claims["sub"])
    if claims.get("kind") == "patient":
        reach = scope.directory().reach(session, sub, now)
        if reach is None:
            raise UnauthenticatedError()
        return Principal("patient", sub, Role.patient, sub, reach=reach)
    jti = claims.get("jti")
    if claims.get("kind") != "staff" or not isinstance(jti, str):
        raise UnauthenticatedError()
    info = staff.check_session(session, sub, jti, now, get_settings().staff_idle_timeout_minutes)
    return Principal("staff", sub, info.role, info.username, session_id=jti, touch=info.touch,
                     institutions=staff_institutions(session, sub, info.role))


def staff_institutions(session: Session, staff_user_id: str, role: str) -> frozenset[str] | None:
    """(ops.alliance) The institutions a staff user sees: their own, unless they are granted the
    alliance, are an admin, or have none (users from before institutions were bound)."""
    if role == Role.admin:
        return None
    row = session.connection().execute(select(StaffUser.institution_id, StaffUser.alliance_wide)
                                       .where(StaffUser.id == staff_user_id)).first()
    if row is None or row[0] is None or row[1]:
        return None
    return frozenset({str(row[0])})


def authenticate(session: Session, credential: str, secret_key: str, now: datetime | None = None) -> Principal:
    principal = authenticate_key(session, credential, now)
    if principal is not None:
        return principal
    if credential.startswith(_KEY_PREFIX) or credential.count(".") != 2:
        raise UnauthenticatedError()
    return authenticate_token(session, credential, secret_key, now)


def deactivate_staff(session: Session, username: str) -> None:
    session.connection().execute(update(StaffUser).where(StaffUser.username == username).values(active=False))


def active_staff(session: Session, staff_user_id: str) -> tuple[str, str, str] | None:
    """(id, username, role) of an active staff user, or None."""
    row = session.connection().execute(
        select(StaffUser.id, StaffUser.username, StaffUser.role)
        .where(StaffUser.id == staff_user_id, StaffUser.active.is_(True))).first()
    return None if row is None else (row[0], row[1], row[2])


def staff_users(session: Session) -> list[dict[str, object]]:
    """Every staff user with role and state (never a password hash), active ones first."""
    rows = session.connection().execute(
        select(StaffUser.id, StaffUser.username, StaffUser.role, StaffUser.active, StaffUser.created_at,
               StaffUser.locked_until).order_by(StaffUser.active.desc(), StaffUser.username))
    return [dict(r) for r in rows.mappings()]


def staff_user(session: Session, staff_user_id: str) -> dict[str, object]:
    """One staff user (id, username, role, active); 404 `staff.not_found`."""
    row = session.connection().execute(
        select(StaffUser.id, StaffUser.username, StaffUser.role, StaffUser.active)
        .where(StaffUser.id == staff_user_id)).mappings().first() if is_id(staff_user_id) else None
    if row is None:
        raise StaffNotFoundError()
    return dict(row)


def set_staff_role(session: Session, staff_user_id: str, role: str) -> None:
    """Give a staff user another role (422 for a role staff cannot hold); their next request uses it."""
    if role not in STAFF_ROLES:
        raise ValidationFailedError(fields=[{"loc": ["role"], "msg": "unknown staff role"}])
    staff_user(session, staff_user_id)
    session.connection().execute(update(StaffUser).where(StaffUser.id == staff_user_id).values(role=role))


def api_keys(session: Session) -> list[dict[str, object]]:
    """Every API key by its prefix (the secret is never stored), live ones first, newest first."""
    rows = session.connection().execute(
        select(ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.prefix, ApiKey.created_at, ApiKey.revoked_at,
               ApiKey.expires_at, ApiKey.require_signature)
        .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc()))
    return [dict(r) for r in rows.mappings()]
