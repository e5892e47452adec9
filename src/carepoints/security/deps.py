"""FastAPI dependencies: who is calling, and may they?"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from carepoints.config import get_settings
from carepoints.kit.db import read_tx
from carepoints.kit.errors import PermissionDeniedError
from carepoints.kit.web import TTLCache, bearer
from carepoints.security import service
from carepoints.security.service import Principal

# API-key checks are cached for a few seconds per process: a revoked key
# stops working within that time.
_keys = TTLCache(ttl=5.0)


def current_principal(request: Request) -> Principal:
    credential = bearer(request)
    hit = _keys.get(credential)
    if isinstance(hit, Principal):
        return hit
    with read_tx() as session:
        principal = service.authenticate(session, credential, get_settings().secret_key)
    if principal.kind == "api_key":
        _keys.put(credential, principal)
    return principal


def require(permission: str) -> Callable[[Request], Principal]:
    def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        if not principal.can(permission):
            raise PermissionDeniedError(permission=permission)
        return principal

    return dependency
