"""Logins: staff (password, an admin's TOTP code, lockout, sessions, logout) and
patients (phone + one-time code), and the dev inbox of one-time codes."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON, bearer_credential
from carepoints.security import otp, scope, staff
from carepoints.security.deps import forget, limit_per_ip, require
from carepoints.security.errors import DevInboxOffError, LoginRequestInvalidError
from carepoints.security.service import Principal

log = logging.getLogger("carepoints.auth")

# (trust.signing) every route here is unauthenticated: a per-IP rate limit (429 rate.limited)
router = APIRouter(tags=["auth"], dependencies=[Depends(limit_per_ip("auth"))])


class TokenRequest(BaseModel):
    username: str | None = Field(default=None, max_length=64)
    password: str | None = Field(default=None, max_length=200)
    otp: str | None = Field(default=None, max_length=12)
    phone: str | None = Field(default=None, max_length=32)
    code: str | None = Field(default=None, max_length=12)
    patient_id: str | None = Field(default=None, max_length=36)


class OtpRequest(BaseModel):
    phone: str = Field(max_length=32)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/auth/token")
def issue_token(body: TokenRequest) -> dict[str, Any]:
    """Exchange staff `{username, password, otp?}` (administrators also give their authenticator
    code) or patient `{phone, code, patient_id?}` for a bearer token. Several patients on one
    phone: without `patient_id` → 409 `auth.choose_patient` with the choices."""
    settings = get_settings()
    now = utc_now()
    if body.username is not None and body.password is not None:
        with write_tx() as session:  # failed attempts are counted even though the login fails
            outcome = staff.login(session, body.username, body.password, body.otp, now, settings)
        if isinstance(outcome, staff.Issued):
            return {"access_token": outcome.token, "token_type": "bearer", "expires_in": outcome.expires_in}
        raise outcome
    if body.phone is not None and body.code is not None:
        with write_tx() as session:  # a wrong code counts against the code's attempts
            result = otp.login(session, body.phone, body.code, body.patient_id, now, settings)
        if isinstance(result, tuple):
            return {"access_token": result[0], "token_type": "bearer", "expires_in": result[1]}
        raise result
    raise LoginRequestInvalidError()


@router.post("/auth/otp", status_code=202)
async def request_code(body: OtpRequest, request: Request) -> Response:
    """Send a one-time login code to the phone (6 digits, valid 5 minutes). Always 202, whether
    or not a patient uses the phone; rate-limited per phone and per address (429 `rate.limited`)."""
    await run_in_threadpool(send_login_code, body.phone, _client_ip(request))
    return Response(status_code=202)


def send_login_code(phone: str, ip: str) -> None:
    """Store a new code for the phone (rate-limited: 429) and, when a patient uses it, send it
    by SMS; the same whether or not one does. Shared by the API and the login page."""
    settings = get_settings()
    with write_tx() as session:
        code, known = otp.issue(session, phone, ip, utc_now(), settings)
    if known:
        try:
            scope.directory().send_code(otp.normalise_phone(phone), otp.sms_text(code, settings))
        except Exception:  # the code stays valid; the patient may ask again after the limit
            log.warning("login code SMS failed (%s)", "send_error")


@router.get("/dev/otp", include_in_schema=False)
def dev_inbox(phone: str = Query(max_length=32)) -> JSON:
    """The open login code of a phone, only with CAREPOINTS_DEV_OTP=1 (local SQLite); 404 otherwise."""
    settings = get_settings()
    if not (settings.dev_otp and settings.is_sqlite):
        raise DevInboxOffError()
    with read_tx() as session:
        code = otp.dev_code(session, phone, utc_now(), settings)
    if code is None:
        raise DevInboxOffError()
    return JSON({"phone": phone, "code": code})


@router.post("/auth/logout", status_code=204)
def logout(request: Request, principal: Principal = Depends(require("auth:logout"))) -> Response:
    """End this staff session (its token is refused from now on). Patient tokens simply expire."""
    if principal.session_id is not None:
        with write_tx() as session:
            staff.logout(session, principal.session_id, utc_now())
    forget(bearer_credential(request.headers.get("authorization", "")))
    return Response(status_code=204)
