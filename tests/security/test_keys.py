"""API keys: expiry, rotation with a grace period, revocation; and their CLI."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select, update

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.kit.time import utc_now
from carepoints.security import keys
from carepoints.security.deps import forget
from carepoints.security.models import ApiKey
from tests.cli.test_cli import Cli, cli, migrated_template  # noqa: F401  (the CLI tests' fixtures)

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


def _expire(key_id: str, seconds_ago: int = 1) -> None:
    with write_tx() as session:
        session.connection().execute(update(ApiKey).where(ApiKey.id == key_id)
                                     .values(expires_at=utc_now() - timedelta(seconds=seconds_ago)))


def test_an_expired_key_is_refused(api: Api) -> None:
    with write_tx() as session:
        kid, secret = keys.create(session, "his", "integration", utc_now(), expires_days=30)
    with read_tx() as session:
        expires = session.connection().execute(select(ApiKey.expires_at).where(ApiKey.id == kid)).scalar()
    assert expires is not None
    assert timedelta(days=29) < expires - utc_now() <= timedelta(days=30)
    assert api.get(f"/patients/{UNKNOWN}", key=secret).status_code == 404
    with write_tx() as session:
        kid2, secret2 = keys.create(session, "his-2", "integration", utc_now(), expires_days=1)
    _expire(kid2)
    r = api.get(f"/patients/{UNKNOWN}", key=secret2)
    assert r.status_code == 401
    assert r.json()["error"] == "auth.key_expired"


def test_rotation_keeps_the_old_secret_for_the_grace(api: Api) -> None:
    with write_tx() as session:
        old_id, old = keys.create(session, "kiosk", "integration", utc_now(), expires_days=90)
    with write_tx() as session:
        new_id, new = keys.rotate(session, old_id, utc_now(), grace=timedelta(hours=24))
    assert new_id != old_id
    assert new != old
    assert api.get(f"/patients/{UNKNOWN}", key=old).status_code == 404  # still works in the grace
    assert api.get(f"/patients/{UNKNOWN}", key=new).status_code == 404
    with read_tx() as session:
        rows = {r.id: r for r in session.connection().execute(select(ApiKey)).all()}
    assert rows[old_id].replaced_by == new_id
    assert rows[new_id].name == "kiosk"
    assert rows[new_id].role == "integration"
    assert timedelta(hours=23) < rows[old_id].expires_at - utc_now() <= timedelta(hours=24)
    assert timedelta(days=89) < rows[new_id].expires_at - utc_now() <= timedelta(days=90)
    _expire(old_id)  # the grace is over (a process that saw the key in the last seconds: its cache)
    forget(old)
    r = api.get(f"/patients/{UNKNOWN}", key=old)
    assert r.status_code == 401
    assert r.json()["error"] == "auth.key_expired"
    assert api.get(f"/patients/{UNKNOWN}", key=new).status_code == 404
    with write_tx() as session, pytest.raises(AppError) as err:
        keys.rotate(session, old_id, utc_now(), grace=timedelta(hours=1))  # an expired key is not rotated
    assert err.value.code == "auth.key_not_found"


def test_revoke(api: Api) -> None:
    with write_tx() as session:
        kid, secret = keys.create(session, "old", "integration", utc_now())
    with write_tx() as session:
        keys.revoke(session, kid, utc_now())
        keys.revoke(session, kid, utc_now())  # again: the same
    assert api.get(f"/patients/{UNKNOWN}", key=secret).status_code == 401
    with write_tx() as session, pytest.raises(AppError) as err:
        keys.revoke(session, UNKNOWN, utc_now())
    assert err.value.code == "auth.key_not_found"


def test_cli_create_with_expiry_rotate_and_revoke(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    out = cli.run("api-key", "create", "--name", "his", "--role", "integration", "--expires-days", "10")
    first = out.stdout.strip().splitlines()[-1]
    assert first.startswith("cpk_")
    [(kid, expires)] = cli.query("SELECT id, expires_at FROM api_keys")
    assert expires is not None
    out = cli.run("api-key", "rotate", "--id", kid, "--grace-hours", "2")
    second = out.stdout.strip().splitlines()[-1]
    assert second.startswith("cpk_")
    assert second != first
    assert first not in out.stdout
    rows = dict(cli.query("SELECT id, replaced_by FROM api_keys"))
    assert len(rows) == 2
    new_id = next(i for i in rows if i != kid)
    assert rows[kid] == new_id
    with cli.app(monkeypatch) as app:
        for key in (first, second):
            r = app.client.get(f"/api/v1/patients/{UNKNOWN}", headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 404
    cli.run("api-key", "revoke", "--id", new_id)
    forget(second)  # this process saw the key seconds ago (the credential cache)
    bad = cli.run("api-key", "rotate", "--id", UNKNOWN, ok=False)
    assert "auth.key_not_found" in bad.stderr
    with cli.app(monkeypatch) as app:
        r = app.client.get(f"/api/v1/patients/{UNKNOWN}", headers={"Authorization": f"Bearer {second}"})
        assert r.status_code == 401


def test_cli_admin_gets_a_totp_uri_on_stderr(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import pyotp

    out = cli.run("staff", "create", "--username", "boss", "--role", "admin", "--password", "longenough1")
    assert "otpauth://" not in out.stdout
    uri = next(line for line in out.stderr.splitlines() if line.startswith("otpauth://totp/"))
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    nurse = cli.run("staff", "create", "--username", "n", "--role", "nurse", "--password", "longenough1")
    assert "otpauth" not in nurse.stderr
    with cli.app(monkeypatch) as app:
        r = app.client.post("/api/v1/auth/token", json={"username": "boss", "password": "longenough1"})
        assert r.status_code == 401
        assert r.json()["error"] == "auth.otp_required"
        r = app.client.post("/api/v1/auth/token", json={"username": "boss", "password": "longenough1",
                                                         "otp": totp.now()})
        assert r.status_code == 200, r.text
