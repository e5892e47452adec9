"""WeChat binding and login over real HTTP through the app, against a stub WeChat OAuth
server on loopback (tests/wechat/conftest.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import logging
import os
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import func, select, text, update

from carepoints.audit.models import AuditEntry
from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.outbox import OutboxMessage
from carepoints.kit.time import utc_now
from carepoints.notifications.templates import BUILTIN
from carepoints.patients.models import Patient
from carepoints.security import otp, wechat
from carepoints.security.errors import WechatStateInvalidError
from carepoints.security.models import WechatBinding, WechatState
from tests.conftest import Db
from tests.helpers import dump_database, error
from tests.locks import errors, oks, race
from tests.wechat.conftest import APP_ID, APP_SECRET, REDIRECT, Stub

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

OPENID = "oWx-family-7Hq2mZ9kT3vYpL0aBcDeFgH"
OTHER = "oWx-second-3Jk8nQ1rS6uWxZ2cVbNmAsD"


_codes = itertools.count(1)


def code(openid: str) -> str:
    """A fresh web-authorisation code for this WeChat (the stub answers each once)."""
    return f"ok-{openid}~{next(_codes)}"


def token(pid: str) -> str:
    return otp.patient_token(pid, utc_now(), get_settings())[0]


def authorize(api: Api, purpose: str, pid: str | None = None, redirect: str = REDIRECT) -> Any:
    headers = {"Authorization": f"Bearer {token(pid)}"} if pid else {}
    return api.get("/auth/wechat/authorize", params={"purpose": purpose, "redirect_uri": redirect},
                   auth=False, headers=headers)


def state_for(api: Api, purpose: str, pid: str | None = None) -> str:
    r = authorize(api, purpose, pid)
    assert r.status_code == 200, r.text
    return str(r.json()["state"])


def bind(api: Api, pid: str, openid: str) -> Any:
    state = state_for(api, "bind", pid)
    return api.post("/auth/wechat/bind", {"code": code(openid), "state": state}, key=token(pid))


def login(api: Api, code: str, state: str, patient_id: str | None = None) -> Any:
    body: dict[str, Any] = {"code": code, "state": state}
    if patient_id is not None:
        body["patient_id"] = patient_id
    return api.post("/auth/wechat/login", body, auth=False)


def audit_actions(pid: str) -> list[str]:
    with read_tx() as session:
        return list(session.execute(select(AuditEntry.action).where(
            AuditEntry.patient_id == pid, AuditEntry.action.like("security:wechat:%"))
            .order_by(AuditEntry.at)).scalars())


def bindings() -> list[tuple[str, str]]:
    with read_tx() as session:
        return [(str(p), str(h)) for p, h in session.execute(
            select(WechatBinding.patient_id, WechatBinding.openid_hash).order_by(WechatBinding.patient_id))]


def test_authorize_bind_login_full_flow(api: Api, stub: Stub) -> None:
    pid = api.enrol()
    r = authorize(api, "bind", pid)
    assert r.status_code == 200, r.text
    doc = r.json()
    url = urlparse(doc["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://open.weixin.qq.com/connect/oauth2/authorize"
    assert url.fragment == "wechat_redirect"
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert q == {"appid": APP_ID, "redirect_uri": REDIRECT, "response_type": "code", "scope": "snsapi_base",
                 "state": doc["state"]}
    assert len(doc["state"]) == 64
    assert doc["state"].isalnum()

    assert api.get(f"/patients/{pid}/wechat", key=token(pid)).json() == {"bound": False, "bound_at": None}
    r = api.post("/auth/wechat/bind", {"code": f"ok-{OPENID}", "state": doc["state"]}, key=token(pid))
    assert r.status_code == 200, r.text
    assert r.json()["bound"] is True
    assert r.json()["replaced"] is False
    assert stub.calls[-1] == {"appid": APP_ID, "secret": APP_SECRET, "code": f"ok-{OPENID}",
                              "grant_type": "authorization_code"}
    status = api.get(f"/patients/{pid}/wechat", key=token(pid)).json()
    assert status["bound"] is True
    assert status["bound_at"]
    assert api.get(f"/patients/{pid}/wechat").json()["bound"] is True  # staff (admin) see it too

    # the bind state is spent
    again = api.post("/auth/wechat/bind", {"code": f"ok-{OPENID}x", "state": doc["state"]}, key=token(pid))
    error(again, 400, "wechat.state_invalid")

    state = state_for(api, "login")
    r = login(api, code(OPENID), state)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["token_type"] == "bearer"
    assert out["expires_in"] == get_settings().patient_token_ttl_seconds
    me = api.get(f"/patients/{pid}/points", key=out["access_token"])
    assert me.status_code == 200, me.text
    # the login state is spent: a reused state is refused (even with a fresh code)
    error(login(api, f"ok-{OPENID}-2", state), 400, "wechat.state_invalid")
    assert audit_actions(pid) == ["security:wechat:bind", "security:wechat:login"]


def test_wrong_redirect_not_configured_and_bad_states(api: Api, stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = api.enrol()
    error(authorize(api, "login", redirect="https://evil.example/steal"), 400, "wechat.redirect_not_allowed")
    error(authorize(api, "login", redirect=REDIRECT + "?x=1"), 400, "wechat.redirect_not_allowed")
    assert authorize(api, "login", redirect="https://h5.hospital.example/other").status_code == 200
    assert authorize(api, "sideways").status_code == 422
    assert authorize(api, "bind").status_code == 401  # a bind state is for a signed-in patient
    r = api.get("/auth/wechat/authorize", params={"purpose": "bind", "redirect_uri": REDIRECT})  # admin key
    assert r.status_code == 403

    # a forged, a login-purpose and another patient's state cannot bind
    error(api.post("/auth/wechat/bind", {"code": "ok-x", "state": "0" * 64}, key=token(pid)),
          400, "wechat.state_invalid")
    login_state = state_for(api, "login")
    error(api.post("/auth/wechat/bind", {"code": "ok-x", "state": login_state}, key=token(pid)),
          400, "wechat.state_invalid")
    other = api.enrol()
    theirs = state_for(api, "bind", other)
    error(api.post("/auth/wechat/bind", {"code": f"ok-{OPENID}", "state": theirs}, key=token(pid)),
          400, "wechat.state_invalid")
    error(login(api, f"ok-{OPENID}", theirs), 400, "wechat.state_invalid")  # and a bind state cannot log in
    assert stub.calls == []  # refused before WeChat was asked

    # an expired state
    state = state_for(api, "login")
    with write_tx() as session:
        session.execute(update(WechatState).values(expires_at=utc_now() - timedelta(seconds=1)))
    error(login(api, f"ok-{OPENID}", state), 400, "wechat.state_invalid")

    # only staff/patients with the permission see a binding; integration keys do not
    assert api.get(f"/patients/{pid}/wechat", key=api.make_key("integration")).status_code == 403

    monkeypatch.setenv("CAREPOINTS_WECHAT_APP_SECRET", "")
    from carepoints.config import reset_settings
    reset_settings()
    error(authorize(api, "login"), 404, "wechat.not_configured")
    error(login(api, "ok-x", state), 404, "wechat.not_configured")
    error(api.post("/auth/wechat/bind", {"code": "ok-x", "state": state}, key=token(pid)),
          404, "wechat.not_configured")
    error(api.request("DELETE", "/auth/wechat/binding", key=token(pid)), 404, "wechat.not_configured")
    assert api.get(f"/patients/{pid}/wechat", key=token(pid)).json()["bound"] is False


def test_wechat_errors_are_clear_4xx(api: Api, stub: Stub) -> None:
    pid = api.enrol()
    expected = {"bad": (400, "wechat.code_invalid"), "hang": (424, "wechat.unavailable"),
                "boom": (424, "wechat.unavailable"), "html": (424, "wechat.unavailable"),
                "busy": (424, "wechat.unavailable")}
    for bad, (status, err) in expected.items():
        error(login(api, bad, state_for(api, "login")), status, err)
        r = api.post("/auth/wechat/bind", {"code": bad, "state": state_for(api, "bind", pid)}, key=token(pid))
        error(r, status, err)
    assert bindings() == []
    # a code WeChat has seen before (40163) is a bad code
    once = code(OPENID)
    error(login(api, once, state_for(api, "login")), 404, "wechat.not_bound")
    error(login(api, once, state_for(api, "login")), 400, "wechat.code_invalid")
    # unreachable WeChat
    from carepoints.config import reset_settings
    os.environ["CAREPOINTS_WECHAT_API_BASE"] = "http://127.0.0.1:9"
    reset_settings()
    error(login(api, "ok-z", state_for(api, "login")), 424, "wechat.unavailable")
    assert api.post("/auth/wechat/login", {"code": "", "state": "x"}, auth=False).status_code == 422


def test_family_on_one_wechat_chooses_patient(api: Api, stub: Stub) -> None:
    grandma, grandpa, child = api.enrol(name="王秀英"), api.enrol(name="李建国"), api.enrol(name="李小明")
    for pid in (grandma, grandpa):
        assert bind(api, pid, OPENID).status_code == 200
    assert bind(api, child, OTHER).status_code == 200
    state = state_for(api, "login")
    r = login(api, f"ok-{OPENID}", state)
    assert r.status_code == 409, r.text
    doc = r.json()
    assert doc["error"] == "auth.choose_patient"
    assert [c["id"] for c in doc["choices"]] == [grandma, grandpa]
    names = [c["name"] for c in doc["choices"]]
    assert names[0] != "王秀英"
    assert names[0].startswith("王")
    assert "*" in names[0]
    assert "李建国" not in r.text
    assert OPENID not in r.text
    # not one of them: still the choice (the child's id is not offered)
    r = login(api, f"ok-{OPENID}", state, patient_id=child)
    assert r.status_code == 409
    assert [c["id"] for c in r.json()["choices"]] == [grandma, grandpa]
    calls = len(stub.calls)
    # the same code and state with a choice: logged in without asking WeChat again (codes work once)
    r = login(api, f"ok-{OPENID}", state, patient_id=grandpa)
    assert r.status_code == 200, r.text
    assert len(stub.calls) == calls
    assert api.get(f"/patients/{grandpa}/points", key=r.json()["access_token"]).status_code == 200
    assert api.get(f"/patients/{grandma}/points", key=r.json()["access_token"]).status_code == 404
    error(login(api, f"ok-{OPENID}", state, patient_id=grandma), 400, "wechat.state_invalid")
    # a different code on a state awaiting a choice is exchanged anew
    state = state_for(api, "login")
    assert login(api, f"ok-{OPENID}-a", state).status_code == 404  # unknown WeChat: not bound
    assert audit_actions(grandpa)[-1] == "security:wechat:login"
    assert "security:wechat:login" not in audit_actions(grandma)


def test_rebind_replaces_and_unbind_refuses_login(api: Api, stub: Stub) -> None:
    pid = api.enrol()
    assert bind(api, pid, OPENID).status_code == 200
    r = bind(api, pid, OTHER)
    assert r.status_code == 200
    assert r.json()["replaced"] is True
    assert len(bindings()) == 1
    error(login(api, f"ok-{OPENID}", state_for(api, "login")), 404, "wechat.not_bound")
    assert login(api, f"ok-{OTHER}", state_for(api, "login")).status_code == 200

    r = api.request("DELETE", "/auth/wechat/binding", key=token(pid))
    assert r.status_code == 204, r.text
    assert bindings() == []
    error(login(api, code(OTHER), state_for(api, "login")), 404, "wechat.not_bound")
    error(api.request("DELETE", "/auth/wechat/binding", key=token(pid)), 404, "wechat.not_bound")
    assert api.get(f"/patients/{pid}/wechat", key=token(pid)).json()["bound"] is False
    assert audit_actions(pid) == ["security:wechat:bind", "security:wechat:bind", "security:wechat:login",
                                  "security:wechat:unbind"]
    with read_tx() as session:
        rows = session.execute(select(AuditEntry.details).where(AuditEntry.patient_id == pid)).scalars().all()
    assert [d.get("replaced") for d in rows if "replaced" in d] == [False, True]


@pytest.mark.parametrize("status", ["closed", "deceased", "merged"])
def test_inactive_patient_cannot_log_in(api: Api, stub: Stub, status: str) -> None:
    pid, sibling = api.enrol(), api.enrol()
    for p in (pid, sibling):
        assert bind(api, p, OPENID).status_code == 200

    def set_status(p: str, value: str) -> None:
        with write_tx() as session:
            session.execute(update(Patient).where(Patient.id == p).values(status=value))

    def attempt(patient_id: str | None = None) -> Any:
        return login(api, code(OPENID), state_for(api, "login"), patient_id=patient_id)

    set_status(pid, status)
    r = attempt()  # the one still active on this WeChat logs in alone: no choice offered
    assert r.status_code == 200, r.text
    assert api.get(f"/patients/{sibling}/points", key=r.json()["access_token"]).status_code == 200
    error(attempt(pid), 403, "wechat.patient_inactive")
    set_status(sibling, status)
    error(attempt(), 403, "wechat.patient_inactive")
    error(attempt(sibling), 403, "wechat.patient_inactive")




def test_openid_is_in_no_table_and_no_log(api: Api, stub: Stub, db: Db, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    a, b = api.enrol(), api.enrol()
    for pid in (a, b):
        assert bind(api, pid, OPENID).status_code == 200
    assert login(api, f"ok-{OPENID}", state_for(api, "login")).status_code == 409
    assert login(api, "hang", state_for(api, "login")).status_code == 424
    state = state_for(api, "login")
    assert login(api, f"ok-{OPENID}", state, patient_id=b).status_code == 400  # WeChat: code been used
    dump = dump_database(db)
    assert "CREATE TABLE" in dump
    assert "wechat_bindings" in dump
    assert a in dump
    for secret in (OPENID, APP_SECRET, OPENID[4:20], "ok-"):
        assert secret not in dump
        assert secret not in caplog.text
    with read_tx() as session:
        assert session.execute(select(func.count()).select_from(WechatBinding)).scalar() == 2


def test_a_state_is_spent_once_under_concurrency(racing: Db, stub: Stub, now: datetime) -> None:
    from tests.helpers import enrol
    settings = get_settings()
    pid = enrol(now)
    index = wechat.openid_index(settings, OPENID)
    with write_tx() as session:
        session.execute(WechatBinding.__table__.insert(), [{  # type: ignore[attr-defined]
            "id": "00000000-0000-4000-8000-00000000b001", "patient_id": pid, "app_id": APP_ID,
            "openid_hash": index, "bound_at": now}])
        state = wechat.authorize(session, "login", REDIRECT, None, utc_now(), settings)["state"]
    with read_tx() as session:
        opened = wechat.open_state(session, state, "login", utc_now(), settings)

    def attempt() -> Any:
        with write_tx() as session:
            result = wechat.login(session, opened, f"ok-{OPENID}", index, None, utc_now(), settings)
        if not isinstance(result, tuple):
            raise result
        return result

    results = race(racing, [attempt] * 8, lock=(WechatState.__table__, [opened.id]))  # type: ignore[arg-type]
    assert len(oks(results)) == 1
    assert len(errors(results)) == 7
    assert all(isinstance(e, WechatStateInvalidError) for e in errors(results))
    with read_tx() as session:
        logins = session.execute(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "security:wechat:login")).scalar()
    assert logins == 1


def test_concurrent_binds_of_one_patient_leave_one_binding(racing: Db, stub: Stub, now: datetime) -> None:
    from carepoints.audit.service import Actor
    from tests.helpers import enrol
    settings = get_settings()
    pid = enrol(now)
    opened = []
    for _ in range(6):
        with write_tx() as session:
            state = wechat.authorize(session, "bind", REDIRECT, pid, utc_now(), settings)["state"]
        with read_tx() as session:
            opened.append(wechat.open_state(session, state, "bind", utc_now(), settings))

    def binder(i: int) -> Any:
        def run() -> Any:
            with write_tx() as session:
                return wechat.bind(session, opened[i], wechat.openid_index(settings, f"{OPENID}{i}"),
                                   Actor("patient", pid, "patient"), pid, utc_now(), settings)
        return run

    results = race(racing, [binder(i) for i in range(6)])
    assert len(oks(results)) == 6, errors(results)
    assert sorted(r["replaced"] for r in oks(results)).count(False) >= 1
    with read_tx() as session:
        rows = session.execute(select(WechatBinding.openid_hash).where(WechatBinding.patient_id == pid)).all()
        n = session.execute(text("SELECT count(*) FROM wechat_states WHERE consumed_at IS NOT NULL")).scalar()
    assert len(rows) == 1
    assert n == 6
    assert rows[0][0] in {wechat.openid_index(settings, f"{OPENID}{i}") for i in range(6)}


def test_the_patient_is_told_of_bind_and_unbind(api: Api, stub: Stub) -> None:
    pid = api.enrol()
    assert bind(api, pid, OPENID).status_code == 200
    assert api.request("DELETE", "/auth/wechat/binding", key=token(pid)).status_code == 204
    with read_tx() as session:
        rows = session.execute(select(OutboxMessage.topic, OutboxMessage.payload).where(
            OutboxMessage.topic.like("account.wechat%")).order_by(OutboxMessage.created_at)).all()
    assert [(t, p) for t, p in rows] == [("account.wechat_bound", {"patient_id": pid}),
                                         ("account.wechat_unbound", {"patient_id": pid})]
    for topic in ("account.wechat_bound", "account.wechat_unbound"):
        template = BUILTIN[topic]
        assert template.zh[1]
        assert template.en[1]


def test_login_is_rate_limited_per_address(api: Api, stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_RATE_LIMIT_AUTH_PER_IP_PER_MINUTE", "3")
    from carepoints.config import reset_settings
    reset_settings()
    codes = [login(api, "bad", "0" * 64).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    error(authorize(api, "login"), 429, "rate.limited")


def test_erasure_and_download(api: Api, stub: Stub) -> None:
    """Registered with enrolment.privacy at import: a download lists the binding without the
    account; an erasure removes it, and the WeChat no longer logs in."""
    pid = api.enrol()
    assert bind(api, pid, OPENID).status_code == 200
    r = api.get(f"/patients/{pid}/export")
    assert r.status_code == 200, r.text
    assert [b["app_id"] for b in r.json()["wechat"]] == [APP_ID]
    assert OPENID not in r.text
    r = api.post(f"/patients/{pid}/erasure", {"reason": "patient_request"})
    assert r.status_code == 200, r.text
    assert bindings() == []
    error(login(api, code(OPENID), state_for(api, "login")), 404, "wechat.not_bound")
