"""The forecast API over HTTP on SQLite and PostgreSQL: admins run a forecast, read it and apply
a suggestion; auditors only read; other roles and patients are refused; bad input is a clear 4xx
that stores nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from carepoints.config import get_settings
from carepoints.kit.db import read_tx
from carepoints.kit.ids import new_id
from carepoints.kit.time import utc_now
from carepoints.security import otp
from carepoints.services.forecast.models import ForecastRun
from tests.conftest import Db
from tests.helpers import enrol
from tests.services.forecast.world import Demand, capacity_of, suggestion_for

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"] == code, r.text


def staff_key(api: Api, role: str) -> str:
    name = f"{role}{utc_now().timestamp():.6f}".replace(".", "")
    api.make_staff(name, "correct horse battery", role)
    r = api.client.post("/api/v1/auth/token", json={"username": name, "password": "correct horse battery"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def runs() -> int:
    with read_tx() as s:
        return int(s.execute(select(func.count()).select_from(ForecastRun)).scalar_one())


def test_run_read_and_apply(api: Api, db: Db) -> None:
    w = Demand(weeks=5)
    refused(api.get("/forecast"), 404, "forecast.run_not_found")
    r = api.post("/forecast/runs", {"weeks": 2})
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["horizon"]["days"] == 14
    dep = next(d for d in doc["departments"] if d["department_id"] == w.department)
    assert dep["holdout_days"] == 7  # five weeks of history: a week held back
    assert dep["chosen"] in dep["models"]
    tue = suggestion_for(doc, w.tuesday["id"])
    assert (tue["current_capacity"], tue["suggested_capacity"], tue["status"]) == (8, 11, "pending")
    latest = api.get("/forecast").json()
    assert latest["id"] == doc["id"]
    assert latest["suggestions"] == doc["suggestions"]
    assert api.get(f"/forecast/runs/{doc['id']}").json()["id"] == doc["id"]

    r = api.post(f"/forecast/suggestions/{tue['id']}/apply")
    assert r.status_code == 200, r.text
    assert (r.json()["changed"], r.json()["status"], r.json()["previous_capacity"]) == (True, "applied", 8)
    assert capacity_of(w.tuesday["id"]) == (11, 11)
    r = api.post(f"/forecast/suggestions/{tue['id']}/apply")
    assert (r.status_code, r.json()["changed"]) == (200, False)

    unchanged = next((s for s in doc["suggestions"] if s["status"] == "unchanged"), None)
    if unchanged is not None:
        refused(api.post(f"/forecast/suggestions/{unchanged['id']}/apply"), 409, "forecast.nothing_to_apply")
    api.post("/forecast/runs", {})
    thu = suggestion_for(doc, w.thursday["id"])
    refused(api.post(f"/forecast/suggestions/{thu['id']}/apply"), 409, "forecast.suggestion_superseded")
    assert capacity_of(w.thursday["id"]) == (16, 16)


def test_bad_input_and_unknown_ids(api: Api, db: Db) -> None:
    for body in ({"weeks": 0}, {"weeks": 9}, {"weeks": "two"}, {"headroom": "0.5"}, {"headroom": 3},
                 {"weeks": 2, "extra": 1}):
        refused(api.post("/forecast/runs", body), 422, "request.invalid")
    assert runs() == 0
    refused(api.post(f"/forecast/suggestions/{new_id()}/apply"), 404, "forecast.suggestion_not_found")
    refused(api.post("/forecast/suggestions/nope/apply"), 404, "forecast.suggestion_not_found")
    refused(api.get(f"/forecast/runs/{new_id()}"), 404, "forecast.run_not_found")


def test_who_may(api: Api, db: Db) -> None:
    Demand(weeks=2)
    r = api.post("/forecast/runs", {"weeks": 1, "headroom": "1.25"})
    assert r.status_code == 201
    assert r.json()["headroom"] == "1.25"
    sid = r.json()["suggestions"][0]["id"]
    auditor = staff_key(api, "auditor")
    assert api.get("/forecast", key=auditor).status_code == 200
    refused(api.post("/forecast/runs", {}, key=auditor), 403, "auth.forbidden")
    refused(api.post(f"/forecast/suggestions/{sid}/apply", key=auditor), 403, "auth.forbidden")
    integration = api.make_key("integration")
    refused(api.get("/forecast", key=integration), 403, "auth.forbidden")
    refused(api.post("/forecast/runs", {}, key=staff_key(api, "frontdesk")), 403, "auth.forbidden")
    pid = enrol(utc_now())
    patient = otp.patient_token(pid, utc_now(), get_settings())[0]
    refused(api.get("/forecast", key=patient), 403, "auth.forbidden")
    refused(api.post(f"/forecast/suggestions/{sid}/apply", key=patient), 403, "auth.forbidden")
    assert runs() == 1
