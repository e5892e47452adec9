from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from carepoints.config import get_settings
from carepoints.kit.db import read_tx
from carepoints.kit.errors import AppError
from carepoints.kit.time import utc_now
from carepoints.security import service

router = APIRouter(tags=["auth"])


class TokenRequest(BaseModel):
    username: str | None = Field(default=None, max_length=64)
    password: str | None = Field(default=None, max_length=200)
    otp: str | None = None
    phone: str | None = None
    code: str | None = None
    patient_id: str | None = None


class PatientLoginUnavailableError(AppError):
    code = "auth.patient_login_unavailable"
    status_code = 400
    message = "患者短信登录将在页面版本中提供 / Patient one-time-code login is not available yet"


@router.post("/auth/token")
def issue_token(body: TokenRequest) -> dict[str, Any]:
    """Exchange a staff username and password for a bearer token."""
    if body.username is None or body.password is None:
        raise PatientLoginUnavailableError()
    settings = get_settings()
    with read_tx() as session:
        token = service.login_staff(session, body.username, body.password, secret_key=settings.secret_key,
                                    ttl=settings.token_ttl_seconds, now=utc_now())
    return {"access_token": token, "token_type": "bearer", "expires_in": settings.token_ttl_seconds}
