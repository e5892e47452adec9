"""Patient sign-in: phone + one-time code (6 digits, 5 minutes, rate-limited per phone and
per address by security.otp), choosing who one is when several patients share the phone,
sign-out, the dev inbox (CAREPOINTS_DEV_OTP=1 only) and the page settings (elderly mode,
language) that follow the patient to every device."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from carepoints.config import get_settings
from carepoints.kit.errors import AppError
from carepoints.kit.time import utc_now
from carepoints.pages.web import PATIENT, Page, anonymous, reading, safe_next, self_page, sign_in_patient, writing
from carepoints.patients import service as patients
from carepoints.security import otp
from carepoints.security.endpoints import send_login_code
from carepoints.security.errors import ChoosePatientError, DevInboxOffError

router = APIRouter(include_in_schema=False)
Anonymous = Annotated[Page, Depends(anonymous(PATIENT))]
SignedIn = Annotated[Page, Depends(self_page())]  # the settings are the signed-in patient's own


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/login")
def login_form(page: Anonymous, next: str | None = Query(None, max_length=500)) -> Response:
    """Step 1: the phone number."""
    if page.principal is not None:
        return page.redirect(safe_next(next, "/"))
    return page.render("patient/login.html", step="phone", next=safe_next(next, "/"), phone="",
                       dev_inbox=_dev_inbox_on())


@router.post("/login/code")
async def login_code(request: Request, page: Anonymous, phone: Annotated[str, Form(max_length=32)],
                     next: Annotated[str, Form(max_length=500)] = "/") -> Response:
    """Step 2: a code is sent (the same answer whether or not a patient uses the phone)."""
    target = safe_next(next, "/")
    try:
        await run_in_threadpool(send_login_code, phone, _ip(request))
    except AppError as err:
        if err.status_code == 429 or err.status_code == 422:
            return page.render("patient/login.html", status=err.status_code, step="phone", next=target,
                               phone=phone, error=err.to_dict(), dev_inbox=_dev_inbox_on())
        raise
    return page.render("patient/login.html", step="code", next=target, phone=phone, dev_inbox=_dev_inbox_on())


@router.post("/login")
def login(page: Anonymous, phone: Annotated[str, Form(max_length=32)], code: Annotated[str, Form(max_length=12)],
          next: Annotated[str, Form(max_length=500)] = "/",
          patient_id: Annotated[str | None, Form(max_length=36)] = None) -> Response:
    """Step 3: the code; several patients on the phone → choose who (the code stays open)."""
    target = safe_next(next, "/")
    settings = get_settings()
    with writing() as session:  # a wrong code counts against the code's attempts
        result = otp.login(session, phone, code.strip(), patient_id or None, utc_now(), settings)
    if isinstance(result, ChoosePatientError):
        return page.render("patient/login.html", step="choose", next=target, phone=phone, code=code,
                           choices=result.choices)
    if isinstance(result, AppError):
        return page.render("patient/login.html", status=result.status_code, step="code", next=target,
                           phone=phone, error=result.to_dict(), dev_inbox=_dev_inbox_on())
    sign_in_patient(page, result[0])
    return page.redirect(target)


@router.post("/logout")
def logout(page: Anonymous) -> Response:
    page.sign_out()
    return page.redirect("/login")


def _dev_inbox_on() -> bool:
    settings = get_settings()
    return bool(settings.dev_otp and settings.is_sqlite)


@router.get("/dev/inbox")
def dev_inbox(page: Anonymous, phone: str | None = Query(None, max_length=32)) -> Response:
    """Developers' inbox of login codes: only with CAREPOINTS_DEV_OTP=1 on SQLite (404 otherwise)."""
    if not _dev_inbox_on():
        raise DevInboxOffError()
    code = None
    if phone:
        with reading() as session:
            code = otp.dev_code(session, phone, utc_now(), get_settings())
    return page.render("patient/dev_inbox.html", phone=phone or "", code=code)


@router.get("/me/settings")
def settings_page(page: SignedIn) -> Response:
    return page.render("patient/settings.html", tab="me", back="/me")


@router.post("/me/settings")
def save_settings(page: SignedIn, elderly: Annotated[str | None, Form(max_length=3)] = None,
                  language: Annotated[str | None, Form(max_length=2)] = None) -> Response:
    """Elderly mode on/off and the page language, stored for the signed-in patient."""
    assert page.principal is not None  # noqa: S101
    on = None if elderly is None else elderly in ("1", "on", "yes")
    with writing() as session:
        patients.set_preferences(session, page.principal.id, elderly_mode=on, language=language or None)
    if on is not None:
        page.set(e=on)
    if language in ("zh", "en"):
        page.set(l=language)
    return page.redirect("/me/settings")
