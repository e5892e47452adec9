"""(ops.wechat) WeChat binding and login over the API (security.wechat).

Starting an authorisation and logging in are unauthenticated (rate-limited per client address
like POST /auth/otp; 429 `rate.limited`); binding, unbinding and the binding's status need a
patient token. WeChat not answering is 424 `wechat.unavailable` (a failed dependency: a 5xx
from carepoints is always a bug)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import PermissionDeniedError
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security import wechat
from carepoints.security.deps import limit_per_ip, principal_for, require
from carepoints.security.errors import WechatStateInvalidError
from carepoints.security.service import Principal

router = APIRouter(tags=["wechat"])
public = APIRouter(tags=["wechat"], dependencies=[Depends(limit_per_ip("auth"))])


class WechatCallback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=256)
    state: str = Field(min_length=1, max_length=128)


class WechatLogin(WechatCallback):
    patient_id: str | None = Field(default=None, max_length=36)


def _openid_index(state: wechat.OpenState, code: str) -> str:
    settings = get_settings()
    known = wechat.known_code(state, code, settings)
    if known is not None:
        return known
    return wechat.openid_index(settings, wechat.client(settings).exchange(code).openid)


@public.get("/auth/wechat/authorize")
async def authorize(request: Request, purpose: Literal["login", "bind"] = Query(),
                    redirect_uri: str = Query(min_length=1, max_length=1000)) -> JSON:
    """Start a WeChat web authorisation (网页授权): `{url, state, expires_at}` — send the patient to
    `url`; WeChat brings them back to `redirect_uri` (one of `wechat_redirect_allow`, else 400
    `wechat.redirect_not_allowed`) with `code` and `state`. `purpose=bind` needs the patient's
    token (the state is theirs alone); the state works once, for `wechat_state_ttl_seconds`."""
    settings = get_settings()
    wechat.configured(settings)
    patient_id: str | None = None
    if purpose == "bind":
        principal = await principal_for(request.headers.get("authorization", ""), request)
        if not principal.can("wechat:bind"):
            raise PermissionDeniedError(permission="wechat:bind")
        patient_id = principal.id

    def start() -> dict[str, Any]:
        with write_tx() as session:
            return wechat.authorize(session, purpose, redirect_uri, patient_id, utc_now(), settings)

    return JSON(await run_in_threadpool(start))


@public.post("/auth/wechat/login")
def login(body: WechatLogin) -> dict[str, Any]:
    """Log in with WeChat `{code, state, patient_id?}` → `{access_token, token_type, expires_in}` (the
    same patient token as the phone login). Several patients bound to this WeChat and no
    `patient_id` → 409 `auth.choose_patient` with their ids and masked names: post the same body
    again with one of them. No binding → 404 `wechat.not_bound`; a patient no longer active →
    403 `wechat.patient_inactive`; a spent or expired state → 400 `wechat.state_invalid`."""
    settings = get_settings()
    with read_tx() as session:
        state = wechat.open_state(session, body.state, "login", utc_now(), settings)
    openid_index = _openid_index(state, body.code)  # outside any transaction: WeChat may be slow
    with write_tx() as session:  # a refusal that awaits a choice keeps the exchanged code
        result = wechat.login(session, state, body.code, openid_index, body.patient_id, utc_now(), settings)
    if isinstance(result, tuple):
        return {"access_token": result[0], "token_type": "bearer", "expires_in": result[1]}
    raise result


@router.post("/auth/wechat/bind")
def bind(body: WechatCallback, principal: Principal = Depends(require("wechat:bind"))) -> JSON:
    """Bind the WeChat that authorised `{code, state}` (a `purpose=bind` state of this patient) to
    the calling patient → `{bound, bound_at, replaced}`; a patient's earlier binding is replaced.
    Several patients (a family) may bind the same WeChat."""
    settings = get_settings()
    with read_tx() as session:
        state = wechat.open_state(session, body.state, "bind", utc_now(), settings)
    if state.patient_id != principal.id:
        raise WechatStateInvalidError()
    openid_index = _openid_index(state, body.code)
    with write_tx() as session:
        return JSON(wechat.bind(session, state, openid_index, principal.actor(), principal.id, utc_now(),
                                settings))


@router.delete("/auth/wechat/binding", status_code=204)
def unbind(principal: Principal = Depends(require("wechat:bind"))) -> Response:
    """Remove the calling patient's WeChat binding (404 `wechat.not_bound` when there is none)."""
    with write_tx() as session:
        wechat.unbind(session, principal.actor(), principal.id, utc_now(), get_settings())
    return Response(status_code=204)


@router.get("/patients/{patient_id}/wechat")
def binding_status(patient_id: str, _p: Principal = Depends(require("wechat:read"))) -> JSON:
    """Whether the patient has bound a WeChat: `{bound, bound_at}` (never the account itself)."""
    with read_tx() as session:
        return JSON(wechat.status(session, patient_id, get_settings()))


router.include_router(public)
