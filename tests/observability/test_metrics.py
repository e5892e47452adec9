"""GET /metrics: request, ingest, award and job counters move by exactly what
happened; outbox and dead-letter gauges read the database at scrape time;
the address allow-list."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update
from typer.testing import CliRunner

from carepoints import __version__
from carepoints.app import create_app, create_asgi
from carepoints.cli.main import app as cli_app
from carepoints.config import reset_settings
from carepoints.jobs import registry
from carepoints.kit import metrics
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.ids import new_id
from carepoints.kit.outbox import OutboxMessage
from carepoints.kit.time import utc_now
from carepoints.notifications.models import Delivery
from tests.conftest import Db
from tests.helpers import bp, error, event
from tests.observability.scrape import Samples, delta, parse, scrape, value

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

EVENTS = "carepoints_events_ingested_total"
HTTP = "carepoints_http_requests_total"
HTTP_COUNT = "carepoints_http_request_duration_seconds_count"
INGEST = {"method": "POST", "route": "/api/v1/events"}


def _reading(api: Api, pid: str, hours_ago: float = 1) -> dict[str, Any]:
    return event(pid, "health.measurement", api.now() - timedelta(hours=hours_ago), bp())


def _earned(outcomes: list[dict[str, Any]]) -> list[int]:
    return [a["points"] for o in outcomes if not o.get("duplicate") and "awards" in o
            for a in o["awards"] if a["points"] > 0]


def _local() -> Samples:
    return parse(metrics.exposition().decode())


def test_a_single_event_through_the_fast_path_is_counted_once(api: Api) -> None:
    pid = api.enrol()
    ev = _reading(api, pid)
    before = scrape(api)
    r = api.post("/events", ev)
    assert r.status_code == 201, r.text
    earned = _earned([r.json()])
    assert earned  # the first reading earns (first check-in and the reading itself)
    after = scrape(api)
    assert delta(before, after, EVENTS, outcome="accepted") == 1
    assert delta(before, after, EVENTS, outcome="duplicate") == 0
    assert delta(before, after, EVENTS, outcome="rejected") == 0
    assert delta(before, after, "carepoints_awards_total") == len(earned)
    assert delta(before, after, "carepoints_points_awarded_total") == sum(earned)
    assert delta(before, after, HTTP, status="201", **INGEST) == 1
    assert delta(before, after, HTTP_COUNT, **INGEST) == 1

    replay = api.post("/events", ev)
    assert replay.status_code == 200, replay.text
    unknown = api.post("/events", _reading(api, new_id()))
    error(unknown, 404, "patients.not_found")
    last = scrape(api)
    assert delta(after, last, EVENTS, outcome="duplicate") == 1
    assert delta(after, last, EVENTS, outcome="rejected") == 1
    assert delta(after, last, EVENTS, outcome="accepted") == 0
    assert delta(after, last, "carepoints_awards_total") == 0  # a replay pays nothing again
    assert delta(after, last, HTTP, status="200", **INGEST) == 1
    assert delta(after, last, HTTP, status="404", **INGEST) == 1
    assert delta(after, last, HTTP_COUNT, **INGEST) == 2
    assert delta(after, last, "carepoints_http_request_duration_seconds_sum", **INGEST) > 0


def test_a_batch_counts_each_item_by_outcome(api: Api) -> None:
    pid = api.enrol()
    first = _reading(api, pid, hours_ago=30)
    api.send(first)
    items = [_reading(api, pid, hours_ago=2), _reading(api, pid, hours_ago=3), first,
             _reading(api, new_id()), {"type": "no.such.type"}]
    before = scrape(api)
    outcomes = api.batch(items)
    after = scrape(api)
    assert [o.get("duplicate") for o in outcomes[:3]] == [False, False, True]
    assert [o.get("status") for o in outcomes[3:]] == [404, 422]
    assert delta(before, after, EVENTS, outcome="accepted") == 2
    assert delta(before, after, EVENTS, outcome="duplicate") == 1
    assert delta(before, after, EVENTS, outcome="rejected") == 2
    earned = _earned(outcomes)
    assert earned
    assert delta(before, after, "carepoints_awards_total") == len(earned)
    assert delta(before, after, "carepoints_points_awarded_total") == sum(earned)
    assert delta(before, after, HTTP, status="200", **INGEST) == 1  # one request


def test_enrolment_and_penalties_are_counted(api: Api) -> None:
    before = scrape(api)
    pid = api.enrol()
    after = scrape(api)
    assert delta(before, after, EVENTS, outcome="accepted") == 1  # account.registered
    assert delta(before, after, "carepoints_points_awarded_total") == 100  # the welcome bonus
    slot = api.now() - timedelta(days=2)
    out = api.send(event(pid, "appointment.no_show", slot,
                         {"appointment_id": uuid.uuid4().hex, "slot_start": slot.isoformat()}))
    penalty = [a["points"] for a in out["awards"] if a["points"] < 0]
    assert penalty == [-50]
    last = scrape(api)
    assert delta(after, last, "carepoints_penalties_total") == 1
    assert delta(after, last, "carepoints_points_deducted_total") == 50
    assert delta(after, last, "carepoints_awards_total") == 0


def test_requests_are_labelled_by_route_template_never_by_raw_path(api: Api) -> None:
    pid = api.enrol()
    assert api.get(f"/patients/{pid}").status_code == 200
    assert api.get("/no/such/13812345678").status_code == 404
    assert api.request("BREW", "/healthz").status_code == 405
    samples = scrape(api)
    assert value(samples, HTTP, method="GET", route="/api/v1/patients/{patient_id}", status="200") >= 1
    assert value(samples, HTTP, method="GET", route="other", status="404") >= 1
    assert value(samples, HTTP, method="other", route="/healthz", status="405") >= 1
    labels = {v for (_name, ls) in samples for _k, v in ls}
    assert not {v for v in labels if pid in v or "13812345678" in v}


def test_info_names_the_version_and_database(api: Api, db: Db) -> None:
    samples = scrape(api)
    kind = "postgresql" if db.is_postgres else "sqlite"
    assert value(samples, "carepoints_info", version=__version__, database=kind) == 1


def test_jobs_run_counts_runs_failures_and_skips(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _local()
    out = CliRunner().invoke(cli_app, ["jobs", "run", "expire-holds"])
    assert out.exit_code == 0, out.output
    after = _local()
    assert delta(before, after, "carepoints_job_runs_total", job="expire-holds", status="done") == 1
    assert delta(before, after, "carepoints_job_duration_seconds_count", job="expire-holds") == 1

    def broken(_now: Any) -> dict[str, Any]:
        raise RuntimeError("broken on purpose")

    monkeypatch.setitem(registry.JOBS, "test-broken", broken)
    with pytest.raises(RuntimeError):
        registry.run("test-broken")
    registry.run("expire-holds", slot="test-slot")
    with pytest.raises(registry.AlreadyRunError):
        registry.run("expire-holds", slot="test-slot")  # another process had this instance
    registry.run_unleased("send-notifications", utc_now())
    last = _local()
    assert delta(after, last, "carepoints_job_runs_total", job="test-broken", status="failed") == 1
    assert delta(after, last, "carepoints_job_duration_seconds_count", job="test-broken") == 1
    assert delta(after, last, "carepoints_job_runs_total", job="expire-holds", status="done") == 1
    assert delta(after, last, "carepoints_job_runs_total", job="expire-holds", status="skipped") == 1
    assert delta(after, last, "carepoints_job_runs_total", job="send-notifications", status="done") == 1


def _dead_letter(status: str, available_in: timedelta) -> dict[str, Any]:
    now = utc_now()
    return {"id": new_id(), "outbox_id": new_id(), "topic": "points.changed", "template": "points.changed",
            "channel": "sms", "recipient_kind": "patient", "recipient_id": new_id(), "content": {"text": "-"},
            "status": status, "attempts": 8, "available_at": now + available_in, "lease_until": None,
            "last_error": "http_500", "created_at": now, "updated_at": now, "sent_at": None}


def test_outbox_lag_and_dead_letters_are_read_at_scrape_time(api: Api) -> None:
    api.enrol()  # its welcome message waits in the outbox
    outbox = table(OutboxMessage)
    with write_tx() as session:
        conn = session.connection()
        oldest = conn.execute(select(outbox.c.id).where(outbox.c.status == "pending")
                              .order_by(outbox.c.created_at).limit(1)).scalar_one()
        conn.execute(update(outbox).where(outbox.c.id == oldest).values(created_at=utc_now() - timedelta(seconds=300)))
        conn.execute(table(Delivery).insert(), [_dead_letter("dead", timedelta(0)), _dead_letter("dead", timedelta(0)),
                                                _dead_letter("pending", timedelta(days=1))])
    with read_tx() as session:
        pending = session.connection().execute(select(func.count()).where(outbox.c.status == "pending")).scalar_one()
    samples = scrape(api)
    assert pending >= 1
    assert value(samples, "carepoints_outbox_pending") == pending
    assert 300 <= value(samples, "carepoints_outbox_oldest_pending_seconds") < 600
    assert value(samples, "carepoints_notification_dead_letters") == 2
    assert value(samples, "carepoints_notification_deliveries_pending") == 1

    registry.run("send-notifications")
    samples = scrape(api)
    assert value(samples, "carepoints_outbox_pending") == 0
    assert value(samples, "carepoints_outbox_oldest_pending_seconds") == 0
    assert value(samples, "carepoints_notification_dead_letters") == 2


def test_a_gauge_whose_query_fails_is_left_out_not_an_error(api: Api) -> None:
    with write_tx() as session:
        session.connection().execute(text("ALTER TABLE notification_deliveries RENAME TO h7_deliveries_away"))
    try:
        r = api.get("/metrics", auth=False)
    finally:
        with write_tx() as session:
            session.connection().execute(text("ALTER TABLE h7_deliveries_away RENAME TO notification_deliveries"))
    assert r.status_code == 200, r.text
    samples = parse(r.text)
    names = {name for name, _labels in samples}
    assert "carepoints_notification_dead_letters" not in names
    assert "carepoints_outbox_pending" in names
    assert "carepoints_http_requests_total" in names


@pytest.fixture
def allow_list(db: Db, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.delenv("CAREPOINTS_METRICS_ALLOW", raising=False)
    reset_settings()


def test_the_allow_list_limits_metrics_to_its_addresses(allow_list: pytest.MonkeyPatch) -> None:
    allow_list.setenv("CAREPOINTS_METRICS_ALLOW", "10.0.0.0/8, 192.0.2.7")
    reset_settings()
    app = create_asgi()
    for client in ("10.1.2.3", "192.0.2.7", "::ffff:10.0.0.1"):
        r = TestClient(app, client=(client, 5000)).get("/metrics")
        assert r.status_code == 200, (client, r.text)
        assert "carepoints_info" in r.text
    for client in ("192.0.2.8", "11.0.0.1", "2001:db8::1", "testclient"):
        r = TestClient(app, client=(client, 5000)).get("/metrics")
        body = error(r, 403, "metrics.forbidden")
        assert "指标" in body["detail"]
        assert "Metrics" in body["detail"]
        assert TestClient(app, client=(client, 5000)).get("/healthz").status_code == 200  # probes stay open


def test_a_bad_allow_list_stops_the_app_at_start(allow_list: pytest.MonkeyPatch) -> None:
    allow_list.setenv("CAREPOINTS_METRICS_ALLOW", "10.0.0.0/33")
    reset_settings()
    with pytest.raises(RuntimeError, match="CAREPOINTS_METRICS_ALLOW"):
        create_app()


_WORKER = """
import sys
from carepoints.kit import metrics
metrics.count_events([{"duplicate": False, "awards": [{"points": 10}]}, {"duplicate": True}])
metrics.route("GET", "/healthz").record(200, 0.002)
if sys.argv[1] == "scrape":
    sys.stdout.write(metrics.exposition().decode())
"""


def test_multiprocess_mode_sums_the_workers(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, any worker's scrape answers the sum over all workers."""
    shared = tmp_path / "prom"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared),
           "CAREPOINTS_DATABASE_URL": f"sqlite:///{tmp_path / 'mp.db'}"}
    for arg in ("count", "count", "scrape"):
        out = subprocess.run([sys.executable, "-c", _WORKER, arg], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
    samples = parse(out.stdout)
    assert value(samples, EVENTS, outcome="accepted") == 3
    assert value(samples, EVENTS, outcome="duplicate") == 3
    assert value(samples, "carepoints_points_awarded_total") == 30
    assert value(samples, HTTP, method="GET", route="/healthz", status="200") == 3
    assert value(samples, "carepoints_http_request_duration_seconds_count", method="GET", route="/healthz") == 3
    assert value(samples, "carepoints_info", version=__version__, database="sqlite") == 1
