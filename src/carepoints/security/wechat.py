"""(ops.wechat) A patient binds a WeChat account and later logs in with it (WeChat web
authorisation, 网页授权, OAuth 2.0 with `snsapi_base`).

1. `authorize` hands out a `state` (hex: a random nonce and its HMAC under the secret key;
   only its hash is stored, with an expiry and the purpose; a bind state names the patient who
   asked for it, so a stolen bind link cannot bind someone else's WeChat) and WeChat's
   authorisation URL for an allowed `redirect_uri` (`wechat_redirect_allow`).
2. WeChat sends the patient back to that page with `code` and `state`; the page posts them to
   `bind` (with the patient's token) or `login`.
3. The code is exchanged at `{wechat_api_base}/sns/oauth2/access_token` (outside any database
   transaction) for the openid; the state is spent once by a guarded UPDATE (concurrent uses:
   exactly one wins).

The openid is stored only as an HMAC blind index (with the app id): never in clear, never in a
log or an audit row. One WeChat may be bound to several patients (a family); a patient has at
most one binding per app (unique index), a new bind replaces it. Login with several bound
patients and no `patient_id` answers 409 `auth.choose_patient` with their ids and masked names;
the state then keeps the exchanged code's and openid's hashes, and the same `{code, state,
patient_id}` completes the login (WeChat's codes work once). Only active patients log in."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import Settings
from carepoints.kit import outbox
from carepoints.kit.bulk import upsert
from carepoints.kit.db import table
from carepoints.kit.errors import AppError
from carepoints.kit.ids import new_id
from carepoints.security import otp, scope
from carepoints.security.errors import (
    WechatChoosePatientError,
    WechatCodeInvalidError,
    WechatNotBoundError,
    WechatNotConfiguredError,
    WechatPatientInactiveError,
    WechatRedirectNotAllowedError,
    WechatStateInvalidError,
    WechatUnavailableError,
)
from carepoints.security.models import WechatBinding, WechatState

log = logging.getLogger("carepoints.auth")

_bindings = table(WechatBinding)
_states = table(WechatState)
PURPOSES = ("login", "bind")
# WeChat's answers for a code that is wrong, expired or already used (全局返回码)
CODE_ERRORS = frozenset({40029, 40163, 41008, 42003, 40030})
BOUND_TOPIC, UNBOUND_TOPIC = "account.wechat_bound", "account.wechat_unbound"  # the patient is told
KEEP = timedelta(days=1)  # states older than this are deleted when new ones are handed out


# --- the WeChat adapter ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Identity:
    """Who WeChat says authorised: the openid of our app (and the unionid when WeChat gives one)."""

    openid: str = ""
    unionid: str | None = None

    def __repr__(self) -> str:  # never print an openid
        return "Identity(<redacted>)"


class OAuthClient(Protocol):
    def exchange(self, code: str) -> Identity:
        """The identity behind a web-authorisation code (WechatCodeInvalidError for a bad
        code, WechatUnavailableError when WeChat cannot be asked)."""
        ...


class HttpOAuthClient:
    """The code exchange over HTTPS: GET {api_base}/sns/oauth2/access_token?appid=&secret=&code=
    &grant_type=authorization_code → {access_token, expires_in, refresh_token, openid, scope,
    unionid?} or {errcode, errmsg}. The secret and the answer never reach a log."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.base = settings.wechat_api_base.rstrip("/")
        self.app_id = settings.wechat_app_id
        self.secret = settings.wechat_app_secret
        self.timeout = settings.wechat_timeout_seconds
        self.transport = transport

    def exchange(self, code: str) -> Identity:
        params = {"appid": self.app_id, "secret": self.secret, "code": code, "grant_type": "authorization_code"}
        request = httpx.Request("GET", f"{self.base}/sns/oauth2/access_token", params=params,
                                extensions={"timeout": httpx.Timeout(self.timeout).as_dict()})
        # the transport itself, not an httpx.Client: the client logs every request's URL at info,
        # and this URL carries the app secret and the patient's code
        transport = self.transport or httpx.HTTPTransport(retries=0)
        try:
            with transport:
                r = transport.handle_request(request)
                try:
                    r.read()
                finally:
                    r.close()
        except httpx.HTTPError as exc:
            log.warning("wechat code exchange failed (%s)", type(exc).__name__)
            raise WechatUnavailableError() from None
        if r.status_code != 200:
            log.warning("wechat code exchange answered HTTP %s", r.status_code)
            raise WechatUnavailableError()
        try:
            doc: Any = r.json()
        except ValueError:
            log.warning("wechat code exchange answered no JSON")
            raise WechatUnavailableError() from None
        if not isinstance(doc, dict):
            raise WechatUnavailableError()
        errcode = doc.get("errcode")
        if errcode not in (None, 0):
            if errcode in CODE_ERRORS:
                raise WechatCodeInvalidError()
            # e.g. -1 busy, 40013 / 40125 our app id or secret refused: not the patient's fault
            log.warning("wechat code exchange refused (errcode %s)", errcode)
            raise WechatUnavailableError()
        openid = doc.get("openid")
        if not isinstance(openid, str) or not openid or len(openid) > 128:
            log.warning("wechat code exchange answered no openid")
            raise WechatUnavailableError()
        unionid = doc.get("unionid")
        return Identity(openid, unionid if isinstance(unionid, str) and unionid else None)


_client: list[Callable[[Settings], OAuthClient]] = [HttpOAuthClient]


def use_client(factory: Callable[[Settings], OAuthClient]) -> None:
    """Replace the WeChat adapter (another transport, a mini-programme's jscode2session)."""
    _client[0] = factory


def client(settings: Settings) -> OAuthClient:
    configured(settings)
    return _client[0](settings)


# masked display names of patients (installed by a higher layer; see `install_names`)
NameLookup = Callable[[Session, list[str]], dict[str, str]]
_names: list[NameLookup | None] = [None]


def install_names(lookup: NameLookup) -> None:
    """Masked names for the `auth.choose_patient` answer (the patients domain, wired by the app)."""
    _names[0] = lookup


# --- helpers ---------------------------------------------------------------------------------

def configured(settings: Settings) -> None:
    if not (settings.wechat_app_id and settings.wechat_app_secret):
        raise WechatNotConfiguredError()


def _mac(settings: Settings, purpose: str, value: str) -> str:
    return hmac.new(settings.secret_key.encode(), f"carepoints-wechat-{purpose}:{value}".encode(),
                    hashlib.sha256).hexdigest()


def openid_index(settings: Settings, openid: str) -> str:
    """The blind index of an openid of this app (what is stored instead of the openid)."""
    return _mac(settings, "openid", f"{settings.wechat_app_id}:{openid}")


def allowed_redirects(settings: Settings) -> frozenset[str]:
    return frozenset(u.strip() for u in settings.wechat_redirect_allow.split(",") if u.strip())


def _state_sig(settings: Settings, nonce: str) -> str:
    return _mac(settings, "state", nonce)[:32]


# --- authorise ---------------------------------------------------------------------------------

def authorize(session: Session, purpose: str, redirect_uri: str, patient_id: str | None, now: datetime,
              settings: Settings) -> dict[str, Any]:
    """A new single-use state and WeChat's authorisation URL: {url, state, expires_at}."""
    configured(settings)
    if redirect_uri not in allowed_redirects(settings):
        raise WechatRedirectNotAllowedError()
    nonce = secrets.token_hex(16)
    state = nonce + _state_sig(settings, nonce)  # 64 hex digits: WeChat allows [a-zA-Z0-9]{,128}
    expires = now + timedelta(seconds=settings.wechat_state_ttl_seconds)
    conn = session.connection()
    conn.execute(delete(_states).where(_states.c.created_at < now - KEEP))
    conn.execute(_states.insert(), [{
        "id": new_id(), "state_hash": _mac(settings, "state-hash", state), "purpose": purpose,
        "patient_id": patient_id, "code_hash": None, "openid_hash": None, "created_at": now,
        "expires_at": expires, "consumed_at": None}])
    query = urlencode({"appid": settings.wechat_app_id, "redirect_uri": redirect_uri, "response_type": "code",
                       "scope": settings.wechat_scope, "state": state})
    return {"url": f"{settings.wechat_authorize_url}?{query}#wechat_redirect", "state": state, "expires_at": expires}


@dataclass(frozen=True, slots=True)
class OpenState:
    id: str
    patient_id: str | None
    code_hash: str | None
    openid_hash: str | None


def open_state(session: Session, state: str, purpose: str, now: datetime, settings: Settings) -> OpenState:
    """The unspent, unexpired state of this purpose (400 `wechat.state_invalid` otherwise)."""
    configured(settings)
    state = (state or "").strip()
    if len(state) != 64 or not hmac.compare_digest(_state_sig(settings, state[:32]), state[32:]):
        raise WechatStateInvalidError()
    row = session.connection().execute(
        select(_states.c.id, _states.c.purpose, _states.c.patient_id, _states.c.code_hash, _states.c.openid_hash,
               _states.c.expires_at, _states.c.consumed_at)
        .where(_states.c.state_hash == _mac(settings, "state-hash", state))).first()
    if row is None or row.purpose != purpose or row.consumed_at is not None or row.expires_at <= now:
        raise WechatStateInvalidError()
    return OpenState(str(row.id), row.patient_id, row.code_hash, row.openid_hash)


def _spend(session: Session, state_id: str, now: datetime) -> None:
    won = session.connection().execute(
        update(_states).where(_states.c.id == state_id, _states.c.consumed_at.is_(None), _states.c.expires_at > now)
        .values(consumed_at=now, code_hash=None, openid_hash=None)).rowcount
    if won != 1:  # a concurrent request spent it first
        raise WechatStateInvalidError()


# --- bind / unbind ---------------------------------------------------------------------------

def bind(session: Session, state: OpenState, openid_hash: str, actor: Actor, patient_id: str, now: datetime,
         settings: Settings) -> dict[str, Any]:
    """Spend the bind state and bind the WeChat (its openid's index) to the patient, replacing
    the patient's binding of this app. One transaction."""
    if state.patient_id != patient_id:  # a bind link is for the patient who asked for it
        raise WechatStateInvalidError()
    _spend(session, state.id, now)
    conn = session.connection()
    app_id = settings.wechat_app_id
    previous = conn.execute(
        select(_bindings.c.openid_hash)
        .where(_bindings.c.patient_id == patient_id, _bindings.c.app_id == app_id)).scalar()
    # one statement: a concurrent bind of the same patient updates the row instead of a second one
    stmt = upsert(conn, _bindings).values(id=new_id(), patient_id=patient_id, app_id=app_id,
                                         openid_hash=openid_hash, bound_at=now)
    stmt = stmt.on_conflict_do_update(index_elements=["patient_id", "app_id"],
                                      set_={"openid_hash": stmt.excluded.openid_hash, "bound_at": now})
    binding_id = str(conn.execute(stmt.returning(_bindings.c.id)).scalar_one())
    replaced = previous is not None
    outbox.enqueue_many(conn, [(BOUND_TOPIC, patient_id, {"patient_id": patient_id})], now)
    audit.record(session, actor, "security:wechat:bind", now, subject_id=binding_id, patient_id=patient_id,
                 app_id=app_id, replaced=replaced,
                 same_account=previous == openid_hash)
    return {"bound": True, "bound_at": now, "replaced": replaced}


def unbind(session: Session, actor: Actor, patient_id: str, now: datetime, settings: Settings) -> None:
    """Remove the patient's binding of this app (404 `wechat.not_bound` when there is none)."""
    configured(settings)
    conn = session.connection()
    gone = conn.execute(delete(_bindings).where(_bindings.c.patient_id == patient_id,
                                                _bindings.c.app_id == settings.wechat_app_id)
                        .returning(_bindings.c.id)).scalars().all()
    if not gone:
        raise WechatNotBoundError()
    outbox.enqueue_many(conn, [(UNBOUND_TOPIC, patient_id, {"patient_id": patient_id})], now)
    audit.record(session, actor, "security:wechat:unbind", now, subject_id=str(gone[0]), patient_id=patient_id,
                 app_id=settings.wechat_app_id)


def status(session: Session, patient_id: str, settings: Settings) -> dict[str, Any]:
    """{bound, bound_at} of the patient's binding of this app (not bound when WeChat is off)."""
    bound_at = None
    if settings.wechat_app_id:
        bound_at = session.connection().execute(
            select(_bindings.c.bound_at).where(_bindings.c.patient_id == patient_id,
                                               _bindings.c.app_id == settings.wechat_app_id)).scalar()
    return {"bound": bound_at is not None, "bound_at": bound_at}


def export(session: Session, patient_id: str) -> list[dict[str, Any]]:
    """Data download (enrolment.privacy.export_section): the patient's bindings, without the
    account (carepoints does not know it: only its blind index)."""
    rows = session.connection().execute(
        select(_bindings.c.app_id, _bindings.c.bound_at).where(_bindings.c.patient_id == patient_id)
        .order_by(_bindings.c.bound_at)).all()
    return [{"app_id": r.app_id, "bound_at": r.bound_at} for r in rows]


def forget_patient(session: Session, patient_id: str, actor: Actor, now: datetime) -> dict[str, int]:
    """Erasure (enrolment.privacy.on_erasure): the patient's bindings and open states go."""
    conn = session.connection()
    n = conn.execute(delete(_bindings).where(_bindings.c.patient_id == patient_id)).rowcount
    conn.execute(delete(_states).where(_states.c.patient_id == patient_id))
    return {"wechat_bindings": int(n or 0)}


# --- login -----------------------------------------------------------------------------------

def candidates(session: Session, openid_hash: str, now: datetime, settings: Settings) -> tuple[list[str], list[str]]:
    """(the active patients bound to this WeChat, every patient bound to it), oldest binding first."""
    rows = session.connection().execute(
        select(_bindings.c.patient_id).where(_bindings.c.app_id == settings.wechat_app_id,
                                             _bindings.c.openid_hash == openid_hash)
        .order_by(_bindings.c.bound_at, _bindings.c.id)).scalars().all()
    directory = scope.directory()
    active = [str(pid) for pid in rows if directory.reach(session, str(pid), now) is not None]
    return active, [str(pid) for pid in rows]


def login(session: Session, state: OpenState, code: str, openid_hash: str, patient_id: str | None, now: datetime,
          settings: Settings) -> tuple[str, int] | AppError:
    """A patient token for the patient bound to this WeChat, or the refusal (commit, then raise:
    a refusal that needs a choice keeps the exchanged code on the state)."""
    ids, bound = candidates(session, openid_hash, now, settings)
    if not ids or (patient_id is not None and patient_id in bound and patient_id not in ids):
        _spend(session, state.id, now)
        return WechatPatientInactiveError() if bound else WechatNotBoundError()
    if (patient_id is None and len(ids) > 1) or (patient_id is not None and patient_id not in ids):
        names = _names[0](session, ids) if _names[0] is not None else {}
        conn = session.connection()
        conn.execute(update(_states).where(_states.c.id == state.id, _states.c.consumed_at.is_(None))
                     .values(code_hash=_mac(settings, "code", code), openid_hash=openid_hash))
        return WechatChoosePatientError([{"id": pid, "name": names.get(pid, "")} for pid in ids])
    chosen = patient_id or ids[0]
    _spend(session, state.id, now)
    audit.record(session, Actor("patient", chosen, "patient"), "security:wechat:login", now, subject_id=chosen,
                 patient_id=chosen, app_id=settings.wechat_app_id)
    return otp.patient_token(chosen, now, settings)


def known_code(state: OpenState, code: str, settings: Settings) -> str | None:
    """The openid index kept on a state awaiting a choice, when `code` is the code exchanged then."""
    if state.code_hash and state.openid_hash and hmac.compare_digest(_mac(settings, "code", code), state.code_hash):
        return state.openid_hash
    return None
