"""FastAPI dependencies: who is calling, and may they?"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import PermissionDeniedError
from carepoints.kit.fastpath import request_target
from carepoints.kit.ratelimit import RateLimiter, limiter
from carepoints.kit.time import utc_now
from carepoints.kit.web import TTLCache, bearer_credential
from carepoints.security import scope, service, signing, staff
from carepoints.security.errors import SignatureRequiredError
from carepoints.security.service import Principal

# Credential checks (API keys, and staff tokens against the user's current
# role and status) are cached for a few seconds per process: a revoked key or
# a deactivated user stops working within that time.
_keys = TTLCache(ttl=5.0)


def _lookup(credential: str) -> Principal:
    with read_tx() as session:
        principal = service.authenticate(session, credential, get_settings().secret_key)
    if principal.touch and principal.session_id is not None:  # (trust.auth) idle time-out: at most once a minute
        with write_tx() as session:
            staff.touch(session, principal.session_id, utc_now())
    return principal


def forget(credential: str) -> None:
    """Drop a credential from this process's cache (logout takes effect at once here)."""
    _keys.put(credential, None)


@dataclass(frozen=True, slots=True)
class Signed:
    """What a request signature covers (security.signing), for callers without a Request."""

    method: str
    target: str  # path as sent, plus "?query"
    headers: Mapping[str, str]  # lower-case names
    body: bytes


async def current_principal(request: Request) -> Principal:
    return await principal_for(request.headers.get("authorization", ""), request)


async def principal_for(authorization: str, request: Request | Signed | None = None) -> Principal:
    """The caller named by an `Authorization` header value (401 when there is none or it is bad).
    A key that must sign is verified on every request, cached or not, against `request`;
    without one (a caller that cannot show it) such a key is refused. A key with a rate
    limit is counted here (429 `rate.limited`)."""
    credential = bearer_credential(authorization)
    hit = _keys.get(credential)
    if isinstance(hit, Principal):
        principal = hit
    else:
        principal = await run_in_threadpool(_lookup, credential)
        _keys.put(credential, principal)  # keys and tokens alike: a revocation takes effect within seconds
    if principal.rate_limit is not None:
        limiter.check("key:" + principal.id, principal.rate_limit)
    if principal.signing_secret is not None:
        await _verify(principal.id, principal.signing_secret, request)
    return principal


async def _verify(key_id: str, secret: str, request: Request | Signed | None) -> None:
    if request is None or signing.SIGNATURE not in request.headers:
        raise SignatureRequiredError()
    if isinstance(request, Request):  # Starlette keeps the body, so the endpoint reads it again
        request = Signed(request.method, request_target(request.scope), request.headers, await request.body())
    await run_in_threadpool(_check_signature, key_id, secret, request)


def _check_signature(key_id: str, secret: str, request: Signed) -> None:
    now = utc_now()
    nonce = signing.check(secret, request.method, request.target, request.headers, request.body, now.timestamp())
    with write_tx() as session:  # its own transaction: the nonce is spent even if the request then fails
        signing.remember_nonce(session, key_id, nonce, now)


async def authorize(authorization: str, permission: str, request: Request | Signed | None = None) -> Principal:
    """The caller, who must hold `permission` (401 / 403 otherwise)."""
    principal = await principal_for(authorization, request)
    if not principal.can(permission):
        raise PermissionDeniedError(permission=permission)
    return principal


class Require:
    """The dependency `require(permission)` / `require_any(...)` answers; `permissions` is
    readable (tests/security/test_matrix.py finds every route's rule through it).

    For a patient token (trust.auth) the patient named in the path or the query
    (`patient_id`) must be in reach (404 / 403, security.scope), and the request's
    reach is set for services that resolve a patient named in the body."""

    def __init__(self, *permissions: str) -> None:
        self.permissions = permissions

    async def __call__(self, request: Request) -> Principal:
        principal = await principal_for(request.headers.get("authorization", ""), request)
        return await admit(principal, self.permissions, request)


async def admit(principal: Principal, permissions: tuple[str, ...], request: Request) -> Principal:
    """`principal` must hold one of `permissions` (403); a patient token must reach the patient the
    request names (path, `patient_id` query, a record's owner: 404 / 403) and a bound key or staff
    user its institutions; the request's reach is then set for the services it calls. Shared by
    the API (`Require`) and the pages (carepoints.pages.web), which find the principal in a cookie."""
    # who called, for the request-level audit (security.audit_requests): set before the
    # permission check so that a denied attempt is audited with its 403 too
    request.state.principal = principal
    if not any(principal.can(p) for p in permissions):
        raise PermissionDeniedError(permission=" | ".join(permissions))
    if principal.reach is not None:
        reach = scope.Reach(principal.id, principal.reach, tuple(p for p in permissions if principal.can(p)))
        for named in (request.path_params.get("patient_id"), request.query_params.get("patient_id")):
            if named is not None:
                reach.check(str(named))
        lookups = scope.owner_lookups(request.url.path, request.path_params)
        if lookups:  # a patient's record named by its own id (carepoints.ownership)
            for owners in await run_in_threadpool(_owners_of, lookups):
                reach.check_owners(owners)
        scope.enter(reach)
    if principal.institutions is not None:  # (ops.alliance) a bound key or staff user
        scope.enter_institutions(principal.institutions)
        for named in (request.path_params.get("patient_id"), request.query_params.get("patient_id")):
            if named is not None:
                await run_in_threadpool(scope.ensure_institution, str(named))
        lookups = scope.owner_lookups(request.url.path, request.path_params)
        if lookups:  # a patient's record named by its own id: one of its owners must be in scope
            for owners in await run_in_threadpool(_owners_of, lookups):
                await run_in_threadpool(scope.ensure_institution_owners, owners)
    return principal


def _owners_of(lookups: list[tuple[str, scope.OwnerLookup]]) -> list[list[str]]:
    with read_tx() as session:
        return [lookup(session, value) for value, lookup in lookups]


def require(permission: str) -> Callable[[Request], Awaitable[Principal]]:
    return Require(permission)


def require_any(*permissions: str) -> Callable[[Request], Awaitable[Principal]]:
    """The caller holds at least one of `permissions` (401 / 403 otherwise)."""
    return Require(*permissions)


def limit_per_ip(bucket: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency for unauthenticated endpoints (token exchange, one-time codes): at most
    `rate_limit_auth_per_ip_per_minute` requests per client address (429 `rate.limited`).
    Counted per app instance (each worker process, each test's app)."""
    async def dependency(request: Request) -> None:
        per_minute = get_settings().rate_limit_auth_per_ip_per_minute
        if per_minute:
            state = request.app.state
            ip_limiter = getattr(state, "ip_rate_limiter", None)
            if ip_limiter is None:
                ip_limiter = state.ip_rate_limiter = RateLimiter(max_keys=50_000)
            host = request.client.host if request.client else "-"
            ip_limiter.check(f"{bucket}:{host}", per_minute)

    return dependency
