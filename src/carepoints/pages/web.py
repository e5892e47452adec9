"""What every page shares: the signed page session (cookie), CSRF, who is signed in,
rendering, and the one error rendering per surface.

Two surfaces, each with its own cookie: the patient pages (`/`, `/login`, `/me/...`;
a patient token from a one-time code or WeChat) and the staff console with the
programme admin (`/staff/...`, `/admin/...`; a staff token from username +
password). The cookie holds the bearer token the API would take, the CSRF token,
the page language, elderly mode and whom a patient acts for (代办), signed with the
secret key (itsdangerous), HTTP-only and SameSite=Lax. A page's permission checks are
the API's (`security.deps.admit`): the same principal, the same reach, the same
services; a page never queries the database itself.

Every POST (forms and HTMX) must carry the session's CSRF token (form field
`csrf_token` or header `X-CSRF-Token`): 403 `pages.csrf_failed` otherwise. Errors
under a page prefix render as a page with the real status, or, for an HTMX request,
as a fragment swapped into the page's `#flash` box; a 401 sends the browser to the
surface's login."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import pass_context
from jinja2.runtime import Context
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError, UnauthenticatedError, ValidationFailedError
from carepoints.kit.templating import LANGS, environment, pick, render, say
from carepoints.kit.web import error_surface
from carepoints.patients import service as patients
from carepoints.security import scope, service
from carepoints.security.deps import admit, principal_for
from carepoints.security.service import Principal

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


class CsrfFailedError(AppError):
    code = "pages.csrf_failed"
    status_code = 403
    message = "页面已过期,请刷新后重试 / This page has expired: reload it and try again"


class StaffOnlyError(AppError):
    code = "pages.staff_only"
    status_code = 403
    message = "此页面仅限医院工作人员 / This page is for hospital staff only"


class PatientOnlyError(AppError):
    code = "pages.patient_only"
    status_code = 403
    message = "此页面仅限患者本人登录 / This page is for patients"


@dataclass(frozen=True, slots=True)
class Surface:
    name: str
    cookie: str
    login: str  # where a signed-out visitor is sent
    home: str
    error_template: str
    max_age: int  # seconds the cookie lives (the token inside has its own expiry)


PATIENT = Surface("patient", "cp_patient", "/login", "/", "patient/error.html", 24 * 3600)
STAFF = Surface("staff", "cp_staff", "/staff/login", "/staff", "staff/error.html", 12 * 3600)


def _serializer(surface: Surface) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt=f"carepoints-page-{surface.name}")


@dataclass
class Page:
    """One page request: its surface, session data and (once signed in) principal.
    `patient_id` is whom a patient page shows: the signed-in patient or the one they act for."""

    request: Request
    surface: Surface
    data: dict[str, Any]
    principal: Principal | None = None
    dirty: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    # -- session ---------------------------------------------------------
    @property
    def csrf(self) -> str:
        return str(self.data["c"])

    @property
    def lang(self) -> str:
        return str(self.data.get("l") or "zh")

    @property
    def elderly(self) -> bool:
        return bool(self.data.get("e"))

    @property
    def patient_id(self) -> str:
        """The patient a patient page is about (acting for someone, or oneself)."""
        assert self.principal is not None  # noqa: S101 - only after sign-in
        return str(self.data.get("a") or self.principal.id)

    @property
    def acting(self) -> bool:
        return self.principal is not None and self.patient_id != self.principal.id

    @property
    def htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    def set(self, **values: Any) -> None:
        for key, value in values.items():
            if self.data.get(key) != value:
                self.data[key] = value
                self.dirty = True

    def sign_in(self, token: str, **values: Any) -> None:
        """A new session for a login: a fresh CSRF token (no fixation), the language kept."""
        self.data = {"c": secrets.token_urlsafe(24), "l": self.lang, "t": token, **values}
        self.dirty = True

    def sign_out(self) -> None:
        self.data = {"c": secrets.token_urlsafe(24), "l": self.lang}
        self.dirty = True

    def tr(self, zh: str, en: str) -> str:
        return pick(self.lang, zh, en)

    def say(self, message: str | None) -> str:
        return say(message, self.lang)

    # -- answers ---------------------------------------------------------
    def context(self, **values: Any) -> dict[str, Any]:
        principal = self.principal
        return {"lang": self.lang, "elderly": self.elderly, "csrf": self.csrf, "page": self,
                "principal": principal, "path": self.request.url.path,
                "query": self.request.url.query, "htmx": self.htmx, **values}

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        html = render(template, **self.context(**values))
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, url: str, status: int = 303) -> Response:
        """Go to `url` after a form post (303); for HTMX the HX-Redirect header."""
        if self.htmx:
            return self.finish(Response(status_code=204, headers={"HX-Redirect": url}))
        return self.finish(RedirectResponse(url, status_code=status))

    def finish(self, response: Response) -> Response:
        for key, value in self.headers.items():
            response.headers[key] = value
        secure_headers(response)
        if self.dirty:
            value = _serializer(self.surface).dumps(self.data)
            response.set_cookie(self.surface.cookie, value, max_age=self.surface.max_age, path="/",
                                httponly=True, samesite="lax", secure=_secure(self.request))
        return response


def secure_headers(response: Response) -> None:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")


def _secure(request: Request) -> bool:
    return bool(get_settings().cookie_secure) or request.url.scheme == "https"


def load(request: Request, surface: Surface) -> Page:
    """The page session from the surface's cookie (a fresh one when missing or tampered with)."""
    raw = request.cookies.get(surface.cookie)
    data: dict[str, Any] | None = None
    if raw:
        try:
            loaded = _serializer(surface).loads(raw, max_age=surface.max_age)
            data = loaded if isinstance(loaded, dict) and "c" in loaded else None
        except BadSignature:
            data = None
    page = Page(request, surface, data or {"c": secrets.token_urlsafe(24)}, dirty=data is None)
    lang = request.query_params.get("lang")
    if lang in LANGS:
        page.set(l=lang)
    return page


async def check_csrf(page: Page) -> None:
    request = page.request
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # Starlette keeps it: the endpoint's Form() fields read it again
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), page.csrf.encode()):
        raise CsrfFailedError()


async def _principal(page: Page) -> Principal | None:
    token = page.data.get("t")
    if not token:
        return None
    try:
        return await principal_for(f"Bearer {token}", page.request)
    except UnauthenticatedError:
        return None
    except AppError as err:
        if err.status_code == 401:
            return None
        raise


def _next(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return quote(target, safe="/?=&")


class LoginRequiredError(UnauthenticatedError):
    """No valid session: the browser goes to the surface's login (never shown as an error page)."""

    def __init__(self, surface: Surface, next_url: str) -> None:
        super().__init__()
        self.surface, self.next_url = surface, next_url


class PageRule:
    """The dependency of a page route: who may open it (readable, like security.deps.Require, so that
    tests/security/test_matrix.py finds every page's rule). `permissions` empty and `signed_in`
    False: anyone (the login pages)."""

    def __init__(self, surface: Surface, permissions: tuple[str, ...], signed_in: bool = True,
                 *, itself: bool = False) -> None:
        self.surface, self.permissions, self.signed_in = surface, permissions, signed_in
        self.itself = itself  # a patient page about the signed-in patient, whoever they act for

    async def __call__(self, request: Request) -> Page:
        page = load(request, self.surface)
        await check_csrf(page)
        principal = await _principal(page)
        if not self.signed_in:
            page.principal = principal
            return page
        if principal is None:
            raise LoginRequiredError(self.surface, _next(request))
        if self.surface is PATIENT:
            await self._patient(page, principal, request)
        else:
            await self._staff(page, principal, request)
        return page

    async def _patient(self, page: Page, principal: Principal, request: Request) -> None:
        """Whom the page shows: oneself, or whom one acts for (a revoked authorisation falls back to
        oneself), within the proxy's scopes for this page's permissions."""
        if principal.reach is None:  # a staff token in a patient cookie
            raise PatientOnlyError()
        page.principal = principal
        acting = page.data.get("a")
        if acting and acting != principal.id and acting not in principal.reach:
            page.set(a=None)
        await admit(principal, self.permissions or ("auth:logout",), request)
        current = scope.current()
        if current is not None and not self.itself:
            current.check(page.patient_id)

    async def _staff(self, page: Page, principal: Principal, request: Request) -> None:
        if principal.kind != "staff":
            raise StaffOnlyError()
        page.principal = principal
        await admit(principal, self.permissions or ("auth:logout",), request)


def anonymous(surface: Surface) -> PageRule:
    """A page anyone may open (login, the dev inbox): the session, CSRF checked on posts."""
    return PageRule(surface, (), signed_in=False)


def patient_page(*permissions: str) -> PageRule:
    """A patient page: signed in with a patient token that holds one of `permissions` for the
    patient shown (oneself, or whom one acts for)."""
    return PageRule(PATIENT, permissions)


def self_page() -> PageRule:
    """A patient page about the signed-in patient themself even while they act for someone (their
    settings, their family and the switch back): a proxy's scopes never lock them out of it."""
    return PageRule(PATIENT, ("auth:logout",), itself=True)


def staff_page(*permissions: str) -> PageRule:
    """A staff console or admin page: signed in with a staff token holding one of `permissions`."""
    return PageRule(STAFF, permissions)


def sign_in_patient(page: Page, token: str) -> None:
    """A new patient session for `token` (from a one-time code or WeChat), with the patient's
    stored elderly mode and language."""
    with read_tx() as session:
        principal = service.authenticate(session, token, get_settings().secret_key)
        elderly, language = patients.preferences(session, principal.id)
    page.sign_in(token, e=elderly, l=language or page.lang)
    page.principal = principal


@contextmanager
def reading() -> Iterator[Session]:
    """A read transaction for a page's service calls (the same helpers the API uses)."""
    with read_tx() as session:
        yield session


@contextmanager
def writing() -> Iterator[Session]:
    """One use case = one transaction, committed when the block ends."""
    with write_tx() as session:
        yield session


# -- errors: one rendering per surface ------------------------------------

def _surface_of(path: str) -> Surface:
    return STAFF if path.startswith(("/staff", "/admin")) else PATIENT


def render_error(body: dict[str, Any], status: int, headers: dict[str, str] | None,
                 request: Request | None = None) -> Response:
    """An error under a page prefix: 401 → the login; an HTMX request → a fragment for #flash;
    anything else → the surface's error page with the real status."""
    path = request.url.path if request is not None else "/"
    surface = _surface_of(path)
    lang = "zh"
    if request is not None:
        page = load(request, surface)
        lang = page.lang
        if status == 401:
            target = f"{surface.login}?next={_next(request)}"
            if request.headers.get("hx-request") == "true":
                return _secured(Response(status_code=204, headers={"HX-Redirect": target}))
            return _secured(RedirectResponse(target, status_code=303))
        if request.headers.get("hx-request") == "true":
            html = render("pages/_error.html", lang=lang, error=body, status=status)
            extra = {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"}
            return _secured(HTMLResponse(html, status_code=status, headers={**(headers or {}), **extra}))
        ctx = page.context(error=body, status=status)
        return _secured(HTMLResponse(render(surface.error_template, **ctx), status_code=status, headers=headers))
    return _secured(HTMLResponse(render(surface.error_template, lang=lang, error=body, status=status, csrf="",
                                        elderly=False), status_code=status, headers=headers))


def _secured(response: Response) -> Response:
    secure_headers(response)
    return response


def page_prefixes(*prefixes: str) -> None:
    """Errors under these paths render as pages (kit.web.error_surface)."""
    for prefix in prefixes:
        error_surface(prefix, render_error)


def lang_href(path: str, query: str, lang: str) -> str:
    """This page in `lang`: the same path with every other query parameter kept (parsed and
    re-encoded, so nothing from the request reaches the link unescaped). A path that is not a
    plain same-site one ("//host") falls back to a query-only link, which keeps the current page."""
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "lang"]
    pairs.append(("lang", lang))
    same_site = path.startswith("/") and not path.startswith("//")
    return f"{quote(path) if same_site else ''}?{urlencode(pairs)}"


@pass_context
def _switch_lang_href(ctx: Context) -> str:
    """Template global `switch_lang_href()`: the header's EN/中文 switch on every surface."""
    other = "zh" if ctx.get("lang") == "en" else "en"
    return lang_href(str(ctx.get("path") or ""), str(ctx.get("query") or ""), other)


environment().globals["switch_lang_href"] = _switch_lang_href


def safe_next(target: str | None, default: str) -> str:
    """A same-site path to return to after login (never another host)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def form_errors(err: AppError, lang: str) -> dict[str, str]:
    """A validation error's messages by field name (the last part of each `loc`)."""
    out: dict[str, str] = {}
    for f in err.fields or []:
        loc = f.get("loc") or []
        name = str(loc[-1]) if loc else ""
        out[name] = say(str(f.get("msg", "")), lang)
    return out


def invalid(field: str, msg: str) -> ValidationFailedError:
    """A 422 naming one form field (shown beside it by `form_errors`)."""
    return ValidationFailedError(fields=[{"loc": [field], "msg": msg}])


def questionnaire_answers(questions: list[dict[str, Any]], form: Any) -> dict[str, Any]:
    """A questionnaire form's answers (fields `q_<id>`) by question type; a blank answer is left
    out (the service says if it was required). The patient's and the nurse's follow-up pages."""
    out: dict[str, Any] = {}
    for q in questions:
        qid, kind = str(q["id"]), q["type"]
        if kind == "multi":
            chosen = [str(v) for v in form.getlist(f"q_{qid}") if isinstance(v, str)]
            if chosen:
                out[qid] = chosen
            continue
        raw = form.get(f"q_{qid}")
        if not isinstance(raw, str) or not raw.strip():
            continue
        if kind == "number":
            try:
                value = float(raw.strip())
            except ValueError:
                raise invalid(qid, "请填写数字 / Enter a number") from None
            out[qid] = int(value) if value.is_integer() else value
        else:
            out[qid] = raw.strip()[:2000]
    return out
