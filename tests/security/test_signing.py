"""Signed requests (API.md; security.signing) over real HTTP on SQLite and PostgreSQL:
keys created with --require-signature sign GETs, POSTs through the framework and
POST /events on the lean fast path; replays, stale timestamps, altered bodies, bad
signatures and unsigned requests are refused with their 401 codes; a nonce is
accepted once even when two connections race for it."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from sqlalchemy import insert, select, text, update
from typer.testing import CliRunner

from carepoints.cli.main import app as cli_app
from carepoints.config import get_settings
from carepoints.kit import retention
from carepoints.kit.db import get_engine, read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.security import service as security
from carepoints.security import signing
from carepoints.security.errors import NonceReusedError, SignatureExpiredError, SignatureInvalidError
from carepoints.security.models import ApiKey, RequestNonce
from tests.conftest import Db
from tests.helpers import bp, error, event
from tests.locks import errors, lock_waiters, oks, race

if TYPE_CHECKING:
    import httpx

    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def signer_key(role: str = "admin", **kwargs: Any) -> tuple[str, str]:
    with write_tx() as session:
        return security.create_api_key(session, "signer", role, utc_now(), require_signature=True, **kwargs)


def send_signed(api: Api, key: str, method: str, path: str, body: Any = None, *, sign_body: bytes | None = None,
                timestamp: int | None = None, nonce: str | None = None, query: str = "",
                secret: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    """A request signed with `key` (or `secret`); `sign_body` signs other bytes than are sent."""
    raw = b"" if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
    target = api.url(path) + (f"?{query}" if query else "")
    signed = signing.signed_headers(secret or key, method, target, raw if sign_body is None else sign_body,
                                    timestamp=int(time.time()) if timestamp is None else timestamp, nonce=nonce)
    all_headers = {"Authorization": f"Bearer {key}", **signed, **(headers or {})}
    if raw:
        all_headers["Content-Type"] = "application/json"
    return api.client.request(method, target, content=raw or None, headers=all_headers)


def bp_event(api: Api, pid: str, **kwargs: Any) -> dict[str, Any]:
    return event(pid, "health.measurement", api.now() - timedelta(hours=1), bp(), **kwargs)


# --- the recipe, without a database -------------------------------------------------


def test_the_canonical_string_and_signature_follow_the_documented_recipe() -> None:
    body = b'{"a":1}'
    expected_canonical = ("POST\n/api/v1/events?x=1\n1700000000\nabcdefghijklmnop\n"
                          + hashlib.sha256(body).hexdigest()).encode()
    assert signing.canonical("post", "/api/v1/events?x=1", "1700000000", "abcdefghijklmnop", body) \
        == expected_canonical
    expected = hmac.new(b"cpk_secret", expected_canonical, hashlib.sha256).hexdigest()
    assert signing.sign("cpk_secret", "POST", "/api/v1/events?x=1", "1700000000", "abcdefghijklmnop", body) \
        == expected
    headers = {"x-carepoints-timestamp": "1700000000", "x-carepoints-nonce": "abcdefghijklmnop",
               "x-carepoints-signature": expected}
    assert signing.check("cpk_secret", "POST", "/api/v1/events?x=1", headers, body, 1700000000.0 + 299) \
        == "abcdefghijklmnop"
    # "sha256=" prefix and upper-case hex are the same signature
    for variant in ("sha256=" + expected, expected.upper()):
        assert signing.check("cpk_secret", "POST", "/api/v1/events?x=1",
                             {**headers, "x-carepoints-signature": variant}, body, 1700000000.0)
    with pytest.raises(SignatureExpiredError):
        signing.check("cpk_secret", "POST", "/api/v1/events?x=1", headers, body, 1700000000.0 + 301)
    with pytest.raises(SignatureExpiredError):
        signing.check("cpk_secret", "POST", "/api/v1/events?x=1", headers, body, 1700000000.0 - 301)
    for changed in ({"method": "PUT"}, {"target": "/api/v1/events"}, {"body": b'{"a":2}'},
                    {"secret": "cpk_other"}):
        args: dict[str, Any] = {"secret": "cpk_secret", "method": "POST", "target": "/api/v1/events?x=1",
                                "body": body, **changed}
        with pytest.raises(SignatureInvalidError):
            signing.check(args["secret"], args["method"], args["target"], headers, args["body"], 1700000000.0)
    for bad in ({"x-carepoints-nonce": "short"}, {"x-carepoints-nonce": "x" * 65},
                {"x-carepoints-nonce": "abcdefghijklmnop!"}, {"x-carepoints-timestamp": "17e8"},
                {"x-carepoints-timestamp": "-1700000000"}, {"x-carepoints-signature": "abc"}):
        with pytest.raises(SignatureInvalidError):
            signing.check("cpk_secret", "POST", "/api/v1/events?x=1", {**headers, **bad}, body, 1700000000.0)


def test_a_sealed_signing_secret_opens_only_for_its_key_and_app_secret() -> None:
    sealed = signing.seal("cpk_abc", "kid-1", "app-secret")
    assert "cpk_abc" not in sealed
    assert signing.unseal(sealed, "kid-1", "app-secret") == "cpk_abc"
    assert signing.unseal(sealed, "kid-2", "app-secret") is None
    assert signing.unseal(sealed, "kid-1", "another-app-secret") is None
    assert signing.unseal("garbage", "kid-1", "app-secret") is None
    assert signing.unseal("v1.!!!", "kid-1", "app-secret") is None
    assert signing.seal("cpk_abc", "kid-1", "app-secret") != sealed  # a fresh IV each time


# --- over HTTP ------------------------------------------------------------------------


def test_cli_key_with_require_signature_signs_end_to_end(api: Api) -> None:
    out = CliRunner().invoke(cli_app, ["api-key", "create", "--name", "his-signed", "--role", "admin",
                                       "--require-signature"])
    assert out.exit_code == 0, out.output
    secret = out.output.strip().splitlines()[-1]
    assert secret.startswith("cpk_")
    with read_tx() as session:
        stored = session.connection().execute(select(ApiKey.require_signature, ApiKey.signing_secret, ApiKey.id)
                                              .where(ApiKey.name == "his-signed")).one()
    assert stored[0] is True
    assert stored[1] is not None
    assert secret not in stored[1]
    assert signing.unseal(stored[1], stored[2], get_settings().secret_key) == secret

    pid = api.enrol()
    r = send_signed(api, secret, "GET", f"/patients/{pid}/points")
    assert r.status_code == 200, r.text
    assert r.json()["balance"] == 100
    r = api.get(f"/patients/{pid}/points", key=secret)
    error(r, 401, "auth.signature_required")


def test_signed_get_post_and_query_string(api: Api) -> None:
    _kid, key = signer_key()
    r = send_signed(api, key, "POST", "/patients", api.patient_body())  # a body model through FastAPI
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    r = send_signed(api, key, "GET", f"/patients/{pid}/points/entries", query="limit=5")
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 1
    # the query string is signed: the same signature for another query is refused
    ts, nonce = int(time.time()), "q" * 20
    signed = signing.signed_headers(key, "GET", f"/api/v1/patients/{pid}/points/entries?limit=5", b"",
                                    timestamp=ts, nonce=nonce)
    r = api.client.get(f"/api/v1/patients/{pid}/points/entries?limit=6",
                       headers={"Authorization": f"Bearer {key}", **signed})
    error(r, 401, "auth.signature_invalid")


def test_signed_events_on_the_fast_path_single_and_batch(api: Api) -> None:
    _kid, key = signer_key("integration")
    pid = api.enrol()
    r = send_signed(api, key, "POST", "/events", bp_event(api, pid))
    assert r.status_code == 201, r.text
    assert r.json()["balance"] == 160  # first check-in 50 + reading 10
    evs = [bp_event(api, pid), bp_event(api, pid)]
    r = send_signed(api, key, "POST", "/events", {"events": evs})
    assert r.status_code == 200, r.text
    assert len(r.json()["outcomes"]) == 2
    assert api.balance(pid) == 170  # the daily cap of 20 for readings
    # unsigned, or with a query string signed differently, the fast path refuses too
    error(api.post("/events", bp_event(api, pid), key=key), 401, "auth.signature_required")
    body = orjson.dumps(bp_event(api, pid))
    signed = signing.signed_headers(key, "POST", "/api/v1/events", body, timestamp=int(time.time()))
    r = api.client.post("/api/v1/events?via=proxy", content=body,
                        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **signed})
    error(r, 401, "auth.signature_invalid")
    signed = signing.signed_headers(key, "POST", "/api/v1/events?via=proxy", body, timestamp=int(time.time()))
    r = api.client.post("/api/v1/events?via=proxy", content=body,
                        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **signed})
    assert r.status_code == 201, r.text


def test_replayed_nonce_is_refused(api: Api) -> None:
    _kid, key = signer_key("integration")
    pid = api.enrol()
    ev = bp_event(api, pid)
    ts = int(time.time())
    first = send_signed(api, key, "POST", "/events", ev, timestamp=ts, nonce="n" * 24)
    assert first.status_code == 201, first.text
    again = send_signed(api, key, "POST", "/events", ev, timestamp=ts, nonce="n" * 24)
    error(again, 401, "auth.nonce_reused")
    # also for a GET and a new timestamp: the nonce is spent for this key
    error(send_signed(api, key, "GET", f"/patients/{pid}/points", nonce="n" * 24), 401, "auth.nonce_reused")
    # another key may use the same nonce
    _kid2, other = signer_key("integration")
    assert send_signed(api, other, "GET", f"/patients/{pid}/points", nonce="n" * 24).status_code == 200
    assert api.balance(pid) == 160


def test_old_future_and_malformed_timestamps_are_refused(api: Api) -> None:
    _kid, key = signer_key()
    pid = api.enrol()
    now = int(time.time())
    error(send_signed(api, key, "GET", f"/patients/{pid}/points", timestamp=now - 400), 401,
          "auth.signature_expired")
    error(send_signed(api, key, "GET", f"/patients/{pid}/points", timestamp=now + 400), 401,
          "auth.signature_expired")
    r = send_signed(api, key, "GET", f"/patients/{pid}/points", headers={"X-Carepoints-Timestamp": "soon"})
    error(r, 401, "auth.signature_invalid")
    assert send_signed(api, key, "GET", f"/patients/{pid}/points", timestamp=now - 200).status_code == 200


def test_a_body_changed_after_signing_and_a_bad_signature_are_refused(api: Api) -> None:
    _kid, key = signer_key()
    pid = api.enrol()
    ev = bp_event(api, pid)
    tampered = orjson.dumps({**ev, "attributes": bp(sys_=120)})
    error(send_signed(api, key, "POST", "/events", tampered, sign_body=orjson.dumps(ev)), 401,
          "auth.signature_invalid")
    body = api.patient_body()
    error(send_signed(api, key, "POST", "/patients", orjson.dumps({**body, "name": "李四"}),
                      sign_body=orjson.dumps(body)), 401, "auth.signature_invalid")
    error(send_signed(api, key, "POST", "/events", ev, secret="cpk_not_the_secret"), 401, "auth.signature_invalid")
    error(send_signed(api, key, "GET", f"/patients/{pid}/points", headers={"X-Carepoints-Signature": "0" * 64}),
          401, "auth.signature_invalid")
    r = send_signed(api, key, "GET", f"/patients/{pid}/points", headers={"X-Carepoints-Nonce": "bad nonce!"})
    error(r, 401, "auth.signature_invalid")
    assert api.balance(pid) == 100  # nothing was ingested
    # a refused signature spends no nonce: the genuine request with that nonce still passes
    assert send_signed(api, key, "POST", "/events", ev, nonce="k" * 16).status_code == 201


def test_missing_headers_and_a_cached_principal_do_not_excuse_signing(api: Api) -> None:
    _kid, key = signer_key()
    pid = api.enrol()
    assert send_signed(api, key, "GET", f"/patients/{pid}/points").status_code == 200  # principal now cached
    r = api.get(f"/patients/{pid}/points", key=key)
    body = error(r, 401, "auth.signature_required")
    assert " / " in body["detail"]  # Chinese / English
    assert r.headers["www-authenticate"] == "Bearer"
    for missing in ("X-Carepoints-Timestamp", "X-Carepoints-Nonce", "X-Carepoints-Signature"):
        signed = signing.signed_headers(key, "GET", f"/api/v1/patients/{pid}/points", b"", timestamp=int(time.time()))
        del signed[missing]
        r = api.client.get(f"/api/v1/patients/{pid}/points", headers={"Authorization": f"Bearer {key}", **signed})
        error(r, 401, "auth.signature_required")
    # the follow-up routes resolve the caller themselves, with the request
    r = send_signed(api, key, "GET", "/questionnaires/unknown-code")
    assert r.status_code == 404, r.text


def test_keys_without_require_signature_need_not_sign_and_their_headers_are_ignored(api: Api) -> None:
    pid = api.enrol()
    r = api.get(f"/patients/{pid}/points", headers={"X-Carepoints-Timestamp": "1", "X-Carepoints-Nonce": "x",
                                                   "X-Carepoints-Signature": "not-checked"})
    assert r.status_code == 200, r.text
    with read_tx() as session:
        assert session.connection().execute(select(RequestNonce.nonce)).all() == []


def test_a_signed_key_from_before_the_sealed_secret_signs_with_its_secret(api: Api) -> None:
    kid, key = signer_key()
    with write_tx() as session:
        session.connection().execute(update(ApiKey).where(ApiKey.id == kid).values(signing_secret=None))
    pid = api.enrol()
    assert send_signed(api, key, "GET", f"/patients/{pid}/points").status_code == 200
    error(api.get(f"/patients/{pid}/points", key=key), 401, "auth.signature_required")


def test_old_nonces_are_purged_and_may_then_be_used_again(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signing, "_next_purge", float("inf"))  # no purge in the insert path yet
    now = utc_now()
    old = now - signing.NONCE_MEMORY - timedelta(seconds=1)
    with write_tx() as session:
        session.connection().execute(insert(RequestNonce), [
            {"key_id": "k1", "nonce": "a" * 16, "at": old}, {"key_id": "k1", "nonce": "b" * 16, "at": old},
            {"key_id": "k1", "nonce": "c" * 16, "at": now - timedelta(seconds=30)}])
    with write_tx() as session:  # a nonce past memory is revived, not refused
        signing.remember_nonce(session, "k1", "a" * 16, now)
    with pytest.raises(NonceReusedError), write_tx() as session:
        signing.remember_nonce(session, "k1", "c" * 16, now)
    with write_tx() as session:
        assert signing.purge_nonces(session, now) == 1  # b
    with read_tx() as session:
        rows = dict(session.connection().execute(select(RequestNonce.nonce, RequestNonce.at)).all())
    assert set(rows) == {"a" * 16, "c" * 16}
    assert rows["a" * 16] == now
    # the retention job's kind is the backstop (its default: a day)
    assert "request_nonces" in [k.name for k in retention.kinds()]
    with write_tx() as session:
        assert signing.purge_batch(session, now - timedelta(days=1)) == 0
        assert signing.purge_batch(session, now + timedelta(seconds=1)) == 2
    # the insert path purges by itself once a minute per process
    with write_tx() as session:
        session.connection().execute(insert(RequestNonce), [{"key_id": "k2", "nonce": "d" * 16, "at": old}])
    monkeypatch.setattr(signing, "_next_purge", 0.0)
    with write_tx() as session:
        signing.remember_nonce(session, "k2", "e" * 16, now)
    with read_tx() as session:
        assert session.connection().execute(select(RequestNonce.nonce)).scalars().all() == ["e" * 16]
    assert signing._next_purge > time.monotonic()


def test_concurrent_requests_with_one_nonce_exactly_one_is_accepted(racing: Db) -> None:
    """Eight connections commit the same (key, nonce) at once; on PostgreSQL they first
    queue behind an uncommitted insert of it, which then rolls back."""
    now = utc_now()

    def attempt() -> str:
        with write_tx() as session:
            signing.remember_nonce(session, "racer-key", "r" * 32, now)
        return "accepted"

    holder = None
    if racing.is_postgres:
        holder = get_engine().connect()
        holder.begin()
        holder.execute(insert(RequestNonce), [{"key_id": "racer-key", "nonce": "r" * 32, "at": now}])
    queued: list[int] = []
    releaser = None
    if holder is not None:
        def release() -> None:
            deadline = time.monotonic() + 30
            while lock_waiters() < 8 and time.monotonic() < deadline:
                threading.Event().wait(0.005)
            queued.append(lock_waiters())
            holder.rollback()
            holder.close()
        releaser = threading.Thread(target=release, daemon=True)
        releaser.start()
    results = race(racing, [attempt] * 8)
    if releaser is not None:
        releaser.join(timeout=60)
        assert queued == [8]  # every racer waited on the uncommitted nonce
    assert oks(results) == ["accepted"]
    assert len(errors(results)) == 7
    assert all(isinstance(e, NonceReusedError) for e in errors(results))
    with read_tx() as session:
        assert session.connection().execute(
            text("SELECT count(*) FROM request_nonces WHERE key_id = 'racer-key'")).scalar() == 1


def test_the_same_signed_request_twice_at_once_over_http(api: Api) -> None:
    _kid, key = signer_key()
    pid = api.enrol()
    ts, nonce = int(time.time()), "h" * 40
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def worker() -> None:
        client = api.new_client()
        signed = signing.signed_headers(key, "GET", f"/api/v1/patients/{pid}/points", b"", timestamp=ts, nonce=nonce)
        barrier.wait()
        statuses.append(client.get(f"/api/v1/patients/{pid}/points",
                                   headers={"Authorization": f"Bearer {key}", **signed}).status_code)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses) == [200, 401]
