"""A patient never reaches another patient's admissions, surgeries or pre-visit exams, route by
route (404, the record unchanged), nor the staff-only routes (403); a proxy with `view` reads but
cannot book; the routes' owners are registered (carepoints.ownership)."""

from __future__ import annotations

from datetime import time, timedelta
from typing import TYPE_CHECKING

from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.patients import proxies
from tests.helpers import error
from tests.services.admissions.world import Hospital, local_today, order_body, patient_token, surgery_body

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def test_each_patient_route_hides_other_patients_records(api: Api) -> None:
    h = Hospital()
    mine, theirs = api.enrol(), api.enrol()
    their_order = api.post("/admission-orders", order_body(theirs, h.ward)).json()["id"]
    my_order = api.post("/admission-orders", order_body(mine, h.ward)).json()["id"]
    their_surgery = api.post("/surgery-requests", surgery_body(theirs, h.department)).json()["id"]
    d = local_today() + timedelta(days=1)
    h.session(d, time(8), time(8, 30), exam=True)
    h.session(d, time(14), time(15))
    their_previsit = api.post("/previsit-orders", {
        "patient_id": theirs, "clinician_id": h.clinician, "resource_id": h.resource, "exam": "血常规",
        "result_hours": 1, "idempotency_key": "iso-pv"}).json()["id"]
    day = (local_today() + timedelta(days=3)).isoformat()
    token = patient_token(mine)

    error(api.get(f"/patients/{theirs}/admissions", key=token), 404, "patients.not_found")
    error(api.get(f"/admission-orders/{their_order}", key=token), 404, "patients.not_found")
    error(api.get(f"/admission-orders/{their_order}/dates", key=token), 404, "patients.not_found")
    error(api.post(f"/admission-orders/{their_order}/date", {"date": day}, key=token), 404, "patients.not_found")
    error(api.post(f"/admission-orders/{their_order}/cancel", key=token), 404, "patients.not_found")
    error(api.get(f"/surgery-requests/{their_surgery}", key=token), 404, "patients.not_found")
    error(api.get(f"/previsit-orders/{their_previsit}", key=token), 404, "patients.not_found")
    assert api.get(f"/admission-orders/{their_order}").json()["status"] == "issued"  # untouched

    # staff-only routes refuse a patient whatever the id
    for method, path, body in [
        ("POST", "/admission-orders", order_body(mine, h.ward)),
        ("POST", f"/admission-orders/{my_order}/admit", None),
        ("POST", "/surgery-requests", surgery_body(mine, h.department)),
        ("POST", f"/surgery-requests/{their_surgery}/schedule", {"room_id": h.room, "date": day}),
        ("POST", "/previsit-orders", {"patient_id": mine, "resource_id": h.resource, "exam": "x", "result_hours": 1,
                                      "idempotency_key": "p"}),
        ("POST", f"/previsit-orders/{their_previsit}/cancel", None),
        ("GET", f"/wards/{h.ward}/days/{day}", None), ("GET", "/surgery-requests", None),
        ("POST", "/wards", {}), ("PUT", f"/wards/{h.ward}/days/{day}", {"capacity": 9}),
    ]:
        r = api.request(method, path, body, key=token)
        assert r.status_code == 403, (method, path, r.text)

    # my own records answer
    overview = api.get(f"/patients/{mine}/admissions", key=token).json()
    assert [o["id"] for o in overview["admissions"]] == [my_order]
    assert overview["surgeries"] == []
    assert overview["previsits"] == []
    assert api.post(f"/admission-orders/{my_order}/date", {"date": day}, key=token).json()["status"] == "booked"


def test_a_viewing_proxy_reads_but_cannot_book(api: Api) -> None:
    h = Hospital()
    owner, carer = api.enrol(), api.enrol()
    with write_tx() as s:
        proxies.authorise(s, owner, proxies.Proxy(carer), ["view"], utc_now())
    oid = api.post("/admission-orders", order_body(owner, h.ward)).json()["id"]
    token = patient_token(carer)
    assert api.get(f"/admission-orders/{oid}", key=token).json()["id"] == oid
    assert [o["id"] for o in api.get(f"/patients/{owner}/admissions", key=token).json()["admissions"]] == [oid]
    day = (local_today() + timedelta(days=3)).isoformat()
    error(api.post(f"/admission-orders/{oid}/date", {"date": day}, key=token), 403, "auth.forbidden")
    assert api.get(f"/admission-orders/{oid}").json()["status"] == "issued"
