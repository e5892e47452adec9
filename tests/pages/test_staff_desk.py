"""The staff front desk over real HTTP (SQLite and PostgreSQL): patient lookup with masked PII and
the summary, on-site registration from the session's slot pool, check-in (on time, late,
priority), paper sheet entry scored by the rules, coupon verification (核销) and the clinician's
follow-up booking; each service refusal re-rendered with its code, who may open each page,
CSRF and sign-in."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, time, timedelta
from typing import Any

import pytest

from carepoints.app import create_app
from carepoints.config import get_settings
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.scheduling import service as scheduling
from carepoints.scheduling.schemas import (
    AppointmentCreate,
    CancelIn,
    ClinicianCreate,
    DepartmentCreate,
    InstitutionCreate,
    SessionCreate,
)
from tests.conftest import Db
from tests.helpers import balance, enrol
from tests.pages.helpers import PageClient, patient_client, staff_client
from tests.rewards.kit import add_reward, redeem

CARD = "urn:demo:his:mrn"


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text[:600]
    assert f'data-error="{code}"' in r.text, r.text[:600]


def _key(html: str) -> str:
    m = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert m, html[:800]
    return m.group(1)


def patient(now: datetime, n: int, **extra: Any) -> str:
    return enrol(now, phone=f"1381234{n:04d}", name="张秀英", id_number="110101195001011234" if n == 1 else None,
                 external_ids=[{"system": CARD, "value": f"CARD{n:04d}"}], **extra)


def hospital(staff_user_id: str | None = None) -> dict[str, str]:
    now = utc_now()
    tag = uuid.uuid4().hex[:6]
    with write_tx() as session:
        inst = scheduling.create_institution(session, InstitutionCreate(code=f"H{tag}", name_zh="第一人民医院"), now)
        dept = scheduling.create_department(session, DepartmentCreate(institution_id=inst["id"], code=f"C{tag}",
                                                                      name_zh="心内科"), now)
        doc = scheduling.create_clinician(session, ClinicianCreate(department_id=dept["id"], code=f"d{tag}",
                                                                   name="王医生", staff_user_id=staff_user_id), now)
    return {"institution": inst["id"], "department": dept["id"], "clinician": doc["id"]}


def today_session(clinician: str, *, start_ago: int = 30, minutes: int = 120,
                  release: datetime | None = None, day_offset: int = 0) -> dict[str, Any]:
    """A session of today (local) running from `start_ago` minutes ago, 10-minute slots."""
    tz = get_settings().tz
    local = datetime.now(tz)
    if not time(1, 0) <= local.time() <= time(21, 30):
        pytest.skip("needs a session today around the local time (not near midnight)")
    begin = (local - timedelta(minutes=start_ago)).replace(second=0, microsecond=0)
    end = begin + timedelta(minutes=minutes)
    day = (local + timedelta(days=day_offset)).date()
    body = SessionCreate(clinician_id=clinician, date=day, start=begin.time(), end=end.time(), slot_minutes=10,
                         fee_cny="50.00", release_at=release or (utc_now() - timedelta(days=1)))
    with write_tx() as session:
        return scheduling.create_session(session, body, utc_now())


def book(pid: str, session_id: str, now: datetime, **extra: Any) -> dict[str, Any]:
    with write_tx() as session:
        doc, _ = scheduling.book(session, AppointmentCreate(patient_id=pid, session_id=session_id,
                                                            idempotency_key=uuid.uuid4().hex, **extra), now)
    return doc


# --- lookup and summary ------------------------------------------------------------------------

def test_lookup_by_phone_card_and_id_number_is_masked(db: Db) -> None:
    now = utc_now()
    pid = patient(now, 1)
    client, _ = staff_client("frontdesk")
    for by, q in (("phone", "13812340001"), ("card", "CARD0001"), ("id_number", "110101195001011234")):
        r = client.get("/staff/patients", params={"by": by, "q": q})
        assert r.status_code == 200, r.text[:600]
        assert f'data-patient="{pid}"' in r.text, by
        table = r.text[r.text.index("data-results"):]
        assert "13812340001" not in table
        assert "张秀英" not in table
        assert "110101195001011234" not in table
    none = client.get("/staff/patients", params={"by": "phone", "q": "13900009999"})
    assert none.status_code == 200
    assert "没有找到患者" in none.text
    refused(client.get("/staff/patients", params={"by": "id_number", "q": "12"}), 422, "request.invalid")

    summary = client.get(f"/staff/patients/{pid}")
    assert summary.status_code == 200
    assert "data-balance>100<" in summary.text
    assert "张秀英" not in summary.text
    assert client.get(f"/staff/patients/{uuid.uuid4()}").status_code == 404


# --- on-site registration and check-in ---------------------------------------------------------

def test_onsite_registration_with_priority_check_in(db: Db) -> None:
    now = utc_now()
    pid = patient(now, 2)
    ids = hospital()
    sess = today_session(ids["clinician"])
    client, _ = staff_client("frontdesk")
    form = client.get("/staff/register")
    assert form.status_code == 200
    assert sess["id"] in form.text
    key = _key(form.text)
    r = client.submit("/staff/register", {"patient": "CARD0002", "session_id": sess["id"], "idempotency_key": key,
                                          "check_in": "1", "priority": "1"})
    assert r.status_code == 200, r.text[:800]
    assert "data-registered" in r.text
    assert 'data-status="checked_in"' in r.text
    assert "data-priority" in r.text
    again = client.submit("/staff/register", {"patient": pid, "session_id": sess["id"], "idempotency_key": key})
    assert re.search(r'data-registered="([^"]+)"', again.text).group(1) == re.search(  # type: ignore[union-attr]
        r'data-registered="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
    refused(client.submit("/staff/register", {"patient": "13800000000", "session_id": sess["id"],
                                              "idempotency_key": uuid.uuid4().hex}), 404, "patients.not_found")
    unknown = {"patient": pid, "session_id": str(uuid.uuid4()), "idempotency_key": uuid.uuid4().hex}
    refused(client.submit("/staff/register", unknown), 404, "scheduling.session_not_found")
    refused(client.submit("/staff/register", {"patient": "", "session_id": sess["id"],
                                              "idempotency_key": uuid.uuid4().hex}), 422, "request.invalid")


def test_onsite_registration_full_session_409(db: Db) -> None:
    now = utc_now()
    ids = hospital()
    sess = today_session(ids["clinician"], start_ago=-5, minutes=20)  # two slots, starting in 5 minutes
    for n in (3, 4):
        book(patient(now, n), sess["id"], now, channel="onsite")
    client, _ = staff_client("frontdesk")
    refused(client.submit("/staff/register", {"patient": patient(now, 5), "session_id": sess["id"],
                                              "idempotency_key": uuid.uuid4().hex}), 409, "scheduling.session_full")


def test_check_in_by_patient_sequence_and_id_late_and_on_time(db: Db) -> None:
    now = utc_now()
    early, later = patient(now, 6), patient(now, 7)
    ids = hospital()
    sess = today_session(ids["clinician"], start_ago=30)
    late_doc = book(early, sess["id"], now - timedelta(minutes=40))  # its slot started 30 minutes ago
    on_time = book(later, sess["id"], now)
    client, _ = staff_client("frontdesk")
    found = client.get("/staff/checkin", params={"q": "13812340006"})
    assert found.status_code == 200
    assert f'data-appointment="{late_doc["id"]}"' in found.text
    by_seq = client.get("/staff/checkin", params={"session_id": sess["id"], "seq": str(on_time["seq"])})
    assert f'data-appointment="{on_time["id"]}"' in by_seq.text
    assert f'data-appointment="{late_doc["id"]}"' not in by_seq.text
    refused(client.get("/staff/checkin", params={"session_id": sess["id"], "seq": "99"}), 404,
            "scheduling.appointment_not_found")

    r = client.submit(f"/staff/checkin/{late_doc['id']}", {})
    assert r.status_code == 200
    assert "data-late" in r.text
    assert f'data-checked-in="{late_doc["id"]}"' in r.text
    hx = client.submit(f"/staff/checkin/{on_time['id']}", {"priority": "1"}, htmx=True)
    assert hx.status_code == 200, hx.text[:600]
    assert 'data-status="checked_in"' in hx.text
    assert "data-on-time" in hx.text
    assert "data-priority" in hx.text
    assert "<html" not in hx.text  # a row for the table

    third = book(patient(now, 8), sess["id"], now)
    with write_tx() as session:
        scheduling.cancel(session, third["id"], CancelIn(by="hospital"), utc_now())
    refused(client.submit(f"/staff/checkin/{third['id']}", {}), 409, "scheduling.illegal_transition")
    refused(client.submit(f"/staff/checkin/{uuid.uuid4()}", {}), 404, "scheduling.appointment_not_found")


# --- paper sheet entry -------------------------------------------------------------------------

def test_offline_entry_scored_and_duplicate_and_errors(db: Db) -> None:
    now = utc_now()
    pid = patient(now, 9)
    client, _ = staff_client("frontdesk")
    assert client.get("/staff/offline").status_code == 200
    at = now.astimezone(get_settings().tz).strftime("%Y-%m-%dT%H:%M")
    line = {"patient": pid, "behaviour": "selfservice.used", "option": "print_report", "sheet_ref": "S-1-3",
            "occurred_at": at}
    r = client.submit("/staff/offline", line)
    assert r.status_code == 200, r.text[:800]
    assert 'data-outcome data-duplicate="false"' in r.text
    after = balance(pid, utc_now())
    again = client.submit("/staff/offline", line)
    assert 'data-duplicate="true"' in again.text
    assert balance(pid, utc_now()) == after
    refused(client.submit("/staff/offline", {**line, "option": "print"}), 422, "request.invalid")
    refused(client.submit("/staff/offline", {**line, "behaviour": "account.registered"}), 422, "request.invalid")
    refused(client.submit("/staff/offline", {**line, "sheet_ref": ""}), 422, "request.invalid")
    refused(client.submit("/staff/offline", {**line, "option": "query"}), 409, "events.conflict")  # same line, other
    refused(client.submit("/staff/offline", {**line, "patient": "13800000001"}), 404, "patients.not_found")
    future = (now + timedelta(hours=2)).astimezone(get_settings().tz).strftime("%Y-%m-%dT%H:%M")
    refused(client.submit("/staff/offline", {**line, "sheet_ref": "S-2", "occurred_at": future}), 422,
            "request.invalid")
    lecture = client.submit("/staff/offline", {"patient": "CARD0009", "behaviour": "lecture.attended",
                                               "ref": "L-7", "sheet_ref": "S-3-1", "occurred_at": at})
    assert lecture.status_code == 200
    assert "data-outcome" in lecture.text


# --- coupons -----------------------------------------------------------------------------------

def test_verify_a_coupon_once(db: Db) -> None:
    now = utc_now()
    pid = patient(now, 10)
    add_reward(now, code="desk-ct", names={"zh": "CT检查券", "en": "CT coupon"}, points=10)
    code = redeem(pid, "desk-ct", now)["coupon_code"]
    client, _ = staff_client("frontdesk")
    look = client.get("/staff/coupons", params={"code": code.lower()})
    assert look.status_code == 200
    assert f'data-found="{code}" data-status="issued"' in look.text
    spaced = f"{code[:4]} {code[4:8]}-{code[8:]}"
    r = client.submit("/staff/coupons", {"code": spaced})
    assert r.status_code == 200
    assert f'data-verified="{code}"' in r.text
    assert "CT检查券" in r.text
    refused(client.submit("/staff/coupons", {"code": code}), 409, "rewards.coupon_used")
    refused(client.submit("/staff/coupons", {"code": "ZZZZZZZZZZZZ"}), 404, "rewards.coupon_not_found")
    refused(client.get("/staff/coupons", params={"code": "nope"}), 404, "rewards.coupon_not_found")


# --- follow-up booking -------------------------------------------------------------------------

def test_clinician_books_a_follow_up_in_own_session(db: Db) -> None:
    now = utc_now()
    pid = patient(now, 11)
    client, user = staff_client("clinician")
    mine = hospital(user["id"])
    other = hospital()
    open_own = today_session(mine["clinician"])
    unreleased = today_session(mine["clinician"], day_offset=7, release=utc_now() + timedelta(days=3))
    theirs = today_session(other["clinician"])
    form = client.get("/staff/followup-booking")
    assert form.status_code == 200
    assert open_own["id"] in form.text
    assert unreleased["id"] in form.text  # their own sessions not yet open to the public are listed too
    assert theirs["id"] not in form.text
    r = client.submit("/staff/followup-booking", {"patient": "13812340011", "session_id": unreleased["id"],
                                                  "idempotency_key": _key(form.text)})
    assert r.status_code == 200, r.text[:800]
    assert "data-booked" in r.text
    refused(client.submit("/staff/followup-booking", {"patient": pid, "session_id": theirs["id"],
                                                      "idempotency_key": uuid.uuid4().hex}), 403,
            "scheduling.not_own_session")
    refused(client.submit("/staff/followup-booking", {"patient": pid, "idempotency_key": uuid.uuid4().hex}), 422,
            "request.invalid")


# --- who may -----------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/staff/patients", "/staff/register", "/staff/checkin", "/staff/offline",
                                 "/staff/coupons", "/staff/followup-booking"])
def test_signed_out_staff_go_to_the_login(db: Db, url: str) -> None:
    r = PageClient(create_app()).get(url, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/staff/login")


def test_roles_csrf_and_patients(db: Db) -> None:
    now = utc_now()
    pid = patient(now, 12)
    moderator, _ = staff_client("moderator")
    for url in ("/staff/register", "/staff/checkin", "/staff/coupons", "/staff/followup-booking"):
        assert moderator.get(url).status_code == 403, url
    assert moderator.get("/staff/patients").status_code == 200  # moderators may look patients up
    summary = moderator.get(f"/staff/patients/{pid}")
    assert summary.status_code == 200
    assert "data-balance" not in summary.text
    frontdesk, _ = staff_client("frontdesk")
    assert frontdesk.get("/staff/followup-booking").status_code == 403  # clinicians only
    nurse, _ = staff_client("nurse")
    assert nurse.get("/staff/coupons").status_code == 403
    assert nurse.get("/staff/checkin").status_code == 200
    r = frontdesk.submit("/staff/coupons", {"code": "ABCD"}, csrf=False)
    assert r.status_code == 403
    r = frontdesk.submit("/staff/offline", {"patient": pid}, csrf=False)
    assert r.status_code == 403
    assert patient_client(pid).get("/staff/patients", follow_redirects=False).status_code in (303, 403)
