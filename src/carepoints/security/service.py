"""Principals: API keys (stored as SHA-256 hashes) for hospital systems and
staff users (argon2 password hashes) who exchange a password for a signed,
short-lived token."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor
from carepoints.kit.errors import UnauthenticatedError
from carepoints.kit.ids import new_id
from carepoints.security.errors import (
    BadCredentialsError,
    SignatureRequiredError,
    UnknownRoleError,
    UsernameTakenError,
)
from carepoints.security.models import ApiKey, StaffUser
from carepoints.security.permissions import API_KEY_ROLES, STAFF_ROLES, allows

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("carepoints-timing-equaliser")
_KEY_PREFIX = "cpk_"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # api_key | staff
    id: str
    role: str
    name: str

    def can(self, permission: str) -> bool:
        return allows(self.role, permission)

    def actor(self) -> Actor:
        """Who this principal is in the audit log."""
        return Actor(self.kind, self.id, self.role)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(session: Session, name: str, role: str, now: datetime, *,
                   require_signature: bool = False) -> tuple[str, str]:
    """Returns (key id, secret). Only the hash is stored; the secret is shown once."""
    if role not in API_KEY_ROLES:
        raise UnknownRoleError(role=role)
    secret = _KEY_PREFIX + secrets.token_urlsafe(32)
    kid = new_id()
    session.connection().execute(insert(ApiKey), [{
        "id": kid, "name": name, "role": role, "key_hash": _digest(secret), "prefix": secret[:10],
        "require_signature": require_signature, "created_at": now, "revoked_at": None}])
    return kid, secret


def authenticate_key(session: Session, secret: str) -> Principal | None:
    if not secret.startswith(_KEY_PREFIX):
        return None
    row = session.connection().execute(
        select(ApiKey.id, ApiKey.role, ApiKey.name, ApiKey.require_signature)
        .where(ApiKey.key_hash == _digest(secret), ApiKey.revoked_at.is_(None))).first()
    if row is None:
        return None
    if row[3]:
        # Signed requests (HMAC over method, path, timestamp, nonce, body) arrive with the
        # trust release; until then such a key is refused rather than accepted unsigned.
        raise SignatureRequiredError()
    return Principal("api_key", row[0], row[1], row[2])


def revoke_api_key(session: Session, key_id: str, now: datetime) -> None:
    session.connection().execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=now))


def create_staff(session: Session, username: str, password: str, role: str, now: datetime) -> str:
    if role not in STAFF_ROLES:
        raise UnknownRoleError(role=role)
    conn = session.connection()
    if conn.execute(select(StaffUser.id).where(StaffUser.username == username)).first():
        raise UsernameTakenError()
    sid = new_id()
    conn.execute(insert(StaffUser), [{"id": sid, "username": username, "password_hash": _hasher.hash(password),
                                      "role": role, "active": True, "created_at": now}])
    return sid


def login_staff(session: Session, username: str, password: str, *, secret_key: str, ttl: int,
                now: datetime) -> str:
    row = session.connection().execute(select(StaffUser.id, StaffUser.password_hash, StaffUser.role)
                                       .where(StaffUser.username == username, StaffUser.active.is_(True))).first()
    try:
        _hasher.verify(row[1] if row else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        raise BadCredentialsError() from None
    if row is None:
        raise BadCredentialsError()
    claims = {"sub": row[0], "role": row[2], "kind": "staff", "iat": int(now.timestamp()),
              "exp": int((now + timedelta(seconds=ttl)).timestamp())}
    return jwt.encode(claims, secret_key, algorithm="HS256")


def authenticate_token(session: Session, token: str, secret_key: str) -> Principal:
    """A staff token is honoured only while its user is active; the role is the user's current one."""
    try:
        claims = jwt.decode(token, secret_key, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError:
        raise UnauthenticatedError() from None
    row = session.connection().execute(select(StaffUser.role, StaffUser.username).where(
        StaffUser.id == str(claims["sub"]), StaffUser.active.is_(True))).first()
    if row is None:
        raise UnauthenticatedError()
    return Principal("staff", str(claims["sub"]), row[0], row[1])


def authenticate(session: Session, credential: str, secret_key: str) -> Principal:
    principal = authenticate_key(session, credential)
    if principal is not None:
        return principal
    if credential.startswith(_KEY_PREFIX) or credential.count(".") != 2:
        raise UnauthenticatedError()
    return authenticate_token(session, credential, secret_key)


def deactivate_staff(session: Session, username: str) -> None:
    session.connection().execute(update(StaffUser).where(StaffUser.username == username).values(active=False))


def active_staff(session: Session, staff_user_id: str) -> tuple[str, str, str] | None:
    """(id, username, role) of an active staff user, or None."""
    row = session.connection().execute(
        select(StaffUser.id, StaffUser.username, StaffUser.role)
        .where(StaffUser.id == staff_user_id, StaffUser.active.is_(True))).first()
    return None if row is None else (row[0], row[1], row[2])
