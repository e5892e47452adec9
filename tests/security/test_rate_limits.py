"""Rate limits over HTTP on SQLite and PostgreSQL: per API key (off unless set on the
key; framework routes and the POST /events fast path alike), per client IP on the
unauthenticated auth endpoints, per patient on POST /appointments. Each answers
429 `rate.limited` with Retry-After and a bilingual message; others are unaffected."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from carepoints.cli.main import app as cli_app
from carepoints.config import reset_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import ValidationFailedError
from carepoints.kit.time import utc_now
from carepoints.security import service as security
from carepoints.security.models import ApiKey
from tests.helpers import bp, error, event

if TYPE_CHECKING:
    import httpx

    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


def limited_key(per_minute: int, role: str = "admin") -> str:
    with write_tx() as session:
        return security.create_api_key(session, "limited", role, utc_now(), rate_limit=per_minute)[1]


def assert_limited(r: httpx.Response) -> None:
    body = error(r, 429, "rate.limited")
    assert " / " in body["detail"]  # Chinese / English
    assert 1 <= int(r.headers["retry-after"]) <= 60


def test_a_key_with_a_limit_gets_429_after_n_and_other_keys_do_not(api: Api) -> None:
    key = limited_key(3)
    pid = api.enrol()
    assert [api.get(f"/patients/{pid}/points", key=key).status_code for _ in range(3)] == [200, 200, 200]
    r = api.get(f"/patients/{pid}/points", key=key)
    assert_limited(r)
    assert 1 <= int(r.headers["retry-after"]) <= 20  # one request back every 60 / 3 s (less as time passes)
    # the admin key (no limit) and another limited key are unaffected
    assert all(api.get(f"/patients/{pid}/points").status_code == 200 for _ in range(10))
    other = limited_key(3)
    assert api.get(f"/patients/{pid}/points", key=other).status_code == 200


def test_the_events_fast_path_is_limited_per_key_too(api: Api) -> None:
    key = limited_key(2, "integration")
    pid = api.enrol()
    at = api.now() - timedelta(hours=1)
    for _ in range(2):
        assert api.post("/events", event(pid, "health.measurement", at, bp()), key=key).status_code == 201
    assert_limited(api.post("/events", event(pid, "health.measurement", at, bp()), key=key))
    assert api.balance(pid) == 170  # the refused event was not ingested
    assert api.post("/events", event(pid, "health.measurement", at, bp())).status_code == 201


def test_keys_without_a_limit_are_not_counted(api: Api) -> None:
    pid = api.enrol()
    assert all(api.get(f"/patients/{pid}/points").status_code == 200 for _ in range(25))


def test_cli_creates_a_key_with_a_rate_limit(api: Api) -> None:
    out = CliRunner().invoke(cli_app, ["api-key", "create", "--name", "kiosk", "--role", "integration",
                                       "--rate-limit", "2"])
    assert out.exit_code == 0, out.output
    secret = out.output.strip().splitlines()[-1]
    with read_tx() as session:
        assert session.connection().execute(select(ApiKey.rate_limit_per_minute)
                                            .where(ApiKey.name == "kiosk")).scalar_one() == 2
    pid = api.enrol()
    assert [api.get(f"/patients/{pid}/points", key=secret).status_code for _ in range(3)] == [200, 200, 429]
    bad = CliRunner().invoke(cli_app, ["api-key", "create", "--name", "x", "--rate-limit", "0"])
    assert bad.exit_code != 0
    with pytest.raises(ValidationFailedError), write_tx() as session:
        security.create_api_key(session, "x", "integration", utc_now(), rate_limit=100_001)


def test_auth_endpoints_are_limited_per_client_ip(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_RATE_LIMIT_AUTH_PER_IP_PER_MINUTE", "3")
    reset_settings()
    try:
        wrong = {"username": "nobody", "password": "wrong password"}
        codes = [api.client.post("/api/v1/auth/token", json=wrong).status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        assert_limited(api.client.post("/api/v1/auth/token", json=wrong))
        # authenticated endpoints are not counted against the address
        assert api.get(f"/patients/{UNKNOWN}").status_code == 404
        # another client address has its own budget
        r = api.client.post("/api/v1/auth/token", json=wrong, headers={"X-Forwarded-For": "10.0.0.9"})
        assert r.status_code == 429  # forwarding headers are not trusted: still the same client
    finally:
        monkeypatch.delenv("CAREPOINTS_RATE_LIMIT_AUTH_PER_IP_PER_MINUTE")
        reset_settings()


def test_booking_attempts_are_limited_per_patient(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_RATE_LIMIT_BOOKING_PER_MINUTE", "2")
    reset_settings()
    try:
        pid, other = api.enrol(), api.enrol()

        def book(patient: str, n: int) -> httpx.Response:
            return api.post("/appointments", {"patient_id": patient, "session_id": UNKNOWN,
                                              "idempotency_key": f"{patient}-{n}"})

        assert [book(pid, n).status_code for n in range(2)] == [404, 404]  # attempts count, not successes
        assert_limited(book(pid, 3))
        assert book(other, 1).status_code == 404
        ref = api.post("/appointments", {"patient": {"id": pid}, "session_id": UNKNOWN, "idempotency_key": "r"})
        assert_limited(ref)  # by reference it is the same patient
    finally:
        monkeypatch.delenv("CAREPOINTS_RATE_LIMIT_BOOKING_PER_MINUTE")
        reset_settings()
