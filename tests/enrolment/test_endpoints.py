"""POST /patients, GET /patients/{id}, its points and its ledger entries over HTTP."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from carepoints.kit.ids import is_id
from tests.helpers import bp, event

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

POINTS_KEYS = {"balance", "available", "held", "debt", "tier", "earned_this_year", "suspended_until", "expiring",
               "advisor", "household"}
UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


def _person(api: Api, **extra: Any) -> dict[str, Any]:
    return api.patient_body(name="张三", phone="13812345678", id_number="11010519491231002X",
                            birth_date="1949-12-31", sex="male", **extra)


def test_enrol_answers_201_with_pii_masked_for_an_integration_key(api: Api) -> None:
    key = api.make_key("integration")
    r = api.post("/patients", _person(api), key=key)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert is_id(doc["id"])
    assert (doc["name"], doc["phone"], doc["id_number"]) == ("张*", "138****5678", "110***********002X")
    assert (doc["sex"], doc["status"], doc["birth_date"]) == ("male", "active", "1949-12-31")
    assert sorted(c["purpose"] for c in doc["consents"]) == ["health_data", "points_programme"]
    assert api.balance(doc["id"]) == 100
    got = api.get(f"/patients/{doc['id']}", key=key).json()
    assert (got["name"], got["phone"]) == ("张*", "138****5678")


def test_admin_reads_pii_unmasked(api: Api) -> None:
    r = api.post("/patients", _person(api))
    assert r.status_code == 201
    doc = r.json()
    assert (doc["name"], doc["phone"], doc["id_number"]) == ("张三", "13812345678", "11010519491231002X")
    got = api.get(f"/patients/{doc['id']}").json()
    assert (got["name"], got["phone"]) == ("张三", "13812345678")


def test_the_same_external_id_again_answers_the_existing_patient(api: Api) -> None:
    ext = [{"system": "urn:his:mrn", "value": "MRN-7"}]
    first = api.post("/patients", api.patient_body(external_ids=ext))
    again = api.post("/patients", api.patient_body(name="李四", external_ids=ext))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["external_ids"] == ext
    assert api.balance(first.json()["id"]) == 100  # one welcome only


def test_the_same_idempotency_key_again_answers_the_existing_patient(api: Api) -> None:
    first = api.post("/patients", api.patient_body(idempotency_key="enrol-1"))
    again = api.post("/patients", api.patient_body(idempotency_key="enrol-1"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    other = api.post("/patients", api.patient_body(idempotency_key="enrol-2"))
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]


def test_parallel_enrolments_of_one_external_id_make_one_patient(api: Api) -> None:
    ext = [{"system": "urn:his:mrn", "value": "MRN-PAR"}]

    def enrol(_: int) -> tuple[int, str]:
        r = api.post("/patients", api.patient_body(external_ids=ext), client=api.new_client())
        return r.status_code, r.json().get("id", r.text)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(enrol, range(6)))
    assert sorted(s for s, _ in results) == [200] * 5 + [201], results
    assert len({pid for _, pid in results}) == 1
    assert api.balance(results[0][1]) == 100


MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"phone": "12-34"}, "phone"),
    ({"phone": "abcdefghij"}, "phone"),
    ({"consent": None}, "consent"),
    ({"consent": {"version": "1.0"}}, "consent"),
    ({"consent": {"version": "1.0", "accepted_at": "2026-01-01T00:00:00"}}, "consent"),
    ({"consent": {"version": "1.0", "accepted_at": "2026-01-01T00:00:00+08:00", "purposes": ["spam"]}},
     "consent"),
    ({"name": "   "}, "name"),
    ({"sex": "x"}, "sex"),
    ({"id_number": "12"}, "id_number"),
    ({"unexpected": 1}, "unexpected"),
]


def test_malformed_enrolment_is_422_with_fields(api: Api) -> None:
    for change, loc in MALFORMED:
        body = {k: v for k, v in {**api.patient_body(), **change}.items() if v is not None}
        r = api.post("/patients", body)
        assert r.status_code == 422, (change, r.text)
        doc = r.json()
        assert doc["error"] == "request.invalid"
        assert doc["detail"]
        assert any(loc in f["loc"] for f in doc["fields"]), (change, doc["fields"])
    r = api.post("/patients", b"{not json")
    assert (r.status_code, r.json()["error"]) == (422, "request.invalid")


def test_get_patient(api: Api) -> None:
    pid = api.enrol(external_ids=[{"system": "urn:his:mrn", "value": "M1"}])
    r = api.get(f"/patients/{pid}")
    assert r.status_code == 200
    doc = r.json()
    assert doc["id"] == pid
    assert doc["external_ids"] == [{"system": "urn:his:mrn", "value": "M1"}]
    assert doc["tier"] == "standard"


def test_unknown_or_malformed_patient_is_404(api: Api) -> None:
    for pid in (UNKNOWN, "not-an-id", "1", "0190A5F0-0000-7000-8000-000000000000"):
        for suffix in ("", "/points", "/points/entries"):
            r = api.get(f"/patients/{pid}{suffix}")
            assert r.status_code == 404, (pid, suffix, r.text)
            assert r.json()["error"].endswith("not_found")
            assert r.json()["error"] == "patients.not_found"


def test_points_shape(api: Api) -> None:
    pid = api.enrol()
    view = api.points(pid)
    assert set(view) == POINTS_KEYS
    assert view == {"balance": 100, "available": 100, "held": 0, "debt": 0, "tier": "standard",
                    "earned_this_year": 100, "suspended_until": None, "expiring": [], "advisor": None,
                    "household": None}


def test_entries_page_with_limit_and_cursor(api: Api) -> None:
    pid = api.enrol()
    now = api.now()
    api.batch([event(pid, "lecture.attended", now - timedelta(days=d), {"lecture_id": f"L{d}"})
               for d in range(1, 7)])
    everything = api.get(f"/patients/{pid}/points/entries").json()
    assert everything["next"] is None
    assert len(everything["items"]) == 7
    assert [e["balance_after"] for e in everything["items"]] == [280, 250, 220, 190, 160, 130, 100]
    item = everything["items"][-1]
    assert {"id", "at", "points", "kind", "rule", "message", "balance_after"} <= set(item)
    assert (item["points"], item["kind"], item["rule"]) == (100, "earn", "welcome")

    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        r = api.get(f"/patients/{pid}/points/entries", params=params)
        assert r.status_code == 200
        page = r.json()
        assert len(page["items"]) <= 3
        seen.extend(page["items"])
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == everything["items"]


def test_entries_limit_exactly_the_count_has_no_next(api: Api) -> None:
    pid = api.enrol()
    api.send(event(pid, "lecture.attended", api.now() - timedelta(hours=1), {"lecture_id": "L"}))
    page = api.get(f"/patients/{pid}/points/entries", params={"limit": 2}).json()
    assert len(page["items"]) == 2
    assert page["next"] is None


def test_entries_bad_paging_is_422(api: Api) -> None:
    pid = api.enrol()
    for params in ({"limit": 0}, {"limit": 501}, {"cursor": "abc"}, {"limit": "x"}):
        r = api.get(f"/patients/{pid}/points/entries", params=params)
        assert (r.status_code, r.json()["error"]) == (422, "request.invalid"), params


def test_without_programme_consent_events_earn_nothing(api: Api) -> None:
    consent = {"version": "1.0", "accepted_at": (api.now() - timedelta(days=1)).isoformat(),
               "purposes": ["health_data", "notifications"]}
    pid = api.enrol(consent=consent)
    assert api.balance(pid) == 0  # not even the welcome
    out = api.send(event(pid, "health.measurement", api.now() - timedelta(hours=1), bp()))
    assert out["awards"] == []
    assert [n["code"] for n in out["notices"]] == ["consent.missing"]
    assert out["notices"][0]["message"]
    assert api.balance(pid) == 0


def test_consent_without_purposes_means_the_programme_and_health_data(api: Api) -> None:
    pid = api.enrol()
    doc = api.get(f"/patients/{pid}").json()
    assert sorted(c["purpose"] for c in doc["consents"]) == ["health_data", "points_programme"]
    out = api.send(event(pid, "lecture.attended", api.now() - timedelta(hours=1), {"lecture_id": uuid.uuid4().hex}))
    assert out["awards"][0]["points"] == 30
