"""Signed requests: HMAC-SHA256 over the method, target, timestamp, nonce and body.

One implementation serves both directions: API keys created with
`--require-signature` sign every request they send us, and our outgoing
webhooks are signed the same way (notifications.channels).

Recipe (the contract; API.md / README "Signed requests")::

    canonical = METHOD + "\\n" + TARGET + "\\n" + TIMESTAMP + "\\n" + NONCE + "\\n" + hex(sha256(BODY))
    signature = hex(hmac_sha256(key=SECRET, msg=canonical))        # both UTF-8, lower-case hex

- METHOD: the HTTP method in upper case (`POST`).
- TARGET: the request path exactly as sent on the request line (not
  percent-decoded), then `?` and the raw query string if there is one
  (`/api/v1/patients/0190…/points`, `/api/v1/sessions?date=2026-06-16`).
- TIMESTAMP: the `X-Carepoints-Timestamp` header, unix seconds (digits).
- NONCE: the `X-Carepoints-Nonce` header, 16–64 characters of `A-Z a-z 0-9 _ -`,
  fresh for every request (a retry after a network error signs again with a
  new nonce; idempotency keys, not nonces, make retries safe).
- BODY: the raw body bytes (empty for a GET: the hash of b"").
- SECRET: for API keys the key's secret itself (the `cpk_…` value the CLI
  printed); for webhooks the subscription's secret.
- `X-Carepoints-Signature: <signature>` (`sha256=<signature>` is accepted too).

The server accepts a timestamp within ±5 minutes of its clock and each nonce
once per key: it is remembered (table `request_nonces`) for twice the window,
which covers a replay at either edge of the clock skew. Errors (401):
`auth.signature_required` (a header missing), `auth.signature_invalid`
(malformed header or wrong signature), `auth.signature_expired` (timestamp
outside the window), `auth.nonce_reused`. The checks run in that order, so a
forged request never uses up a nonce.

Keys without `require_signature` are not asked to sign and any signature
headers they send are ignored: enforcement is per key, so that stripping the
headers could never be a way around it.

The server keeps the signing secret sealed with AES-GCM in
`api_keys.signing_secret`, under a key derived from CAREPOINTS_SECRET_KEY
(the secret itself is stored nowhere else; the bearer check uses its
SHA-256). Keys that predate the column sign with their secret as well."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from carepoints.kit import retention
from carepoints.kit.db import table
from carepoints.security.errors import (
    NonceReusedError,
    SignatureExpiredError,
    SignatureInvalidError,
    SignatureRequiredError,
)
from carepoints.security.models import RequestNonce

TIMESTAMP = "x-carepoints-timestamp"
NONCE = "x-carepoints-nonce"
SIGNATURE = "x-carepoints-signature"
WINDOW_SECONDS = 300
NONCE_MEMORY = timedelta(seconds=2 * WINDOW_SECONDS)
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_HEX_RE = re.compile(r"[0-9a-f]{64}")
_SEAL_VERSION = "v1."
_PURGE_EVERY = 60.0  # seconds between purges of old nonces, per process


def canonical(method: str, target: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The signed string (see the module docstring)."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{target}\n{timestamp}\n{nonce}\n{digest}".encode()


def sign(secret: str, method: str, target: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Lower-case hex HMAC-SHA256 of the canonical string under `secret`."""
    return hmac.new(secret.encode(), canonical(method, target, timestamp, nonce, body), hashlib.sha256).hexdigest()


def signed_headers(secret: str, method: str, target: str, body: bytes, *, timestamp: int,
                   nonce: str | None = None) -> dict[str, str]:
    """The three headers of a signed request (a fresh random nonce unless one is given)."""
    ts, nc = str(timestamp), nonce or secrets.token_urlsafe(18)
    return {"X-Carepoints-Timestamp": ts, "X-Carepoints-Nonce": nc,
            "X-Carepoints-Signature": sign(secret, method, target, ts, nc, body)}


def check(secret: str, method: str, target: str, headers: Mapping[str, str], body: bytes, now: float) -> str:
    """Verify a request's signature headers at unix time `now`; answers the nonce, which the
    caller must still record (`remember_nonce`). Raises the 401s of the module docstring."""
    ts, nonce, signature = headers.get(TIMESTAMP), headers.get(NONCE), headers.get(SIGNATURE)
    if not ts or not nonce or not signature:
        raise SignatureRequiredError()
    signature = signature.strip().lower().removeprefix("sha256=")
    if not ts.isascii() or not ts.isdigit() or len(ts) > 12 or not _NONCE_RE.fullmatch(nonce) \
            or not _HEX_RE.fullmatch(signature):
        raise SignatureInvalidError()
    if abs(now - int(ts)) > WINDOW_SECONDS:
        raise SignatureExpiredError()
    if not hmac.compare_digest(sign(secret, method, target, ts, nonce, body), signature):
        raise SignatureInvalidError()
    return nonce


_next_purge = 0.0


def remember_nonce(session: Session, key_id: str, nonce: str, now: datetime) -> None:
    """Record a verified request's nonce; NonceReusedError when the key used it within the
    last 2 × window. An INSERT … ON CONFLICT that inserts or revives nothing means the nonce
    is taken: the unique key decides between concurrent requests and worker processes.
    Every minute or so (per process) the same transaction also drops nonces past memory."""
    global _next_purge
    t = table(RequestNonce)
    cutoff = now - NONCE_MEMORY
    dialect = session.get_bind().dialect.name
    stmt = (postgresql.insert(t) if dialect == "postgresql" else sqlite.insert(t)).values(
        key_id=key_id, nonce=nonce, at=now)
    upsert = stmt.on_conflict_do_update(index_elements=[t.c.key_id, t.c.nonce], set_={"at": stmt.excluded.at},
                                        where=t.c.at < cutoff).returning(t.c.nonce)
    if session.connection().execute(upsert).first() is None:
        raise NonceReusedError()
    if time.monotonic() >= _next_purge:
        _next_purge = time.monotonic() + _PURGE_EVERY
        purge_nonces(session, now)


def purge_nonces(session: Session, now: datetime) -> int:
    """Drop nonces older than twice the window (they can no longer be replayed); answers how many."""
    t = table(RequestNonce)
    return session.connection().execute(delete(t).where(t.c.at < now - NONCE_MEMORY)).rowcount


def purge_batch(session: Session, cutoff: datetime) -> int:
    """kit.retention kind `request_nonces`: at most one batch of nonces older than `cutoff`
    (the backstop for nonces left behind when signed traffic stops; they are useless
    after 2 × window anyway)."""
    t = table(RequestNonce)
    old = select(t.c.key_id, t.c.nonce).where(t.c.at < cutoff).limit(retention.BATCH)
    return int(session.connection().execute(
        delete(t).where(tuple_(t.c.key_id, t.c.nonce).in_(old))).rowcount or 0)


retention.register("request_nonces", 1, purge_batch, description="nonces of signed requests (replay protection)")


def _seal_key(app_secret: str) -> bytes:
    return hmac.new(app_secret.encode(), b"carepoints/api-key-signing-secret/v1", hashlib.sha256).digest()


def seal(secret: str, key_id: str, app_secret: str) -> str:
    """AES-GCM-seal a signing secret for `api_keys.signing_secret` (the key id is bound as AAD)."""
    iv = secrets.token_bytes(12)
    sealed = AESGCM(_seal_key(app_secret)).encrypt(iv, secret.encode(), key_id.encode())
    return _SEAL_VERSION + base64.urlsafe_b64encode(iv + sealed).decode()


def unseal(value: str, key_id: str, app_secret: str) -> str | None:
    """The signing secret, or None when it cannot be opened (another CAREPOINTS_SECRET_KEY)."""
    if not value.startswith(_SEAL_VERSION):
        return None
    try:
        raw = base64.urlsafe_b64decode(value[len(_SEAL_VERSION):])
        return AESGCM(_seal_key(app_secret)).decrypt(raw[:12], raw[12:], key_id.encode()).decode()
    except (InvalidTag, ValueError):
        return None
