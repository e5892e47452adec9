from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    require_signature: Mapped[bool] = mapped_column(Boolean, default=False)
    # (trust.signing) the HMAC key of signed requests, AES-GCM sealed (security.signing); None = unsigned key
    signing_secret: Mapped[str | None] = mapped_column(String(200))
    # (trust.signing) requests per minute for this key (kit.ratelimit); None = no limit
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # (trust.auth) refused with auth.key_expired from then on; None = no expiry
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # (trust.auth) the key that replaced this one on rotation (this one works until expires_at, the grace)
    replaced_by: Mapped[str | None] = mapped_column(String(36))


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # (trust.auth) failed logins since failed_since (the lockout window); locked until locked_until
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    failed_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # (trust.auth) TOTP second factor: the secret sealed with the secret key (Fernet), and the last
    # time step used (a code is never accepted twice)
    totp_secret: Mapped[str | None] = mapped_column(String(500))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # (ops.alliance) the institution the user works at (sees its patients only) unless alliance_wide;
    # None = the whole alliance (users from before institutions were bound)
    institution_id: Mapped[str | None] = mapped_column(ForeignKey("institutions.id"))
    alliance_wide: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class RequestNonce(Base):
    """A signed request's nonce, per key (trust.signing): the primary key makes a second use
    within the window an INSERT conflict, decided by the database across worker processes."""

    __tablename__ = "request_nonces"
    __table_args__ = (Index("ix_request_nonces_at", "at"),)

    key_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class StaffSession(Base):
    """One staff token (its `jti`): idle time-out from last_seen_at (touched at most once a
    minute), logout sets revoked_at (trust.auth)."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    staff_user_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OtpCode(Base):
    """A patient login code (trust.auth): only HMACs of the phone, the caller's address and the
    code are stored; `dev_code` holds the code itself only with CAREPOINTS_DEV_OTP=1 (SQLite)."""

    __tablename__ = "otp_codes"
    __table_args__ = (Index("ix_otp_codes_phone", "phone_hash", "created_at"),
                      Index("ix_otp_codes_ip", "ip_hash", "created_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    phone_hash: Mapped[str] = mapped_column(String(64))
    ip_hash: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dev_code: Mapped[str | None] = mapped_column(String(6))


class ApiKeyInstitution(Base):
    """(ops.alliance) An integration key bound to institutions: it reaches only their patients
    and names patients only by their systems. A key with no row is unbound (the whole alliance)."""

    __tablename__ = "api_key_institutions"

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"), primary_key=True)


# --- wechat ---
class WechatBinding(Base):
    """(ops.wechat) A patient's WeChat account of one official account (app id), for login.
    The openid is kept only as a blind index (HMAC under the secret key). One WeChat may
    serve several patients (a family); a patient has at most one binding per app."""

    __tablename__ = "wechat_bindings"
    __table_args__ = (
        UniqueConstraint("patient_id", "app_id"),
        Index("ix_wechat_bindings_openid", "app_id", "openid_hash"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    app_id: Mapped[str] = mapped_column(String(64))
    openid_hash: Mapped[str] = mapped_column(String(64))
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WechatState(Base):
    """(ops.wechat) An authorisation `state` handed out by /auth/wechat/authorize: only its hash
    is kept; spent once (guarded UPDATE of consumed_at). A bind state names the patient who
    asked for it. A login that must choose among several patients keeps the exchanged code's
    and openid's hashes here until the choice comes (the code cannot be exchanged twice)."""

    __tablename__ = "wechat_states"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(8))
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"))
    code_hash: Mapped[str | None] = mapped_column(String(64))
    openid_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
