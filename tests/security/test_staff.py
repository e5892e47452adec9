"""Staff accounts: lockout, idle time-out, logout, and the administrators' TOTP."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pyotp
from sqlalchemy import select, update

from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.security import service as security
from carepoints.security import staff
from carepoints.security.models import StaffSession, StaffUser

if TYPE_CHECKING:
    from tests.api_client import Api
    from tests.conftest import Db

pytest_plugins = ["tests.api_client"]

PASSWORD = "correct horse battery"
UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


def _login(api: Api, username: str, password: str = PASSWORD, otp: str | None = None) -> Any:
    body: dict[str, Any] = {"username": username, "password": password}
    if otp is not None:
        body["otp"] = otp
    return api.client.post("/api/v1/auth/token", json=body)


def _token(api: Api, username: str, **kwargs: Any) -> str:
    r = _login(api, username, **kwargs)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _admin(username: str) -> pyotp.TOTP:
    with write_tx() as session:
        sid = security.create_staff(session, username, PASSWORD, "admin", utc_now())
        uri = staff.enrol_totp(session, sid, username, get_settings().secret_key)
    assert uri.startswith("otpauth://totp/")
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    return parsed


def test_five_failures_lock_the_account(api: Api) -> None:
    api.make_staff("front.li", PASSWORD, "frontdesk")
    answers = [_login(api, "front.li", "wrong password") for _ in range(5)]
    assert [r.status_code for r in answers] == [401, 401, 401, 401, 423]
    assert answers[0].json()["error"] == "auth.bad_credentials"
    assert answers[4].json()["error"] == "auth.locked"
    r = _login(api, "front.li")  # the right password, while locked
    assert r.status_code == 423
    assert r.json()["error"] == "auth.locked"
    with write_tx() as session:
        session.connection().execute(update(StaffUser).where(StaffUser.username == "front.li")
                                     .values(locked_until=utc_now() - timedelta(seconds=1)))
    assert _login(api, "front.li").status_code == 200
    with read_tx() as session:
        row = session.connection().execute(select(StaffUser.failed_logins, StaffUser.locked_until)
                                           .where(StaffUser.username == "front.li")).one()
    assert tuple(row) == (0, None)


def test_failures_outside_the_window_start_over(api: Api) -> None:
    api.make_staff("nurse.he", PASSWORD, "nurse")
    for _ in range(4):
        assert _login(api, "nurse.he", "nope").status_code == 401
    with write_tx() as session:
        session.connection().execute(update(StaffUser).where(StaffUser.username == "nurse.he")
                                     .values(failed_since=utc_now() - timedelta(minutes=16)))
    assert _login(api, "nurse.he", "nope").status_code == 401  # the 5th, but a new window
    with read_tx() as session:
        assert session.connection().execute(select(StaffUser.failed_logins)
                                            .where(StaffUser.username == "nurse.he")).scalar() == 1
    assert _login(api, "nurse.he").status_code == 200


def test_an_unknown_user_is_never_locked(api: Api) -> None:
    answers = {_login(api, "nobody", "x").json()["error"] for _ in range(6)}
    assert answers == {"auth.bad_credentials"}


def test_concurrent_failures_all_count(racing: Db) -> None:
    with write_tx() as session:
        security.create_staff(session, "clin.wu", PASSWORD, "clinician", utc_now())
    settings = get_settings()
    barrier = threading.Barrier(8)
    codes: list[str] = []
    lock = threading.Lock()

    def fail() -> None:
        barrier.wait()
        with write_tx() as session:
            outcome = staff.login(session, "clin.wu", "wrong", None, utc_now(), settings)
        assert not isinstance(outcome, staff.Issued)
        with lock:
            codes.append(outcome.code)

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == ["auth.bad_credentials"] * 4 + ["auth.locked"] * 4  # the 5th locks it


def test_an_idle_session_times_out(api: Api) -> None:
    api.make_staff("aud.qian", PASSWORD, "auditor")
    token = _token(api, "aud.qian")
    with write_tx() as session:
        session.connection().execute(update(StaffSession).values(last_seen_at=utc_now() - timedelta(minutes=31)))
    r = api.get(f"/patients/{UNKNOWN}/points", key=token)
    assert r.status_code == 401
    assert r.json()["error"] == "auth.session_expired"


def test_use_keeps_the_session_alive_touching_at_most_once_a_minute(api: Api) -> None:
    api.make_staff("aud.zhao", PASSWORD, "auditor")
    token = _token(api, "aud.zhao")
    with read_tx() as session:
        first = session.connection().execute(select(StaffSession.last_seen_at)).scalar()
    assert api.get(f"/patients/{UNKNOWN}/points", key=token).status_code == 404
    with read_tx() as session:
        assert session.connection().execute(select(StaffSession.last_seen_at)).scalar() == first  # < 1 min
    token2 = _token(api, "aud.zhao")  # a second session, to dodge the credential cache
    with write_tx() as session:
        session.connection().execute(update(StaffSession).values(last_seen_at=utc_now() - timedelta(minutes=20)))
    assert api.get(f"/patients/{UNKNOWN}/points", key=token2).status_code == 404
    with read_tx() as session:
        seen = dict(session.connection().execute(select(StaffSession.id, StaffSession.last_seen_at)).all())
    assert sum(1 for at in seen.values() if at > utc_now() - timedelta(minutes=1)) == 1


def test_logout_ends_the_session(api: Api) -> None:
    api.make_staff("mod.sun", PASSWORD, "moderator")
    token = _token(api, "mod.sun")
    other = _token(api, "mod.sun")
    assert api.get("/moderation/posts", key=token).status_code == 200
    r = api.post("/auth/logout", key=token)
    assert r.status_code == 204
    r = api.get("/moderation/posts", key=token)
    assert r.status_code == 401
    assert r.json()["error"] == "auth.session_expired"
    assert api.get("/moderation/posts", key=other).status_code == 200  # the other session goes on
    assert api.post("/auth/logout", key=api.key).status_code == 204  # a key: nothing to end


def test_an_admin_needs_a_fresh_totp_code(api: Api) -> None:
    totp = _admin("admin.zhou")
    r = _login(api, "admin.zhou")
    assert r.status_code == 401
    assert r.json()["error"] == "auth.otp_required"
    r = _login(api, "admin.zhou", otp="000000" if totp.now() != "000000" else "111111")
    assert r.status_code == 401
    assert r.json()["error"] == "auth.otp_invalid"
    code = totp.now()
    token = _token(api, "admin.zhou", otp=code)
    assert api.get("/audit", key=token).status_code == 200
    r = _login(api, "admin.zhou", otp=code)  # replayed
    assert r.status_code == 401
    assert r.json()["error"] == "auth.otp_invalid"
    later = totp.at(utc_now() + timedelta(seconds=30))  # the next step (one step of drift is allowed)
    assert _login(api, "admin.zhou", otp=later).status_code == 200
    r = _login(api, "admin.zhou", otp=code)  # an earlier step after a later one
    assert r.status_code == 401


def test_wrong_totp_codes_count_towards_the_lockout(api: Api) -> None:
    totp = _admin("admin.wu")
    wrong = f"{(int(totp.now()) + 500_000) % 1_000_000:06d}"
    codes = [_login(api, "admin.wu", otp=wrong).json()["error"] for _ in range(5)]
    assert codes == ["auth.otp_invalid"] * 4 + ["auth.locked"]


def test_the_totp_secret_is_sealed(api: Api) -> None:
    totp = _admin("admin.zheng")
    with read_tx() as session:
        sealed = session.connection().execute(select(StaffUser.totp_secret)
                                              .where(StaffUser.username == "admin.zheng")).scalar()
    assert sealed is not None
    assert totp.secret not in sealed
    assert staff.unseal_totp(sealed, get_settings().secret_key) == totp.secret
    assert staff.unseal_totp(sealed, "another-secret-key-0123456789") is None
