"""The security sweep over every page route the app has (found from the app, so a new page joins
by itself): signed out → the surface's login; staff pages refuse patients; patient pages refuse
staff tokens; a post without the CSRF token is refused; a patient page naming a record by its id
is registered in carepoints.ownership and answers 404 for a record that is not the patient's."""

from __future__ import annotations

import re
from typing import Any

import pytest

from carepoints.kit.ids import new_id
from carepoints.kit.time import utc_now
from carepoints.pages.web import PATIENT, STAFF, _serializer
from carepoints.security import scope
from tests.conftest import Db
from tests.helpers import enrol
from tests.pages.helpers import CSRF, PageClient, patient_client, staff_client
from tests.security.test_matrix import endpoints

_PARAM = re.compile(r"\{([a-z_]+)(?::[a-z]+)?\}")
# ids in patient page paths that name no patient's record (the catalogue everyone books from)
_SHARED_IDS = {"department_id", "clinician_id", "session_id", "item_id", "lecture_id", "task_id"}


def _pages() -> list[tuple[str, str]]:
    """Every page that needs someone signed in (the login pages and /terms are open to anyone)."""
    found, _ = endpoints()
    return sorted({(e.method, e.path) for e in found if e.page and e.permissions})


def _url(path: str) -> str:
    """The path with every parameter filled with a well-formed id nobody owns."""
    return _PARAM.sub(lambda m: new_id() if m.group(1).endswith("_id") else "NOPE1", path)


def _surface(path: str) -> Any:
    return STAFF if path.startswith(("/staff", "/admin")) else PATIENT


def test_the_sweep_sees_every_area() -> None:
    paths = {p for _, p in _pages()}
    for expected in ("/", "/me/settings", "/staff", "/admin", "/staff/adjustments"):
        assert expected in paths, expected
    assert len(paths) >= 10


def test_signed_out_visitors_go_to_the_login(db: Db) -> None:
    client = PageClient(_app())
    for method, path in _pages():
        if method != "GET":
            continue
        r = client.get(_url(path), follow_redirects=False)
        assert r.status_code == 303, (path, r.status_code)
        assert r.headers["location"].startswith(_surface(path).login + "?next="), (path, r.headers["location"])
        h = client.get(_url(path), headers={"HX-Request": "true"}, follow_redirects=False)
        assert h.headers.get("hx-redirect", "").startswith(_surface(path).login), (path, h.status_code)


def test_posts_without_the_csrf_token_are_refused(db: Db) -> None:
    pid = enrol(utc_now(), phone="13900000101")
    patient = patient_client(pid)
    admin, _ = staff_client("admin")
    for method, path in _pages():
        if method != "POST":
            continue
        client = admin if _surface(path) is STAFF else patient
        r = client.submit(_url(path), {"note": "x"}, csrf=False)
        assert r.status_code == 403, (path, r.status_code, r.text[:300])
        assert 'data-error="pages.csrf_failed"' in r.text or "pages.csrf_failed" in r.text, path
        wrong = client.submit(_url(path), {"csrf_token": "not-the-token"}, csrf=False)
        assert wrong.status_code == 403, path


def test_staff_pages_refuse_patients(db: Db) -> None:
    pid = enrol(utc_now(), phone="13900000102")
    patient = patient_client(pid)
    patient_token = _serializer(PATIENT).loads(patient.cookies[PATIENT.cookie])["t"]
    impostor = PageClient(_app())  # a patient token put into the staff cookie
    impostor.cookies.set(STAFF.cookie, _serializer(STAFF).dumps({"c": CSRF, "l": "zh", "t": patient_token}))
    for method, path in _pages():
        if _surface(path) is not STAFF or path == "/staff/logout":  # signing out needs no one signed in
            continue
        if method == "GET":
            r = patient.get(_url(path), follow_redirects=False)  # the patient's own cookie: not a staff session
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/staff/login"), path
            r = impostor.get(_url(path), follow_redirects=False)
        else:
            r = impostor.submit(_url(path), {})
        assert r.status_code == 403, (method, path, r.status_code)
        assert "pages.staff_only" in r.text, path


def test_patient_pages_refuse_staff_tokens(db: Db) -> None:
    staff, _ = staff_client("frontdesk")
    staff_token = _serializer(STAFF).loads(staff.cookies[STAFF.cookie])["t"]
    impostor = PageClient(_app())
    impostor.cookies.set(PATIENT.cookie, _serializer(PATIENT).dumps({"c": CSRF, "l": "zh", "t": staff_token}))
    for method, path in _pages():
        if _surface(path) is not PATIENT or path in {"/logout"}:
            continue
        r = impostor.get(_url(path), follow_redirects=False) if method == "GET" else impostor.submit(_url(path), {})
        assert r.status_code == 403, (method, path, r.status_code)
        assert "pages.patient_only" in r.text, path


def test_patient_record_routes_are_owned_and_hide_others_records(db: Db) -> None:
    """Every patient page that names a record by its id has an owner lookup, and a record the
    patient does not own (here: one that does not exist) is 404 — never another patient's page."""
    pid = enrol(utc_now(), phone="13900000103")
    client = patient_client(pid)
    checked = 0
    for method, path in _pages():
        if _surface(path) is not PATIENT:
            continue
        params = [p for p in _PARAM.findall(path) if p.endswith("_id") and p not in _SHARED_IDS]
        if not params:
            continue
        values = {p: new_id() for p in params}
        assert scope.owner_lookups(path.split("{")[0], values), f"{path}: add its id to carepoints.ownership"
        url = _PARAM.sub(lambda m, v=values: v.get(m.group(1), "NOPE1"), path)
        r = client.get(url, follow_redirects=False) if method == "GET" else client.submit(url, {})
        assert r.status_code == 404, (method, path, r.status_code)
        checked += 1
    assert checked >= _RECORD_PAGES, f"only {checked} patient pages name a record by its id"


_RECORD_PAGES = 13  # appeals, appointments, coupons, follow-ups, waitlist, doses, lectures, messages, reviews


def _app() -> Any:
    from carepoints.app import create_app
    return create_app()


@pytest.fixture(autouse=True)
def _fresh_engine(db: Db) -> None:
    """Every test here runs on the parametrised database (SQLite and PostgreSQL)."""
    assert db.url
