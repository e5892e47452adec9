"""The scheduling API over HTTP: the hospital's set-up, sessions open for booking,
and appointments through booking, cancellation, check-in and attendance.

The endpoints use the real clock, so every session here lies in the real future
(or, to check in, starts within the next hour and a bit)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from carepoints.kit.ids import is_id
from tests.helpers import error

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

CST = ZoneInfo("Asia/Shanghai")
UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"
ONLINE_ONLY: dict[str, Any] = {"pattern": ["online"], "referral_share": "0"}


# --- helpers ------------------------------------------------------------------------------

def ahead(api: Api, days: int) -> date:
    return (api.now() + timedelta(days=days)).date()


def hospital(api: Api, code: str = "H1") -> dict[str, str]:
    """An institution, a department and two clinicians: their ids."""
    inst = api.post("/institutions", {"code": code, "name_zh": "第一人民医院", "name_en": "First People's Hospital"})
    assert inst.status_code == 201, inst.text
    dept = api.post("/departments", {"institution_id": inst.json()["id"], "code": "CARD", "name_zh": "心内科"})
    assert dept.status_code == 201, dept.text
    ids = {"institution": inst.json()["id"], "department": dept.json()["id"]}
    for who in ("wang", "li"):
        doc = api.post("/clinicians", {"department_id": ids["department"], "code": who, "name": f"{who}医生",
                                       "title": "主任医师"})
        assert doc.status_code == 201, doc.text
        ids[who] = doc.json()["id"]
    return ids


def released(api: Api) -> str:
    return (api.now() - timedelta(days=1)).isoformat()


def new_session(api: Api, clinician: str, day: date, start: time = time(9), end: time = time(10),
                slot_minutes: int = 15, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"clinician_id": clinician, "date": day.isoformat(), "start": start.isoformat(),
                            "end": end.isoformat(), "slot_minutes": slot_minutes, "fee_cny": "50.00",
                            "release_at": released(api), **extra}
    r = api.post("/sessions", body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def booking(pid: str, session_id: str, key: str = "k1", **extra: Any) -> dict[str, Any]:
    return {"patient_id": pid, "session_id": session_id, "idempotency_key": key, **extra}


def book(api: Api, pid: str, session_id: str, key: str = "k1", **extra: Any) -> dict[str, Any]:
    r = api.post("/appointments", booking(pid, session_id, key, **extra))
    assert r.status_code == 201, r.text
    return dict(r.json())


def one_slot(api: Api, pid: str, session_id: str) -> str:
    """The slot of `pid`'s booking in the session (replayed by its key)."""
    r = api.post("/appointments", booking(pid, session_id))
    assert r.status_code == 200, r.text
    return str(r.json()["slot_id"])


def free(api: Api, session_id: str) -> dict[str, int]:
    r = api.get(f"/sessions/{session_id}")
    assert r.status_code == 200, r.text
    return dict(r.json()["free"])


def soon(api: Api) -> tuple[date, time, time]:
    """A session of an hour starting 10-75 minutes from now (local), inside the check-in
    window of its first slot; moved to the next midnight rather than cross one."""
    base = api.now().replace(second=0, microsecond=0) + timedelta(minutes=11)
    start = base + timedelta(minutes=-base.minute % 5)
    if (start + timedelta(minutes=60)).date() != start.date():
        start = datetime.combine(start.date() + timedelta(days=1), time(0), tzinfo=CST)
    end = start + timedelta(minutes=60)
    return start.date(), start.time().replace(tzinfo=None), end.time().replace(tzinfo=None)


def off_peak(local_iso: str) -> bool:
    """The default programme's off-peak hours (weekdays 10-11 and 14-15 local)."""
    at = datetime.fromisoformat(local_iso).astimezone(CST)
    clock = at.time().replace(tzinfo=None)
    return at.isoweekday() <= 5 and (time(10) <= clock < time(11) or time(14) <= clock < time(15))


# --- set-up ---------------------------------------------------------------------------------

def test_set_up_a_hospital_and_a_session_answers_201(api: Api) -> None:
    inst = api.post("/institutions", {"code": "H1", "name_zh": "第一人民医院", "name_en": "First Hospital"})
    assert inst.status_code == 201, inst.text
    assert is_id(inst.json()["id"])
    assert {k: inst.json()[k] for k in ("code", "name_zh", "name_en")} == {
        "code": "H1", "name_zh": "第一人民医院", "name_en": "First Hospital"}
    dept = api.post("/departments", {"institution_id": inst.json()["id"], "code": "CARD", "name_zh": "心内科"})
    assert dept.status_code == 201, dept.text
    assert (dept.json()["institution_id"], dept.json()["code"]) == (inst.json()["id"], "CARD")
    doc = api.post("/clinicians", {"department_id": dept.json()["id"], "code": "wang", "name": "王医生"})
    assert doc.status_code == 201, doc.text
    assert (doc.json()["department_id"], doc.json()["name"]) == (dept.json()["id"], "王医生")

    day = ahead(api, 5)
    r = api.post("/sessions", {"clinician_id": doc.json()["id"], "date": day.isoformat(), "start": "08:00",
                               "end": "10:30", "slot_minutes": 15, "capacity": 10, "fee_cny": "25.5",
                               "release_at": released(api)})
    assert r.status_code == 201, r.text
    sess = r.json()
    assert is_id(sess["id"])
    assert (sess["department"], sess["clinician"], sess["clinician_name"]) == (
        dept.json()["id"], doc.json()["id"], "王医生")
    assert (sess["date"], sess["start"], sess["end"]) == (
        day.isoformat(), f"{day.isoformat()}T08:00:00+08:00", f"{day.isoformat()}T10:30:00+08:00")
    assert (sess["capacity"], sess["slot_minutes"], sess["fee_cny"], sess["status"]) == (10, 15, "25.50", "open")
    # 20 % of 10 reserved for referrals, the rest alternating online / onsite
    assert sess["free"] == {"online": 4, "onsite": 4, "referral": 2}
    assert api.get(f"/sessions/{sess['id']}").json() == sess


def test_set_up_refusals(api: Api) -> None:
    ids = hospital(api)
    error(api.post("/institutions", {"code": "H1", "name_zh": "重复"}), 409, "scheduling.duplicate_code")
    error(api.post("/departments", {"institution_id": UNKNOWN, "code": "X", "name_zh": "科"}), 404,
          "scheduling.institution_not_found")
    error(api.post("/clinicians", {"department_id": UNKNOWN, "code": "x", "name": "某"}), 404,
          "scheduling.department_not_found")
    day = ahead(api, 5).isoformat()
    body = {"clinician_id": ids["wang"], "date": day, "start": "09:00", "end": "10:00", "slot_minutes": 15,
            "fee_cny": "10"}
    error(api.post("/sessions", {**body, "clinician_id": UNKNOWN}), 404, "scheduling.clinician_not_found")
    error(api.post("/sessions", {**body, "capacity": 5}), 422, "request.invalid")  # only 4 fit
    error(api.post("/sessions", {**body, "end": "08:00"}), 422, "request.invalid")
    error(api.post("/sessions", {**body, "pattern": ["referral"]}), 422, "request.invalid")


# --- sessions open for booking ------------------------------------------------------------------

def test_list_sessions_shows_released_open_sessions_with_filters(api: Api) -> None:
    a = hospital(api, "H1")
    b = hospital(api, "H2")
    d1, d2 = ahead(api, 3), ahead(api, 4)
    s1 = new_session(api, a["wang"], d1, capacity=4, **ONLINE_ONLY)
    s2 = new_session(api, b["li"], d2, slot_minutes=10)  # 6 slots: 1 referral, 3 online, 2 onsite
    later = new_session(api, a["li"], d1, release_at=(api.now() + timedelta(days=1)).isoformat())
    over = new_session(api, a["wang"], ahead(api, -1))

    items = api.get("/sessions").json()["items"]
    assert [s["id"] for s in items] == [s1["id"], s2["id"]]  # not `later` (not released), not `over`
    by_id = {s["id"]: s for s in items}
    assert by_id[s1["id"]]["free"] == {"online": 4, "onsite": 0, "referral": 0}
    assert by_id[s2["id"]]["free"] == {"online": 3, "onsite": 2, "referral": 1}
    assert by_id[s2["id"]]["department_code"] == "CARD"

    def ids(**params: str) -> list[str]:
        r = api.get("/sessions", params=params)
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["items"]]

    assert ids(date=d1.isoformat()) == [s1["id"]]
    assert ids(date=d2.isoformat()) == [s2["id"]]
    assert ids(date=ahead(api, 9).isoformat()) == []
    assert ids(department=b["department"]) == [s2["id"]]
    assert ids(clinician=a["wang"]) == [s1["id"]]
    assert ids(clinician=a["li"]) == []  # their only session is not released yet
    assert ids(department=a["department"], date=d2.isoformat()) == []
    assert ids(clinician="not-an-id") == []
    error(api.get("/sessions", params={"date": "tomorrow"}), 422, "request.invalid")

    # a booking takes one online slot off the count
    pid = api.enrol()
    book(api, pid, s1["id"])
    listed = {s["id"]: s for s in api.get("/sessions", params={"date": d1.isoformat()}).json()["items"]}
    assert listed[s1["id"]]["free"] == {"online": 3, "onsite": 0, "referral": 0}
    # the unreleased and the past session are still readable one by one
    assert api.get(f"/sessions/{later['id']}").json()["free"]["online"] == later["free"]["online"]
    assert api.get(f"/sessions/{over['id']}").json()["free"] == {"online": 0, "onsite": 0, "referral": 0}


def test_unknown_session_is_404(api: Api) -> None:
    for sid in (UNKNOWN, "not-an-id", "1"):
        error(api.get(f"/sessions/{sid}"), 404, "scheduling.session_not_found")


# --- booking ---------------------------------------------------------------------------------------

def test_book_answers_201_and_a_replay_answers_200_with_the_same_appointment(api: Api) -> None:
    ids = hospital(api)
    day = ahead(api, 4)
    sess = new_session(api, ids["wang"], day, **ONLINE_ONLY)
    other = new_session(api, ids["li"], day, **ONLINE_ONLY)
    pid = api.enrol()

    r = api.post("/appointments", booking(pid, sess["id"], "app-1"))
    assert r.status_code == 201, r.text
    doc = r.json()
    assert is_id(doc["id"])
    assert (doc["seq"], doc["status"], doc["patient_id"], doc["session_id"], doc["channel"]) == (
        1, "booked", pid, sess["id"], "online")
    assert (doc["start"], doc["end"]) == (f"{day.isoformat()}T09:00:00+08:00", f"{day.isoformat()}T09:15:00+08:00")

    again = api.post("/appointments", booking(pid, sess["id"], "app-1"))
    assert again.status_code == 200, again.text
    assert again.json() == doc
    assert api.get(f"/appointments/{doc['id']}").json() == doc
    assert free(api, sess["id"]) == {"online": 3, "onsite": 0, "referral": 0}  # one slot taken, not two

    error(api.post("/appointments", booking(pid, other["id"], "app-1")), 409, "scheduling.idempotency_conflict")
    assert free(api, other["id"])["online"] == 4

    second = book(api, api.enrol(), sess["id"], "app-1")  # the key is the patient's own
    assert second["seq"] == 2
    assert second["id"] != doc["id"]


def test_booking_refusals(api: Api) -> None:
    ids = hospital(api)
    day = ahead(api, 4)
    one = new_session(api, ids["wang"], day, end=time(9, 15), **ONLINE_ONLY)  # a single slot
    closed = new_session(api, ids["li"], ahead(api, 9), release_at=(api.now() + timedelta(days=2)).isoformat())
    pid, other = api.enrol(), api.enrol()

    error(api.post("/appointments", booking(pid, UNKNOWN)), 404, "scheduling.session_not_found")
    error(api.post("/appointments", booking(pid, "not-an-id", "k2")), 404, "scheduling.session_not_found")
    error(api.post("/appointments", booking(UNKNOWN, one["id"])), 404, "patients.not_found")

    book(api, pid, one["id"])
    full = error(api.post("/appointments", booking(other, one["id"])), 409, "scheduling.session_full")
    assert "full" in full["detail"] or "约满" in full["detail"]

    not_open = error(api.post("/appointments", booking(other, closed["id"], "k3")), 409, "scheduling.not_open")
    assert closed["release_at"] in not_open["detail"]

    error(api.post("/appointments", booking(other, one["id"], "k4", slot_id=UNKNOWN)), 404,
          "scheduling.slot_not_found")
    error(api.post("/appointments", booking(other, one["id"], "k5", slot_id=one_slot(api, pid, one["id"]))), 409,
          "scheduling.slot_taken")


def test_malformed_bookings_are_422(api: Api) -> None:
    ids = hospital(api)
    sess = new_session(api, ids["wang"], ahead(api, 4))
    pid = api.enrol()
    good = booking(pid, sess["id"])
    bad: list[dict[str, Any]] = [
        {k: v for k, v in good.items() if k != "idempotency_key"},
        {k: v for k, v in good.items() if k != "session_id"},
        {k: v for k, v in good.items() if k != "patient_id"},  # no patient at all
        {**good, "patient": {"id": pid}},  # both patient_id and patient
        {**good, "idempotency_key": ""},
        {**good, "channel": "phone"},
        {**good, "channel": "referral"},  # a referral needs referral_id
        {**good, "surprise": 1},
        {k: v for k, v in {**good, "patient": {"system": "urn:his:mrn"}}.items() if k != "patient_id"},
    ]
    for body in bad:
        out = error(api.post("/appointments", body), 422, "request.invalid")
        assert out["fields"], body
    error(api.post("/appointments", b"{not json"), 422, "request.invalid")
    assert free(api, sess["id"]) == sess["free"]  # nothing was booked


def test_referral_booking_takes_a_referral_slot(api: Api) -> None:
    ids = hospital(api)
    sess = new_session(api, ids["wang"], ahead(api, 4), slot_minutes=10, referral_share="0.5",
                       pattern=["online"])  # 6 slots: seqs 2, 4, 6 are for referrals
    assert sess["free"] == {"online": 3, "onsite": 0, "referral": 3}
    pid = api.enrol()
    doc = book(api, pid, sess["id"], channel="referral", referral_id="REF-2026-001")
    assert (doc["channel"], doc["seq"]) == ("referral", 2)
    assert free(api, sess["id"]) == {"online": 3, "onsite": 0, "referral": 2}
    online = [book(api, api.enrol(), sess["id"])["seq"] for _ in range(3)]
    assert online == [1, 3, 5]  # online bookings stay out of the referral pool until its release
    error(api.post("/appointments", booking(api.enrol(), sess["id"])), 409, "scheduling.session_full")
    assert free(api, sess["id"]) == {"online": 0, "onsite": 0, "referral": 2}


def test_book_by_external_id(api: Api) -> None:
    ids = hospital(api)
    sess = new_session(api, ids["wang"], ahead(api, 4), **ONLINE_ONLY)
    pid = api.enrol(external_ids=[{"system": "urn:his:mrn", "value": "MRN-42"}])
    body = {"patient": {"system": "urn:his:mrn", "value": "MRN-42"}, "session_id": sess["id"],
            "idempotency_key": "his-1"}
    r = api.post("/appointments", body)
    assert r.status_code == 201, r.text
    assert r.json()["patient_id"] == pid
    again = api.post("/appointments", booking(pid, sess["id"], "his-1"))  # the same patient by id: a replay
    assert again.status_code == 200, again.text
    assert again.json()["id"] == r.json()["id"]
    body["patient"] = {"system": "urn:his:mrn", "value": "MRN-43"}
    error(api.post("/appointments", body), 404, "patients.not_found")


# --- cancellation -------------------------------------------------------------------------------

def test_cancel_frees_the_slot_for_another_patient(api: Api) -> None:
    ids = hospital(api)
    sess = new_session(api, ids["wang"], ahead(api, 4), end=time(9, 15), **ONLINE_ONLY)  # a single slot
    pid, other = api.enrol(), api.enrol()
    doc = book(api, pid, sess["id"])
    assert free(api, sess["id"])["online"] == 0
    error(api.post("/appointments", booking(other, sess["id"])), 409, "scheduling.session_full")

    r = api.post(f"/appointments/{doc['id']}/cancel", {"by": "patient", "reason": "出差"})
    assert r.status_code == 200, r.text
    cancelled = r.json()
    assert (cancelled["id"], cancelled["status"], cancelled["cancelled_by"]) == (doc["id"], "cancelled", "patient")
    assert cancelled["cancelled_at"] is not None
    assert free(api, sess["id"])["online"] == 1
    assert api.balance(pid) == 120  # welcome 100 + cancelled more than 24 h ahead 20

    again = api.post(f"/appointments/{doc['id']}/cancel")
    assert again.status_code == 200, again.text
    assert again.json() == cancelled
    assert api.balance(pid) == 120  # once

    taken = book(api, other, sess["id"])
    assert (taken["seq"], taken["slot_id"]) == (doc["seq"], doc["slot_id"])
    assert free(api, sess["id"])["online"] == 0
    assert api.get(f"/appointments/{doc['id']}").json()["status"] == "cancelled"
    assert api.balance(other) == 100
    error(api.post(f"/appointments/{UNKNOWN}/cancel"), 404, "scheduling.appointment_not_found")


def test_session_cancelled_by_the_hospital(api: Api) -> None:
    """停诊: every booking is cancelled by the hospital (no points either way), the session
    leaves the list and takes no more bookings."""
    ids = hospital(api)
    day = ahead(api, 4)
    sess = new_session(api, ids["wang"], day, **ONLINE_ONLY)
    stays = new_session(api, ids["li"], day, **ONLINE_ONLY)
    a, b = api.enrol(), api.enrol()
    booked = [book(api, a, sess["id"]), book(api, b, sess["id"])]
    error(api.post(f"/sessions/{sess['id']}/cancel", {}), 422, "request.invalid")  # a reason is required
    error(api.post(f"/sessions/{sess['id']}/cancel", {"reason": "停诊"}, key=api.make_key("integration")), 403,
          "auth.forbidden")

    r = api.post(f"/sessions/{sess['id']}/cancel", {"reason": "医生临时停诊"})
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["status"]) == (sess["id"], "cancelled")
    for appt in booked:
        doc = api.get(f"/appointments/{appt['id']}").json()
        assert (doc["status"], doc["cancelled_by"]) == ("cancelled", "hospital")
    assert (api.balance(a), api.balance(b)) == (100, 100)
    assert [s["id"] for s in api.get("/sessions").json()["items"]] == [stays["id"]]
    assert api.get(f"/sessions/{sess['id']}").json()["status"] == "cancelled"
    error(api.post("/appointments", booking(api.enrol(), sess["id"])), 409, "scheduling.session_cancelled")
    again = api.post(f"/sessions/{sess['id']}/cancel", {"reason": "医生临时停诊"})
    assert (again.status_code, again.json()["status"]) == (200, "cancelled")
    error(api.post(f"/sessions/{UNKNOWN}/cancel", {"reason": "停诊"}), 404, "scheduling.session_not_found")


# --- the day of the visit: check-in and attendance ------------------------------------------------

def test_check_in_then_attend(api: Api) -> None:
    ids = hospital(api)
    day, start, end = soon(api)
    sess = new_session(api, ids["wang"], day, start, end, slot_minutes=10, **ONLINE_ONLY)
    assert sess["capacity"] == 6
    pid = api.enrol()
    doc = book(api, pid, sess["id"])
    assert (doc["seq"], doc["start"]) == (1, sess["start"])

    r = api.post(f"/appointments/{doc['id']}/check-in", {"channel": "kiosk"})
    assert r.status_code == 200, r.text
    checked = r.json()
    assert (checked["id"], checked["status"], checked["late"], checked["priority"]) == (
        doc["id"], "checked_in", False, False)
    assert checked["checked_in_at"] is not None
    again = api.post(f"/appointments/{doc['id']}/check-in")
    assert (again.status_code, again.json()) == (200, checked)

    error(api.post(f"/appointments/{doc['id']}/cancel", {"by": "patient"}), 409, "scheduling.illegal_transition")
    assert api.get(f"/appointments/{doc['id']}").json()["status"] == "checked_in"

    r = api.post(f"/appointments/{doc['id']}/attend")
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["status"]) == (doc["id"], "attended")
    assert api.post(f"/appointments/{doc['id']}/attend").json()["status"] == "attended"
    error(api.post(f"/appointments/{doc['id']}/check-in"), 409, "scheduling.illegal_transition")
    error(api.post(f"/appointments/{doc['id']}/cancel", {"by": "hospital"}), 409, "scheduling.illegal_transition")

    on_time = 10 * (2 if off_peak(doc["start"]) else 1)  # checked in before the slot; doubled off-peak
    view = api.points(pid)
    assert view["balance"] == 100 + on_time
    rules = sorted(e["rule"] for e in api.entries(pid))
    assert rules == ["on_time", "welcome"]
    assert free(api, sess["id"])["online"] == 5  # an attended visit keeps its slot


def test_check_in_of_the_elderly_is_priority_and_cancel_closes_before_the_slot(api: Api) -> None:
    ids = hospital(api)
    day, start, end = soon(api)
    sess = new_session(api, ids["wang"], day, start, end, slot_minutes=10, **ONLINE_ONLY)
    elder = api.enrol(birth_date="1940-03-01")
    doc = book(api, elder, sess["id"])
    late = error(api.post(f"/appointments/{doc['id']}/cancel", {"by": "patient"}), 409,
                 "scheduling.cancel_too_late")
    assert "2" in late["detail"]
    r = api.post(f"/appointments/{doc['id']}/check-in")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["priority"]) == ("checked_in", True)
    by_hospital = api.post(f"/appointments/{doc['id']}/cancel", {"by": "hospital"})  # 停诊: always possible
    assert by_hospital.status_code == 200, by_hospital.text
    assert (by_hospital.json()["status"], by_hospital.json()["cancelled_by"]) == ("cancelled", "hospital")
    assert free(api, sess["id"])["online"] == 6
    assert api.balance(elder) == 100  # no reward for a cancellation by the hospital


def test_check_in_days_ahead_is_not_open(api: Api) -> None:
    ids = hospital(api)
    sess = new_session(api, ids["wang"], ahead(api, 3), **ONLINE_ONLY)
    doc = book(api, api.enrol(), sess["id"])
    error(api.post(f"/appointments/{doc['id']}/check-in"), 409, "scheduling.check_in_not_open")
    assert api.get(f"/appointments/{doc['id']}").json()["status"] == "booked"


# --- who may do what ----------------------------------------------------------------------------

def test_an_integration_key_books_but_cannot_set_up_sessions(api: Api) -> None:
    ids = hospital(api)
    day = ahead(api, 4)
    sess = new_session(api, ids["wang"], day, **ONLINE_ONLY)
    key = api.make_key("integration")
    pid = api.enrol()

    r = api.post("/appointments", booking(pid, sess["id"]), key=key)
    assert r.status_code == 201, r.text
    assert api.get("/sessions", key=key).status_code == 200
    assert api.get(f"/appointments/{r.json()['id']}", key=key).json()["status"] == "booked"

    body = {"clinician_id": ids["wang"], "date": day.isoformat(), "start": "14:00", "end": "15:00",
            "slot_minutes": 15, "fee_cny": "10", "release_at": released(api)}
    error(api.post("/sessions", body, key=key), 403, "auth.forbidden")
    error(api.post("/institutions", {"code": "H9", "name_zh": "某医院"}, key=key), 403, "auth.forbidden")
    error(api.post("/clinicians", {"department_id": ids["department"], "code": "z", "name": "某"}, key=key), 403,
          "auth.forbidden")
    assert [s["id"] for s in api.get("/sessions").json()["items"]] == [sess["id"]]  # nothing was created

    for method, path, body_ in (("GET", "/sessions", None), ("GET", f"/sessions/{sess['id']}", None),
                                ("POST", "/appointments", booking(pid, sess["id"], "k9")),
                                ("POST", "/sessions", body), ("POST", f"/appointments/{r.json()['id']}/cancel", {})):
        error(api.request(method, path, body_, auth=False), 401, "auth.unauthenticated")
        error(api.request(method, path, body_, key="not-a-key"), 401, "auth.unauthenticated")
    assert api.get(f"/appointments/{r.json()['id']}").json()["status"] == "booked"
    assert free(api, sess["id"])["online"] == 3


def test_checkup_packages_over_http(api: Api) -> None:
    r = api.post("/checkup-packages", {"code": "elder", "name_zh": "老年人体检", "items": ["血常规", "心电图"],
                                       "price_cny": "0", "daily_capacity": 1})
    assert r.status_code == 201, r.text
    day = ahead(api, 2).isoformat()
    listed = api.get(f"/checkup-packages?date={day}").json()["items"]
    assert [(p["code"], p["remaining"]) for p in listed] == [("elder", 1)]
    first, second = api.enrol(), api.enrol()
    booked = api.post("/checkup-bookings", {"patient_id": first, "package": "elder", "date": day,
                                            "idempotency_key": "c1"})
    assert booked.status_code == 201, booked.text
    assert api.post("/checkup-bookings", {"patient_id": first, "package": "elder", "date": day,
                                          "idempotency_key": "c1"}).status_code == 200
    error(api.post("/checkup-bookings", {"patient_id": second, "package": "elder", "date": day,
                                         "idempotency_key": "c2"}), 409, "scheduling.checkup_full")
    error(api.post(f"/checkup-bookings/{booked.json()['id']}/attend"), 409, "scheduling.checkup_not_today")
    cancelled = api.post(f"/checkup-bookings/{booked.json()['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    assert api.get(f"/checkup-packages?date={day}").json()["items"][0]["remaining"] == 1
    error(api.post("/checkup-bookings", {"patient_id": second, "package": "nope", "date": day,
                                         "idempotency_key": "c3"}), 404, "scheduling.package_not_found")
    error(api.post("/checkup-bookings", {"patient_id": second, "package": "elder"}), 422, "request.invalid")


def test_a_caregiver_books_for_a_patient_with_their_book_authorisation(api: Api) -> None:
    from sqlalchemy import select

    from carepoints.audit.models import AuditEntry
    from carepoints.kit.db import read_tx

    ids = hospital(api)
    sess = new_session(api, ids["wang"], ahead(api, 4), **ONLINE_ONLY)
    pid, carer = api.enrol(), api.enrol()
    error(api.post("/appointments", booking(pid, sess["id"], "p-1", proxy_patient_id=carer)), 403,
          "patients.proxy_not_authorised")
    granted = api.post(f"/patients/{pid}/proxies", {"proxy": {"patient_id": carer}, "scopes": ["book"]})
    assert granted.status_code == 201, granted.text
    doc = book(api, pid, sess["id"], "p-2", proxy_patient_id=carer)
    assert doc["patient_id"] == pid
    with read_tx() as session:
        t = AuditEntry.__table__
        rows = session.connection().execute(select(t.c.action, t.c.on_behalf_of, t.c.details).where(
            t.c.action == "scheduling:appointment:book")).all()
    assert [(r[0], r[1], r[2]["proxy"]) for r in rows] == [("scheduling:appointment:book", pid, carer)]
    error(api.post("/appointments", booking(pid, sess["id"], "p-3", service_window=True)), 403,
          "patients.proxy_not_authorised")
    error(api.post("/appointments", booking(pid, sess["id"], "p-4", service_window=True, proxy_patient_id=carer)),
          422, "request.invalid")
