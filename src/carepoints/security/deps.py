"""FastAPI dependencies: who is calling, and may they?"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from carepoints.config import get_settings
from carepoints.kit.db import read_tx
from carepoints.kit.errors import PermissionDeniedError
from carepoints.kit.web import TTLCache, bearer_credential
from carepoints.security import service
from carepoints.security.service import Principal

# Credential checks (API keys, and staff tokens against the user's current
# role and status) are cached for a few seconds per process: a revoked key or
# a deactivated user stops working within that time.
_keys = TTLCache(ttl=5.0)


def _lookup(credential: str) -> Principal:
    with read_tx() as session:
        return service.authenticate(session, credential, get_settings().secret_key)


async def current_principal(request: Request) -> Principal:
    return await principal_for(request.headers.get("authorization", ""))


async def principal_for(authorization: str) -> Principal:
    """The caller named by an `Authorization` header value (401 when there is none or it is bad)."""
    credential = bearer_credential(authorization)
    hit = _keys.get(credential)
    if isinstance(hit, Principal):
        return hit
    principal = await run_in_threadpool(_lookup, credential)
    _keys.put(credential, principal)  # keys and tokens alike: a revocation takes effect within seconds
    return principal


async def authorize(authorization: str, permission: str) -> Principal:
    """The caller, who must hold `permission` (401 / 403 otherwise)."""
    principal = await principal_for(authorization)
    if not principal.can(permission):
        raise PermissionDeniedError(permission=permission)
    return principal


def require(permission: str) -> Callable[[Request], Awaitable[Principal]]:
    async def dependency(request: Request) -> Principal:
        return await authorize(request.headers.get("authorization", ""), permission)

    return dependency
