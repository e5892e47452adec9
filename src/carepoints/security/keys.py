"""API key lifetimes: expiry and rotation.

A key may carry `expires_at`; from then on it is refused with 401
`auth.key_expired`. Rotation issues a new key (a new id and secret, the same
name, role and settings) and lets the old one work until the grace period
ends (its `expires_at` becomes the end of the grace, never later than it
was; `replaced_by` names the new key), so a hospital system can switch
without an outage. The new key keeps the old one's remaining lifetime span:
one that expired in N days from its creation expires N days after rotation."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from carepoints.kit.db import table
from carepoints.kit.ids import is_id
from carepoints.security import service
from carepoints.security.errors import ApiKeyNotFoundError
from carepoints.security.models import ApiKey, ApiKeyInstitution

_keys = table(ApiKey)


def create(session: Session, name: str, role: str, now: datetime, *, require_signature: bool = False,
           expires_days: int | None = None, rate_limit: int | None = None) -> tuple[str, str]:
    """(key id, secret) of a new key, expiring after `expires_days` (None = never)."""
    kid, secret = service.create_api_key(session, name, role, now, require_signature=require_signature,
                                         rate_limit=rate_limit)
    if expires_days is not None:
        session.connection().execute(update(_keys).where(_keys.c.id == kid).values(
            expires_at=now + timedelta(days=expires_days)))
    return kid, secret


def expire_in(session: Session, key_id: str, now: datetime, days: int) -> None:
    """The key stops working `days` days from now."""
    session.connection().execute(update(_keys).where(_keys.c.id == key_id).values(
        expires_at=now + timedelta(days=days)))


def _live(session: Session, key_id: str, now: datetime) -> dict[str, object]:
    row = session.connection().execute(select(_keys).where(_keys.c.id == key_id, _keys.c.revoked_at.is_(None))
                                       ).mappings().first() if is_id(key_id) else None
    if row is None or (row["expires_at"] is not None and row["expires_at"] <= now):
        raise ApiKeyNotFoundError()
    return dict(row)


def rotate(session: Session, key_id: str, now: datetime, *, grace: timedelta) -> tuple[str, str]:
    """A new key replacing `key_id`, which keeps working until `now + grace`; (new id, new secret)."""
    old = _live(session, key_id, now)
    conn = session.connection()
    bound = list(conn.execute(select(ApiKeyInstitution.institution_id)  # (ops.alliance) the new key keeps them
                              .where(ApiKeyInstitution.key_id == key_id)).scalars())
    kid, secret = service.create_api_key(session, str(old["name"]), str(old["role"]), now,
                                         require_signature=bool(old["require_signature"]), institutions=bound)
    carried = {c: old[c] for c in old if c not in {
        "id", "name", "role", "key_hash", "prefix", "require_signature", "signing_secret", "created_at",
        "revoked_at", "expires_at", "replaced_by"}}
    expires = old["expires_at"]
    created = old["created_at"]
    new_expiry = now + (expires - created) if isinstance(expires, datetime) and isinstance(created, datetime) \
        else None
    conn.execute(update(_keys).where(_keys.c.id == kid).values(expires_at=new_expiry, **carried))
    end = now + grace
    if isinstance(expires, datetime) and expires < end:
        end = expires
    conn.execute(update(_keys).where(_keys.c.id == key_id).values(expires_at=end, replaced_by=kid))
    return kid, secret


def revoke(session: Session, key_id: str, now: datetime) -> None:
    """Refuse the key from now on (401); 404 for an unknown one. Again is the same."""
    found = session.connection().execute(select(_keys.c.id).where(_keys.c.id == key_id)).first() \
        if is_id(key_id) else None
    if found is None:
        raise ApiKeyNotFoundError()
    session.connection().execute(update(_keys).where(_keys.c.id == key_id, _keys.c.revoked_at.is_(None))
                                 .values(revoked_at=now))
