"""Patient login (phone + one-time code) and what a patient token reaches."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select, update

from carepoints.config import get_settings, reset_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.kit.time import utc_now
from carepoints.notifications.login_codes import PatientLogin
from carepoints.patients import proxies
from carepoints.security import otp, scope
from carepoints.security.models import OtpCode

if TYPE_CHECKING:
    from tests.api_client import Api
    from tests.conftest import Db
    from tests.security.conftest import Gateway

pytest_plugins = ["tests.api_client"]

_n = iter(range(10_000, 99_999))


def phone() -> str:
    return f"139{next(_n):05d}123"


def ask(api: Api, number: str, **kwargs: Any) -> Any:
    return api.client.post("/api/v1/auth/otp", json={"phone": number}, **kwargs)


def exchange(api: Api, number: str, code: str, patient_id: str | None = None) -> Any:
    body: dict[str, Any] = {"phone": number, "code": code}
    if patient_id is not None:
        body["patient_id"] = patient_id
    return api.client.post("/api/v1/auth/token", json=body)


def login(api: Api, sms: Gateway, number: str, patient_id: str | None = None) -> str:
    assert ask(api, number).status_code == 202
    r = exchange(api, number, sms.code_for(number), patient_id)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["token_type"] == "bearer"
    assert 0 < doc["expires_in"] <= get_settings().patient_token_ttl_seconds
    return str(doc["access_token"])


def _age_codes(seconds: int) -> None:
    """Move every stored code's creation back (the rate-limit windows), as if time had passed."""
    with write_tx() as session:
        conn = session.connection()
        for cid, at in conn.execute(select(OtpCode.id, OtpCode.created_at)).all():
            conn.execute(update(OtpCode).where(OtpCode.id == cid).values(created_at=at - timedelta(seconds=seconds)))


def test_a_code_by_sms_logs_the_patient_in_to_their_own_data_only(api: Api, sms: Gateway) -> None:
    number = phone()
    pid = api.enrol(phone=number)
    other = api.enrol()
    token = login(api, sms, number)
    assert sms.count(number) == 1
    r = api.get(f"/patients/{pid}/points", key=token)
    assert r.status_code == 200, r.text
    r = api.get(f"/patients/{other}/points", key=token)
    assert r.status_code == 404, r.text
    assert r.json()["error"] == "patients.not_found"
    r = api.get(f"/patients/{other}/points/entries", key=token)
    assert r.status_code == 404
    r = api.get("/rewards", params={"patient_id": other}, key=token)  # named in the query
    assert r.status_code == 404
    assert api.get("/rewards", params={"patient_id": pid}, key=token).status_code == 200
    r = api.post("/events", {"type": "selfservice.used"}, key=token)  # not a patient's permission
    assert r.status_code == 403
    assert r.json()["error"] == "auth.forbidden"


def test_a_code_works_once(api: Api, sms: Gateway) -> None:
    number = phone()
    api.enrol(phone=number)
    assert ask(api, number).status_code == 202
    code = sms.code_for(number)
    assert exchange(api, number, code).status_code == 200
    r = exchange(api, number, code)
    assert r.status_code == 401
    assert r.json()["error"] == "auth.code_invalid"


def test_an_unknown_phone_gets_the_same_202_and_no_sms(api: Api, sms: Gateway) -> None:
    number = phone()
    r = ask(api, number)
    assert r.status_code == 202
    assert r.content == b""
    assert sms.count(number) == 0
    with read_tx() as session:
        stored = session.connection().execute(select(func.count()).select_from(OtpCode)).scalar()
    assert stored == 1  # the same work as for a known phone: nothing to tell them apart


def test_a_malformed_phone_is_422(api: Api) -> None:
    r = ask(api, "not a phone")
    assert r.status_code == 422
    assert r.json()["error"] == "request.invalid"


def test_no_code_or_phone_in_the_database_or_logs(api: Api, sms: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    number = phone()
    api.enrol(phone=number)
    caplog.set_level("DEBUG")
    assert ask(api, number).status_code == 202
    code = sms.code_for(number)
    with read_tx() as session:
        rows = session.connection().execute(select(OtpCode)).mappings().all()
    assert len(rows) == 1
    assert code not in str(dict(rows[0]))
    assert number not in str(dict(rows[0]))
    assert rows[0]["dev_code"] is None
    assert code not in caplog.text
    assert number not in caplog.text


def test_an_expired_code_is_refused(api: Api, sms: Gateway) -> None:
    number = phone()
    api.enrol(phone=number)
    assert ask(api, number).status_code == 202
    with write_tx() as session:
        session.connection().execute(update(OtpCode).values(expires_at=utc_now() - timedelta(seconds=1)))
    r = exchange(api, number, sms.code_for(number))
    assert r.status_code == 401
    assert r.json()["error"] == "auth.code_invalid"


def test_five_wrong_codes_burn_the_code(api: Api, sms: Gateway) -> None:
    number = phone()
    api.enrol(phone=number)
    assert ask(api, number).status_code == 202
    code = sms.code_for(number)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = [exchange(api, number, wrong).json()["error"] for _ in range(5)]
    assert answers == ["auth.code_invalid"] * 4 + ["auth.code_attempts_exceeded"]
    r = exchange(api, number, code)  # even the right code now
    assert r.status_code == 401
    assert r.json()["error"] == "auth.code_attempts_exceeded"
    with read_tx() as session:
        assert session.connection().execute(select(OtpCode.attempts)).scalar() == 5


def test_codes_are_rate_limited_per_phone(api: Api, sms: Gateway) -> None:
    number = phone()
    api.enrol(phone=number)
    assert ask(api, number).status_code == 202
    r = ask(api, number)
    assert r.status_code == 429
    assert r.json()["error"] == "rate.limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    for _ in range(4):  # 5 an hour
        _age_codes(61)
        assert ask(api, number).status_code == 202
    _age_codes(61)
    r = ask(api, number)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 60
    assert sms.count(number) == 5


def test_codes_are_rate_limited_per_address(api: Api, sms: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_OTP_PER_IP_PER_HOUR", "3")
    reset_settings()
    numbers = [phone() for _ in range(4)]
    assert [ask(api, n).status_code for n in numbers] == [202, 202, 202, 429]


def test_dev_inbox_only_with_dev_otp_on_sqlite(api: Api, db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    number = phone()
    api.enrol(phone=number)
    assert ask(api, number).status_code == 202
    r = api.client.get("/api/v1/dev/otp", params={"phone": number})
    assert r.status_code == 404
    if db.is_postgres:
        return  # CAREPOINTS_DEV_OTP=1 is refused with PostgreSQL (config)
    monkeypatch.setenv("CAREPOINTS_DEV_OTP", "1")
    reset_settings()
    _age_codes(3600)
    assert ask(api, number).status_code == 202
    r = api.client.get("/api/v1/dev/otp", params={"phone": number})
    assert r.status_code == 200, r.text
    code = r.json()["code"]
    assert exchange(api, number, code).status_code == 200


def test_several_patients_on_one_phone_choose(api: Api, sms: Gateway) -> None:
    number = phone()
    mother = api.enrol(phone=number, name="王秀英")
    child = api.enrol(phone=number, name="王小明")
    assert ask(api, number).status_code == 202
    code = sms.code_for(number)
    r = exchange(api, number, code)
    assert r.status_code == 409
    doc = r.json()
    assert doc["error"] == "auth.choose_patient"
    assert [c["id"] for c in doc["choices"]] == [mother, child]
    assert all("秀英" not in c["name"] and "小明" not in c["name"] and c["name"].startswith("王")
               for c in doc["choices"])
    r = exchange(api, number, code, patient_id="0190a5f0-0000-7000-8000-000000000000")
    assert r.status_code == 409
    r = exchange(api, number, code, patient_id=child)  # the code stayed open for the choice
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert api.get(f"/patients/{child}/points", key=token).status_code == 200
    assert api.get(f"/patients/{mother}/points", key=token).status_code == 404


def test_a_proxy_reaches_the_patient_within_the_scopes(api: Api, sms: Gateway) -> None:
    number = phone()
    carer = api.enrol(phone=number)
    owner, stranger = api.enrol(), api.enrol()
    with write_tx() as session:
        proxies.authorise(session, owner, proxies.Proxy(carer), ["view"], utc_now())
    token = login(api, sms, number)
    assert api.get(f"/patients/{owner}/points", key=token).status_code == 200
    assert api.get(f"/patients/{stranger}/points", key=token).status_code == 404
    reading = {"kind": "blood_pressure", "systolic": 120, "diastolic": 80, "provenance": "self_reported",
               "taken_at": (utc_now() - timedelta(minutes=5)).isoformat()}
    # a body-named route, in a sync endpoint (the reach crosses into the thread pool)
    r = api.post("/measurements", {**reading, "patient": {"id": stranger}}, key=token)
    assert r.status_code == 404, r.text
    assert r.json()["error"] == "patients.not_found"
    r = api.post("/measurements", {**reading, "patient": {"id": owner}}, key=token)
    assert r.status_code == 403, r.text  # view only
    r = api.post("/measurements", {**reading, "patient": {"id": carer}}, key=token)
    assert r.status_code == 201, r.text
    r = api.post("/measurements", {**reading, "patient": {"system": "urn:his", "value": "1"}}, key=token)
    assert r.status_code == 404
    # after a revoke the owner is out of reach (within the credential cache's seconds)
    with read_tx() as session:
        aid = proxies.authorisations(session, owner)[0]["id"]
    with write_tx() as session:
        proxies.revoke(session, owner, aid, utc_now())
    with read_tx() as session:
        assert scope.directory().reach(session, carer, utc_now()) == {}


def test_a_patient_books_only_for_patients_in_reach(api: Api, sms: Gateway) -> None:
    number = phone()
    pid = api.enrol(phone=number)
    other = api.enrol()
    token = login(api, sms, number)
    session_id = "0190a5f0-0000-7000-8000-000000000001"
    body = {"session_id": session_id, "channel": "online", "idempotency_key": "k1"}
    r = api.post("/appointments", {**body, "patient_id": other}, key=token)
    assert r.status_code == 404
    assert r.json()["error"] == "patients.not_found"
    r = api.post("/appointments", {**body, "patient_id": pid, "service_window": True}, key=token)
    assert r.status_code == 403
    r = api.post("/appointments", {**body, "patient_id": pid}, key=token)
    assert r.status_code == 404  # the session does not exist: the patient passed
    assert r.json()["error"] != "patients.not_found"
    r = api.post("/redemptions", {"patient_id": other, "reward": "x", "idempotency_key": "r1"}, key=token)
    assert r.status_code == 404
    assert r.json()["error"] == "patients.not_found"


def test_a_closed_patient_token_stops_working(api: Api, sms: Gateway) -> None:
    from carepoints.patients.models import Patient

    number = phone()
    pid = api.enrol(phone=number)
    token, _ttl = otp.patient_token(pid, utc_now(), get_settings())
    with write_tx() as session:
        session.connection().execute(update(Patient).where(Patient.id == pid).values(status="closed"))
    r = api.get(f"/patients/{pid}/points", key=token)
    assert r.status_code == 401


def test_concurrent_verifications_of_one_code_give_one_token(racing: Db) -> None:
    scope.install(PatientLogin())
    from tests.api_client import make_key, patient_body

    del make_key
    settings = get_settings()
    number = phone()
    with write_tx() as session:
        from carepoints.enrolment import service as enrolment
        from carepoints.patients.schemas import PatientCreate

        enrolment.enrol(session, PatientCreate(**patient_body(phone=number)), utc_now())
    with write_tx() as session:
        code, known = otp.issue(session, number, "127.0.0.1", utc_now(), settings)
    assert known
    barrier = threading.Barrier(8)
    results: list[Any] = []
    lock = threading.Lock()

    def verify() -> None:
        barrier.wait()
        with write_tx() as session:
            result = otp.login(session, number, code, None, utc_now(), settings)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=verify) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tokens = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, AppError)]
    assert len(tokens) == 1
    assert len(refused) == 7
    assert {r.code for r in refused} == {"auth.code_invalid"}


def test_records_named_by_their_own_id_are_checked_by_owner(api: Api) -> None:
    """carepoints.ownership: a household (or appointment, redemption, plan …) id in the path."""
    mine, theirs = api.enrol(), api.enrol()
    own = api.post("/households", {"name": "我家", "head": {"id": mine}}).json()["id"]
    other = api.post("/households", {"name": "别家", "head": {"id": theirs}}).json()["id"]
    token, _ttl = otp.patient_token(mine, utc_now(), get_settings())
    assert api.get(f"/households/{own}", key=token).status_code == 200
    r = api.get(f"/households/{other}", key=token)
    assert r.status_code == 404
    assert r.json()["error"] == "patients.not_found"
    assert api.get(f"/households/{other}").status_code == 200  # staff and keys: unchanged
    for path in ("/redemptions/0190a5f0-0000-7000-8000-000000000009", "/appointments/not-an-id"):
        assert api.get(path, key=token).status_code == 404
