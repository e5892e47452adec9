"""Staff logins: lockout after failed attempts, sessions with an idle time-out,
logout, and a TOTP second factor for administrators.

- Lockout: `staff_lockout_attempts` failures within `staff_lockout_window_minutes`
  lock the account for `staff_lockout_minutes` (423 `auth.locked`), counted by one
  UPDATE … RETURNING on the user's row, so concurrent failures all count and
  exactly those from the limit on are answered `auth.locked`; a login clears the count.
- Sessions: each token carries a `jti`, a `staff_sessions` row whose
  `last_seen_at` is touched at most once a minute; unused longer than
  `staff_idle_timeout_minutes`, or logged out, it answers 401 `auth.session_expired`.
- TOTP (pyotp, RFC 6238, 30-second steps, ±1 step of drift): the secret is
  sealed with a key derived from the secret key (Fernet); the last step used is
  stored and a code of that step or an earlier one is refused (no replay).

A failed attempt must be counted even though the login fails, so `login`
answers the refusal instead of raising it: the edge commits, then raises."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import case, insert, select, update
from sqlalchemy.orm import Session

from carepoints.config import Settings
from carepoints.kit.db import table
from carepoints.kit.errors import AppError, UnauthenticatedError
from carepoints.kit.ids import new_id
from carepoints.security.errors import (
    AccountLockedError,
    BadCredentialsError,
    OtpInvalidError,
    OtpRequiredError,
    SessionExpiredError,
)
from carepoints.security.models import StaffSession, StaffUser
from carepoints.security.permissions import Role

_users = table(StaffUser)
_sessions = table(StaffSession)
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("carepoints-timing-equaliser")
TOUCH_EVERY = timedelta(minutes=1)
TOTP_STEP = 30
ISSUER = "carepoints"


def _fernet(secret_key: str) -> Fernet:
    raw = hmac.new(secret_key.encode(), b"carepoints-totp-seal", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(raw))


def seal_totp(secret: str, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode()).decode()


def unseal_totp(sealed: str, secret_key: str) -> str | None:
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None


def needs_totp(role: str) -> bool:
    return role == Role.admin


def enrol_totp(session: Session, staff_user_id: str, username: str, secret_key: str) -> str:
    """Give the user a new TOTP secret (sealed in their row); answers the provisioning URI
    (otpauth://…) for an authenticator app. Shown once, never logged."""
    secret = pyotp.random_base32()
    session.connection().execute(update(_users).where(_users.c.id == staff_user_id).values(
        totp_secret=seal_totp(secret, secret_key), totp_last_step=None))
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def _totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (±1 around now) whose code `code` is, else None."""
    code = code.strip()
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // TOTP_STEP
    for candidate in (step, step - 1, step + 1):
        if hmac.compare_digest(totp.at(candidate * TOTP_STEP), code):
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class Issued:
    token: str
    expires_in: int


def _fail(session: Session, user_id: str, now: datetime, settings: Settings) -> AppError:
    """Count one failed attempt (guarded: a new window starts when the last one is over);
    the attempt that reaches the limit locks the account."""
    conn = session.connection()
    window_start = now - timedelta(minutes=settings.staff_lockout_window_minutes)
    fresh = (_users.c.failed_since.is_(None)) | (_users.c.failed_since < window_start)
    count = conn.execute(update(_users).where(_users.c.id == user_id).values(
        failed_logins=case((fresh, 1), else_=_users.c.failed_logins + 1),
        failed_since=case((fresh, now), else_=_users.c.failed_since)).returning(_users.c.failed_logins)).scalar_one()
    if count < settings.staff_lockout_attempts:
        return BadCredentialsError()
    conn.execute(update(_users).where(_users.c.id == user_id).values(
        locked_until=now + timedelta(minutes=settings.staff_lockout_minutes)))
    return AccountLockedError(minutes=settings.staff_lockout_minutes)


def login(session: Session, username: str, password: str, otp: str | None, now: datetime,
          settings: Settings) -> Issued | AppError:
    """Check the password (and an admin's TOTP code), then open a session and answer its
    token; or answer the refusal (failures are counted in this transaction: commit it)."""
    conn = session.connection()
    row = conn.execute(select(_users.c.id, _users.c.password_hash, _users.c.role, _users.c.locked_until,
                              _users.c.totp_secret, _users.c.totp_last_step)
                       .where(_users.c.username == username, _users.c.active.is_(True))).first()
    try:
        _hasher.verify(row[1] if row else _DUMMY, password)
        ok = row is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if row is None:
        return BadCredentialsError()
    uid, role, locked_until = str(row[0]), str(row[2]), row[3]
    if locked_until is not None and locked_until > now:
        minutes = max(1, int((locked_until - now).total_seconds() + 59) // 60)
        return AccountLockedError(minutes=minutes)
    if not ok:
        return _fail(session, uid, now, settings)
    if needs_totp(role):
        if not otp:
            return OtpRequiredError()
        secret = unseal_totp(row[4], settings.secret_key) if row[4] else None
        step = _totp_step(secret, otp, now) if secret else None
        if step is None or (row[5] is not None and step <= row[5]):
            err = _fail(session, uid, now, settings)
            return err if isinstance(err, AccountLockedError) else OtpInvalidError()
        used = conn.execute(update(_users).where(
            _users.c.id == uid, (_users.c.totp_last_step.is_(None)) | (_users.c.totp_last_step < step))
            .values(totp_last_step=step)).rowcount
        if not used:  # a concurrent login took this step first
            return OtpInvalidError()
    conn.execute(update(_users).where(_users.c.id == uid).values(failed_logins=0, failed_since=None,
                                                                  locked_until=None))
    ttl = settings.token_ttl_seconds
    jti = new_id()
    conn.execute(insert(_sessions), [{"id": jti, "staff_user_id": uid, "created_at": now, "last_seen_at": now,
                                      "expires_at": now + timedelta(seconds=ttl), "revoked_at": None}])
    claims = {"sub": uid, "role": role, "kind": "staff", "jti": jti, "iat": int(now.timestamp()),
              "exp": int((now + timedelta(seconds=ttl)).timestamp())}
    return Issued(jwt.encode(claims, settings.secret_key, algorithm="HS256"), ttl)


@dataclass(frozen=True, slots=True)
class StaffSessionInfo:
    user_id: str
    username: str
    role: str
    touch: bool  # last_seen_at is more than a minute old: the edge should `touch` it


def check_session(session: Session, user_id: str, jti: str, now: datetime, idle_minutes: int) -> StaffSessionInfo:
    """The active user of a live session (401 `auth.session_expired` when it was logged out or idle)."""
    row = session.connection().execute(
        select(_users.c.role, _users.c.username, _sessions.c.last_seen_at, _sessions.c.revoked_at)
        .select_from(_sessions.join(_users, _users.c.id == _sessions.c.staff_user_id))
        .where(_sessions.c.id == jti, _users.c.id == user_id, _users.c.active.is_(True))).first()
    if row is None:
        raise UnauthenticatedError()
    if row[3] is not None or row[2] < now - timedelta(minutes=idle_minutes):
        raise SessionExpiredError()
    return StaffSessionInfo(user_id, str(row[1]), str(row[0]), touch=row[2] < now - TOUCH_EVERY)


def touch(session: Session, jti: str, now: datetime) -> None:
    """Mark the session used now (at most once a minute: guarded, so concurrent requests write once)."""
    session.connection().execute(update(_sessions).where(
        _sessions.c.id == jti, _sessions.c.revoked_at.is_(None), _sessions.c.last_seen_at < now - TOUCH_EVERY)
        .values(last_seen_at=now))


def logout(session: Session, jti: str, now: datetime) -> None:
    """End the session; again is the same."""
    session.connection().execute(update(_sessions).where(_sessions.c.id == jti, _sessions.c.revoked_at.is_(None))
                                 .values(revoked_at=now))
