"""The patient's booking pages over real HTTP (SQLite and PostgreSQL): department → clinician →
session → book with the real sessions' data, a double submit booking once, a full session's
409 in plain words and the waitlist, my appointments and cancel with its cut-off, waitlist
offers confirmed and declined; another patient's ids 404, posts without CSRF 403, signed-out
visitors sent to the login."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from carepoints.app import create_app
from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.scheduling import service as sch
from carepoints.scheduling import waitlist
from carepoints.scheduling.schemas import (
    AppointmentCreate,
    CancelIn,
    ClinicianCreate,
    DepartmentCreate,
    InstitutionCreate,
    SessionCreate,
    WaitlistJoin,
)
from tests.conftest import Db
from tests.helpers import enrol
from tests.pages.helpers import patient_client

_n = iter(range(10**6))


class Hospital:
    """An institution with one department and two clinicians, sessions created released."""

    def __init__(self) -> None:
        now = utc_now()
        i = next(_n)
        with write_tx() as s:
            inst = sch.create_institution(s, InstitutionCreate(code=f"h{i}", name_zh="第一人民医院",
                                                               name_en="First People's Hospital"), now)
            self.department = sch.create_department(s, DepartmentCreate(
                institution_id=inst["id"], code=f"card{i}", name_zh="心内科", name_en="Cardiology"), now)["id"]
            self.clinicians = [sch.create_clinician(s, ClinicianCreate(
                department_id=self.department, code=f"d{i}-{k}", name=f"王医生{k}", title="主任医师"), now)["id"]
                for k in range(2)]

    def session(self, day: date, start: time, end: time, minutes: int = 30, clinician: int = 0,
                **extra: Any) -> dict[str, Any]:
        extra.setdefault("release_at", utc_now() - timedelta(days=1))
        extra.setdefault("referral_share", Decimal(0))
        extra.setdefault("pattern", ["online"])
        with write_tx() as s:
            return sch.create_session(s, SessionCreate(
                clinician_id=self.clinicians[clinician], date=day, start=start, end=end, slot_minutes=minutes,
                fee_cny=Decimal("25"), level="expert", **extra), utc_now())

    def ahead(self, days: int, hour: int = 9, slots: int = 2, clinician: int = 0) -> dict[str, Any]:
        day = (utc_now().astimezone(get_settings().tz) + timedelta(days=days)).date()
        return self.session(day, time(hour), time(hour + 1), minutes=60 // slots, clinician=clinician)

    def soon(self) -> dict[str, Any]:
        """A session starting within the cancellation cut-off (in about an hour)."""
        local = utc_now().astimezone(get_settings().tz) + timedelta(minutes=60)
        start = local.replace(minute=(local.minute // 10) * 10, second=0, microsecond=0)
        end = start + timedelta(minutes=20)
        if end.date() != start.date():  # near midnight: the next morning's session at 00:30 (still within 2 h)
            start = (start + timedelta(days=1)).replace(hour=0, minute=30)
            end = start + timedelta(minutes=20)
        return self.session(start.date(), start.time(), end.time(), minutes=10)


def book(pid: str, session_id: str) -> dict[str, Any]:
    with write_tx() as s:
        doc, _ = sch.book(s, AppointmentCreate(patient_id=pid, session_id=session_id,
                                               idempotency_key=f"t{next(_n)}"), utc_now())
    return doc


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text[:800]
    assert f'data-error="{code}"' in r.text, r.text[:800]


def key_of(html: str) -> str:
    m = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert m, html[:800]
    return m.group(1)


def live_count(pid: str) -> int:
    from carepoints.scheduling import privacy

    with read_tx() as s:
        return sum(1 for a in privacy.appointments(s, pid) if a["status"] == "booked")


def test_browse_and_book_once(db: Db) -> None:
    h = Hospital()
    sess = h.ahead(5, slots=2)
    pid = enrol(utc_now())
    client = patient_client(pid)

    r = client.get("/me/book")
    assert r.status_code == 200, r.text[:800]
    assert "心内科" in r.text
    assert "第一人民医院" in r.text
    assert f"/me/book/departments/{h.department}" in r.text

    r = client.get(f"/me/book/departments/{h.department}")
    assert r.status_code == 200
    assert "王医生0" in r.text
    assert "主任医师" in r.text
    assert f"/me/book/clinicians/{h.clinicians[0]}" in r.text
    assert "剩2个" in r.text

    r = client.get(f"/me/book/clinicians/{h.clinicians[0]}")
    assert r.status_code == 200
    assert "专家号" in r.text
    assert "¥25" in r.text
    assert "09:00–10:00" in r.text
    assert f'data-session="{sess["id"]}" data-free="2"' in r.text
    assert "<details" in r.text
    assert "<svg" in r.text
    assert "剩余2个号" in r.text
    day = datetime.fromisoformat(sess["date"]).date()
    assert f"{day.month}月{day.day}日 周" in r.text  # the day in plain words

    r = client.get(f"/me/book/sessions/{sess['id']}")
    assert r.status_code == 200
    assert "就诊前2小时内不能在线取消,请联系医院" in r.text
    assert "可得30积分" in r.text  # the default programme's book_ahead, 5 days ahead
    key = key_of(r.text)

    first = client.submit(f"/me/book/sessions/{sess['id']}", {"idempotency_key": key})
    assert first.status_code == 303, first.text[:800]
    location = first.headers["location"]
    assert re.match(r"^/me/appointments/[0-9a-f-]{36}\?done=booked$", location)
    again = client.submit(f"/me/book/sessions/{sess['id']}", {"idempotency_key": key})  # a double submit
    assert again.status_code == 303
    assert again.headers["location"] == location
    assert live_count(pid) == 1

    r = client.get(location)
    assert r.status_code == 200
    assert "预约成功" in r.text
    assert "已预约" in r.text
    assert 'data-seq>1<' in r.text
    assert "data-cancel" in r.text  # 5 days ahead: cancellable

    r = client.get("/me/appointments")
    assert r.status_code == 200
    assert location.split("?")[0].rsplit("/", 1)[1] in r.text
    assert "王医生0" in r.text

    # English
    r = patient_client(pid, lang="en").get(f"/me/book/clinicians/{h.clinicians[0]}")
    assert "Expert" in r.text
    assert "You are booked" in r.text
    assert "1 place left" in r.text


def test_a_few_days_ahead_says_booking_ahead_is_too_close(db: Db) -> None:
    h = Hospital()
    sess = h.ahead(1)
    r = patient_client(enrol(utc_now())).get(f"/me/book/sessions/{sess['id']}")
    assert r.status_code == 200
    assert "本次不够提前" in r.text


def test_full_session_409_in_plain_words_then_the_waitlist(db: Db) -> None:
    h = Hospital()
    sess = h.ahead(4, slots=1)
    other, pid = enrol(utc_now()), enrol(utc_now())
    client = patient_client(pid)
    key = key_of(client.get(f"/me/book/sessions/{sess['id']}").text)
    book(other, sess["id"])  # taken meanwhile

    r = client.submit(f"/me/book/sessions/{sess['id']}", {"idempotency_key": key})
    refused(r, 409, "scheduling.session_full")
    assert "该时段号源已约满" in r.text
    assert "排队候补" in r.text
    assert 'action="/me/book/sessions/' + sess["id"] + '/waitlist"' in r.text
    assert live_count(pid) == 0

    page = client.get(f"/me/book/clinicians/{h.clinicians[0]}")
    assert "已约满" in page.text
    assert ">候补<" in page.text.replace("\n", "").replace("  ", "")

    joined = client.submit(f"/me/book/sessions/{sess['id']}/waitlist", {"idempotency_key": key_of(r.text)})
    assert joined.status_code == 303, joined.text[:800]
    entry_url = joined.headers["location"]
    assert entry_url.startswith("/me/waitlist/")
    assert entry_url.endswith("?done=joined")
    r = client.get(entry_url)
    assert r.status_code == 200
    assert "候补排队中" in r.text
    assert "data-position>1<" in r.text
    # joining again from another page is refused with its code
    again = client.submit(f"/me/book/sessions/{sess['id']}/waitlist", {"idempotency_key": "another-key"})
    refused(again, 409, "scheduling.already_waiting")

    r = client.get("/me/waitlist")
    assert r.status_code == 200
    assert entry_url.split("?")[0] in r.text

    left = client.submit(entry_url.split("?")[0] + "/decline", {})
    assert left.status_code == 303
    assert "已放弃候补" in client.get(left.headers["location"]).text


def test_daily_limit_is_re_rendered(db: Db) -> None:
    h = Hospital()
    a = h.ahead(6, hour=8, clinician=0)
    b = h.ahead(6, hour=14, clinician=0)
    pid = enrol(utc_now())
    book(pid, a["id"])
    client = patient_client(pid)
    r = client.submit(f"/me/book/sessions/{b['id']}", {"idempotency_key": "k-limit"})
    refused(r, 409, "scheduling.clinician_limit")
    assert "我的预约" in r.text  # what to do next, in plain words


def test_cancel_before_and_after_the_cut_off(db: Db) -> None:
    h = Hospital()
    far, near = h.ahead(3, clinician=0), h.soon()
    pid = enrol(utc_now())
    a, b = book(pid, far["id"]), book(pid, near["id"])
    client = patient_client(pid)

    r = client.submit(f"/me/appointments/{a['id']}/cancel", {})
    assert r.status_code == 303
    assert r.headers["location"] == f"/me/appointments/{a['id']}?done=cancelled"
    page = client.get(r.headers["location"])
    assert "已取消" in page.text
    assert "data-cancel" not in page.text

    page = client.get(f"/me/appointments/{b['id']}")
    assert page.status_code == 200
    assert "data-cancel" not in page.text
    assert "就诊前2小时内不能在线取消,请联系医院" in page.text
    r = client.submit(f"/me/appointments/{b['id']}/cancel", {})  # posted anyway: refused by the service
    refused(r, 409, "scheduling.cancel_too_late")
    assert "请打电话给医院" in r.text
    with read_tx() as s:
        assert sch.read_appointment(s, b["id"])["status"] == "booked"

    r = client.get("/me/appointments")
    assert "待就诊" in r.text
    assert "已结束或已取消" in r.text
    up, past = r.text.split("已结束或已取消", 1)
    assert b["id"] in up
    assert a["id"] in past


def test_waitlist_offer_confirm(db: Db) -> None:
    h = Hospital()
    near = h.soon()  # within waitlist_confirm_hours: a freed slot is offered, to confirm
    holders = [enrol(utc_now()) for _ in range(2)]
    taken = [book(p, near["id"]) for p in holders]
    pid = enrol(utc_now())
    with write_tx() as s:
        entry, _ = waitlist.join(s, near["id"], WaitlistJoin(patient_id=pid, idempotency_key="w1"), utc_now())
        sch.cancel(s, taken[0]["id"], CancelIn(by="hospital"), utc_now())
    client = patient_client(pid)
    r = client.get(f"/me/waitlist/{entry['id']}")
    assert r.status_code == 200
    assert "有号了" in r.text
    assert "data-confirm" in r.text
    assert "data-deadline" in r.text
    r = client.submit(f"/me/waitlist/{entry['id']}/confirm", {})
    assert r.status_code == 303, r.text[:800]
    assert r.headers["location"].startswith("/me/appointments/")
    page = client.get(r.headers["location"])
    assert "已确认" in page.text
    assert "已预约" in page.text
    # confirming again is the same answer; declining a booked entry is refused with its code
    refused(client.submit(f"/me/waitlist/{entry['id']}/decline", {}), 409, "scheduling.waitlist_state")


def test_another_patients_records_are_404(db: Db) -> None:
    h = Hospital()
    full = h.ahead(3, slots=1)
    owner, intruder = enrol(utc_now()), enrol(utc_now())
    appt = book(owner, full["id"])
    other = enrol(utc_now())
    with write_tx() as s:
        entry, _ = waitlist.join(s, full["id"], WaitlistJoin(patient_id=other, idempotency_key="w"), utc_now())
    client = patient_client(intruder)
    for url in (f"/me/appointments/{appt['id']}", f"/me/waitlist/{entry['id']}"):
        assert client.get(url).status_code == 404, url
    r = client.submit(f"/me/appointments/{appt['id']}/cancel", {})
    assert r.status_code == 404
    for action in ("confirm", "decline"):
        assert client.submit(f"/me/waitlist/{entry['id']}/{action}", {}).status_code == 404
    assert client.get("/me/appointments/not-an-id").status_code == 404
    assert client.get("/me/book/sessions/0190a5f0-0000-7000-8000-000000000000").status_code == 404
    assert client.get("/me/book/clinicians/0190a5f0-0000-7000-8000-000000000000").status_code == 404
    assert client.get("/me/book/departments/0190a5f0-0000-7000-8000-000000000000").status_code == 404
    with read_tx() as s:
        assert sch.read_appointment(s, appt["id"])["status"] == "booked"
        assert waitlist.read(s, entry["id"])["status"] == "waiting"
    assert appt["id"] not in client.get("/me/appointments").text


def test_posts_need_csrf_and_sign_in(db: Db) -> None:
    h = Hospital()
    sess = h.ahead(3)
    pid = enrol(utc_now())
    appt = book(pid, sess["id"])
    client = patient_client(pid)
    r = client.submit(f"/me/book/sessions/{sess['id']}", {"idempotency_key": "x"}, csrf=False)
    refused(r, 403, "pages.csrf_failed")
    refused(client.submit(f"/me/appointments/{appt['id']}/cancel", {}, csrf=False), 403, "pages.csrf_failed")
    refused(client.submit(f"/me/book/sessions/{sess['id']}/waitlist", {"idempotency_key": "y"}, csrf=False),
            403, "pages.csrf_failed")
    assert live_count(pid) == 1

    anon = TestClient(create_app())
    for url in ("/me/book", f"/me/book/clinicians/{h.clinicians[0]}", "/me/appointments",
                f"/me/appointments/{appt['id']}", "/me/waitlist"):
        r = anon.get(url, follow_redirects=False)
        assert r.status_code == 303, url
        assert r.headers["location"].startswith("/login?next=/me/"), url


def test_elderly_mode_pages_render(db: Db) -> None:
    h = Hospital()
    sess = h.ahead(2)
    pid = enrol(utc_now())
    appt = book(pid, sess["id"])
    client = patient_client(pid, elderly=True)
    for url in ("/me/book", f"/me/book/departments/{h.department}", f"/me/book/clinicians/{h.clinicians[0]}",
                f"/me/book/sessions/{sess['id']}", "/me/appointments", f"/me/appointments/{appt['id']}",
                "/me/waitlist"):
        r = client.get(url)
        assert r.status_code == 200, url
        assert 'class="elderly"' in r.text, url


def test_a_caregiver_books_for_the_patient_they_act_for(db: Db) -> None:
    from carepoints.patients import proxies

    h = Hospital()
    sess = h.ahead(4)
    me, mother = enrol(utc_now()), enrol(utc_now())
    with write_tx() as s:
        proxies.authorise(s, mother, proxies.Proxy(me), ["view", "book"], utc_now())
    client = patient_client(me, acting_for=mother)
    r = client.submit(f"/me/book/sessions/{sess['id']}", {"idempotency_key": "care-1"})
    assert r.status_code == 303, r.text[:800]
    appt_id = r.headers["location"].split("/")[-1].split("?")[0]
    with read_tx() as s:
        assert sch.read_appointment(s, appt_id)["patient_id"] == mother
    assert live_count(mother) == 1
    assert live_count(me) == 0
    assert client.get(r.headers["location"]).status_code == 200
    # signed in for oneself again, the mother's appointment is not one's own page
    assert patient_client(me).get(f"/me/appointments/{appt_id}").status_code == 404


def test_a_cancelled_session_cannot_be_booked(db: Db) -> None:
    from carepoints.scheduling.schemas import SessionCancel

    h = Hospital()
    sess = h.ahead(3)
    with write_tx() as s:
        sch.cancel_session(s, sess["id"], SessionCancel(reason="doctor ill"), utc_now())
    client = patient_client(enrol(utc_now()))
    r = client.get(f"/me/book/sessions/{sess['id']}")
    assert r.status_code == 200
    assert "data-closed" in r.text
    assert "data-book" not in r.text
    refused(client.submit(f"/me/book/sessions/{sess['id']}", {"idempotency_key": "k"}), 409,
            "scheduling.session_cancelled")


def test_checked_in_today_stays_upcoming_after_the_session_ends() -> None:
    """A patient still waiting to be called after the session's end keeps the appointment on top."""
    from carepoints.pages.patient.booking import _ahead

    tz = get_settings().tz
    now = datetime.now(tz).replace(hour=12, minute=0, second=0, microsecond=0)
    ended = {"start": now.replace(hour=8).isoformat(), "end": now.replace(hour=11).isoformat()}
    assert _ahead({**ended, "status": "checked_in"}, now)
    assert not _ahead({**ended, "status": "booked"}, now)
    assert not _ahead({**ended, "status": "attended"}, now)
    yesterday = {k: (datetime.fromisoformat(v) - timedelta(days=1)).isoformat() for k, v in ended.items()}
    assert not _ahead({**yesterday, "status": "checked_in"}, now)
    later = {"start": now.replace(hour=14).isoformat(), "end": now.replace(hour=15).isoformat(), "status": "booked"}
    assert _ahead(later, now)
