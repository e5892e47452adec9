"""The access-control matrix, table-driven over every route of the app.

1. Every route names its rule: a `require(...)` / `require_any(...)` dependency
   (security.deps.Require, whose `permissions` are readable), or it is in PUBLIC.
   A route with neither fails the test by name — new routes are covered
   automatically.
2. Every role calls every route over HTTP with its own credential (path ids
   filled with fresh ids): 403 exactly when the role holds none of the route's
   permissions, never 403 otherwise (404 / 422 / 2xx are fine), and never 5xx.
   The proxy role is a patient token calling routes that name, in the path,
   a patient who authorised it with the `view` scope only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.routing import Mount, Route

from carepoints.app import create_app
from carepoints.config import get_settings
from carepoints.kit.db import write_tx
from carepoints.kit.ids import new_id
from carepoints.kit.time import utc_now
from carepoints.pages.web import PageRule
from carepoints.patients import proxies
from carepoints.security import otp
from carepoints.security.deps import Require
from carepoints.security.permissions import PERMISSIONS, Role, proxy_allows
from tests.security.public import PUBLIC

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

PASSWORD = "correct horse battery"
STAFF = (Role.frontdesk, Role.nurse, Role.moderator, Role.clinician, Role.auditor)
PROXY_SCOPES = frozenset({"view"})


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    permissions: tuple[str, ...]  # empty: public
    page: bool = False  # an HTML page (pages.web.PageRule): signed in by cookie, tested in tests/pages


def _permissions(dependant: Any) -> list[str]:
    found: list[str] = []
    for dep in dependant.dependencies:
        if isinstance(dep.call, Require | PageRule):
            found.extend(dep.call.permissions)
        found.extend(_permissions(dep))
    return found


def _page_rule(dependant: Any) -> PageRule | None:
    for dep in dependant.dependencies:
        if isinstance(dep.call, PageRule):
            return dep.call
        found = _page_rule(dep)
        if found is not None:
            return found
    return None


def _routes(routes: list[Any]) -> Iterator[Any]:
    """APIRoutes and plain routes, through included routers (FastAPI keeps those as branches)."""
    for route in routes:
        if hasattr(route, "effective_candidates"):
            yield from _routes(route.effective_candidates())
        else:
            yield route


def endpoints() -> tuple[list[Endpoint], list[str]]:
    """(every route with its rule, the routes without one)."""
    app = create_app()
    out: list[Endpoint] = []
    missing: list[str] = []
    for route in _routes(list(app.routes)):
        if hasattr(route, "dependant") and getattr(route, "methods", None):
            perms = tuple(dict.fromkeys(_permissions(route.dependant)))
            rule = _page_rule(route.dependant)
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                if rule is not None:  # a page: signed in (with permissions) or open to anyone by its rule
                    out.append(Endpoint(method, route.path, rule.permissions or (("auth:logout",) if rule.signed_in
                                                                                    else ()), page=True))
                    continue
                if not perms and (method, route.path) not in PUBLIC:
                    missing.append(f"{method} {route.path}")
                out.append(Endpoint(method, route.path, perms))
        elif isinstance(route, Route):
            methods = sorted((route.methods or set()) - {"HEAD"})
            missing.extend(f"{m} {route.path}" for m in methods if (m, route.path) not in PUBLIC)
        elif isinstance(route, Mount):
            if route.path not in {"/static"}:
                missing.append(f"mount {route.path}")
        else:
            missing.append(f"{type(route).__name__} {getattr(route, 'path', '?')}")
    return out, missing


def test_every_route_has_a_rule() -> None:
    found, missing = endpoints()
    assert not missing, f"routes with neither require(...) nor a PUBLIC entry: {missing}"
    assert len(found) > 100
    by_path = {(e.method, e.path): e.permissions for e in found}
    assert by_path[("POST", "/api/v1/events")] == ("events:write",)
    assert by_path[("GET", "/api/v1/patients/{patient_id}/points")] == ("points:read",)
    assert ("POST", "/api/v1/auth/otp") in by_path


def _fill(path: str, patient_id: str | None) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1) == "patient_id" and patient_id is not None:
            return patient_id
        return new_id()

    return re.sub(r"\{([a-z_]+)(?::[a-z]+)?\}", one, path)


def _staff_token(api: Api, role: str) -> str:
    username = f"matrix.{role}"
    api.make_staff(username, PASSWORD, role)
    r = api.client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _patient_token(patient_id: str) -> str:
    token, _ttl = otp.patient_token(patient_id, utc_now(), get_settings())
    return token


def test_every_role_gets_403_exactly_without_the_permission(api: Api) -> None:
    found, missing = endpoints()
    assert not missing
    owner, proxy = api.enrol(), api.enrol()
    with write_tx() as session:
        proxies.authorise(session, owner, proxies.Proxy(proxy), sorted(PROXY_SCOPES), utc_now())
    credentials: dict[str, str] = {Role.admin: api.key, Role.integration: api.make_key("integration", "matrix")}
    for role in STAFF:
        credentials[role] = _staff_token(api, role)
    credentials[Role.patient] = _patient_token(api.enrol())
    proxy_token = _patient_token(proxy)
    assert set(credentials) | {Role.proxy} == set(Role)

    wrong: list[str] = []
    calls = 0
    for e in sorted(found, key=lambda e: e.path == "/api/v1/auth/logout"):  # logout ends the sessions: last
        if not e.permissions or e.page:  # pages take a cookie, not a bearer token: tests/pages
            continue
        for role, credential in credentials.items():
            expect_403 = not any(p in PERMISSIONS[role] for p in e.permissions)
            r = api.client.request(e.method, _fill(e.path, None), json={},
                                   headers={"Authorization": f"Bearer {credential}"})
            calls += 1
            if (r.status_code == 403) != expect_403 or r.status_code >= 500:
                wrong.append(f"{role} {e.method} {e.path}: {r.status_code} {r.text[:120]}")
        if "{patient_id}" in e.path:
            expect_403 = not any(proxy_allows(PROXY_SCOPES, p) for p in e.permissions)
            r = api.client.request(e.method, _fill(e.path, owner), json={},
                                   headers={"Authorization": f"Bearer {proxy_token}"})
            calls += 1
            if (r.status_code == 403) != expect_403 or r.status_code >= 500:
                wrong.append(f"proxy {e.method} {e.path}: {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)
    assert calls > 800
