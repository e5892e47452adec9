"""Patient login with a one-time code sent to their phone.

`issue` stores a 6-digit code for a phone — only HMACs (under the secret key)
of the phone, the caller's address and the code are kept — valid for
`otp_ttl_seconds` and `otp_max_attempts` wrong tries; a new code replaces the
phone's open one. It is rate-limited per phone (per minute and per hour) and
per caller address (per hour), counted in the database so that the limits hold
across worker processes: on PostgreSQL a transaction-scoped advisory lock per
phone and address serialises the count and the insert, on SQLite BEGIN
IMMEDIATE does. The answer is the same whether or not a patient uses the
phone (no account enumeration); the code is sent only when one does.

`login` checks a code and, when it is right, consumes it with a guarded UPDATE
(exactly one of concurrent verifications wins) and answers a patient token:
JWT `kind: patient`, `sub` = the patient id, `patient_token_ttl_seconds`.
Several patients on one phone: without a `patient_id` among them the answer
is 409 `auth.choose_patient` with their ids and masked names, and the code
stays open for the choice. Codes never appear in logs; only with
CAREPOINTS_DEV_OTP=1 (SQLite only) is the code kept readable for the dev inbox."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

import jwt
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from carepoints.config import Settings
from carepoints.kit.db import serialise, table
from carepoints.kit.errors import AppError, ValidationFailedError
from carepoints.kit.ids import new_id
from carepoints.kit.ratelimit import RateLimitedError
from carepoints.security import scope
from carepoints.security.errors import (
    ChoosePatientError,
    CodeAttemptsExceededError,
    CodeInvalidError,
    NoPatientForPhoneError,
)
from carepoints.security.models import OtpCode

_codes = table(OtpCode)
_PHONE = re.compile(r"^\+?[0-9]{6,20}$")
KEEP = timedelta(days=1)  # a phone's codes older than this are deleted when it asks for a new one


def normalise_phone(phone: str) -> str:
    """Digits (and a leading +) only; 422 for anything that is not a phone number."""
    cleaned = re.sub(r"[\s\-()]", "", phone or "")
    if not _PHONE.match(cleaned):
        raise ValidationFailedError(fields=[{"loc": ["body", "phone"], "msg": "not a phone number"}])
    return cleaned


def _mac(secret_key: str, purpose: str, value: str) -> str:
    return hmac.new(secret_key.encode(), f"carepoints-otp-{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def _serialise(session: Session, keys: list[str]) -> None:
    """PostgreSQL: one transaction at a time counts and inserts for each key (sorted: no deadlock)."""
    serialise(session.connection(), *keys)


def _check_limit(session: Session, column: str, value: str, since: datetime, limit: int, window: timedelta,
                 now: datetime) -> None:
    col = _codes.c[column]
    count, oldest = session.connection().execute(
        select(func.count(), func.min(_codes.c.created_at)).where(col == value, _codes.c.created_at > since)).one()
    if count >= limit:
        wait = (oldest + window - now).total_seconds() if oldest is not None else window.total_seconds()
        raise RateLimitedError(retry_after=max(1, int(wait + 0.999)))


def issue(session: Session, phone: str, ip: str, now: datetime, settings: Settings) -> tuple[str, bool]:
    """Store a new code for `phone` (429 `rate.limited` over a limit); answers (code, whether a
    patient uses the phone — send it only then)."""
    phone = normalise_phone(phone)
    phone_hash = _mac(settings.secret_key, "phone", phone)
    ip_hash = _mac(settings.secret_key, "ip", ip or "unknown")
    _serialise(session, ["otp-phone:" + phone_hash, "otp-ip:" + ip_hash])
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    _check_limit(session, "phone_hash", phone_hash, now - minute, settings.otp_per_phone_per_minute, minute, now)
    _check_limit(session, "phone_hash", phone_hash, now - hour, settings.otp_per_phone_per_hour, hour, now)
    _check_limit(session, "ip_hash", ip_hash, now - hour, settings.otp_per_ip_per_hour, hour, now)
    conn = session.connection()
    conn.execute(delete(_codes).where(_codes.c.phone_hash == phone_hash, _codes.c.created_at < now - KEEP))
    conn.execute(update(_codes).where(_codes.c.phone_hash == phone_hash, _codes.c.consumed_at.is_(None))
                 .values(consumed_at=now))  # the new code replaces any open one
    code = f"{secrets.randbelow(1_000_000):06d}"
    conn.execute(_codes.insert(), [{
        "id": new_id(), "phone_hash": phone_hash, "ip_hash": ip_hash,
        "code_hash": _mac(settings.secret_key, "code", code), "attempts": 0, "created_at": now,
        "expires_at": now + timedelta(seconds=settings.otp_ttl_seconds), "consumed_at": None,
        "dev_code": code if settings.dev_otp and settings.is_sqlite else None}])
    known = bool(scope.directory().choices(session, phone))
    return code, known


def sms_text(code: str, settings: Settings) -> str:
    minutes = max(1, settings.otp_ttl_seconds // 60)
    return (f"【carepoints】您的登录验证码为{code},{minutes}分钟内有效,请勿告诉他人。"
            f" / Your login code is {code}, valid for {minutes} min. Do not share it.")


def dev_code(session: Session, phone: str, now: datetime, settings: Settings) -> str | None:
    """The open code of a phone, readable only with CAREPOINTS_DEV_OTP=1 (else None)."""
    if not (settings.dev_otp and settings.is_sqlite):
        return None
    phone_hash = _mac(settings.secret_key, "phone", normalise_phone(phone))
    return session.connection().execute(
        select(_codes.c.dev_code).where(_codes.c.phone_hash == phone_hash, _codes.c.consumed_at.is_(None),
                                        _codes.c.expires_at > now)
        .order_by(_codes.c.created_at.desc()).limit(1)).scalar()


def patient_token(patient_id: str, now: datetime, settings: Settings) -> tuple[str, int]:
    """A signed token for one patient: (token, seconds it lives)."""
    ttl = settings.patient_token_ttl_seconds
    claims = {"sub": patient_id, "role": "patient", "kind": "patient", "jti": new_id(),
              "iat": int(now.timestamp()), "exp": int((now + timedelta(seconds=ttl)).timestamp())}
    return jwt.encode(claims, settings.secret_key, algorithm="HS256"), ttl


def login(session: Session, phone: str, code: str, patient_id: str | None, now: datetime,
          settings: Settings) -> tuple[str, int] | AppError:
    """Check the phone's open code and answer a patient token, or the refusal (a wrong try is
    counted in this transaction: commit it, then raise)."""
    phone = normalise_phone(phone)
    phone_hash = _mac(settings.secret_key, "phone", phone)
    conn = session.connection()
    row = conn.execute(select(_codes.c.id, _codes.c.code_hash, _codes.c.attempts, _codes.c.expires_at)
                       .where(_codes.c.phone_hash == phone_hash, _codes.c.consumed_at.is_(None))
                       .order_by(_codes.c.created_at.desc()).limit(1)).first()
    if row is None or row[3] <= now:
        return CodeInvalidError()
    code_id, limit = str(row[0]), settings.otp_max_attempts
    if row[2] >= limit:
        return CodeAttemptsExceededError()
    if not hmac.compare_digest(_mac(settings.secret_key, "code", (code or "").strip()), str(row[1])):
        conn.execute(update(_codes).where(_codes.c.id == code_id, _codes.c.attempts < limit)
                     .values(attempts=_codes.c.attempts + 1))
        return CodeAttemptsExceededError() if row[2] + 1 >= limit else CodeInvalidError()
    choices = scope.directory().choices(session, phone)
    ids = [c["id"] for c in choices]
    if (patient_id is None and len(ids) > 1) or (patient_id is not None and patient_id not in ids):
        if not ids:
            return NoPatientForPhoneError()
        return ChoosePatientError(choices)
    if not ids:
        return NoPatientForPhoneError()
    chosen = patient_id or ids[0]
    won = conn.execute(update(_codes).where(_codes.c.id == code_id, _codes.c.consumed_at.is_(None),
                                            _codes.c.attempts < limit, _codes.c.expires_at > now)
                       .values(consumed_at=now)).rowcount
    if won != 1:  # a concurrent verification consumed it first
        return CodeInvalidError()
    return patient_token(chosen, now, settings)
