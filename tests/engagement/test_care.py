"""The care queue's order holds across pages: an old critical alert is on the first
page however many newer ones there are, and paging visits each alert exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from carepoints.engagement.care import service as care
from carepoints.engagement.care.schemas import AlertKind
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def _raise(pid: str, ref: str, severity: str, minutes_ago: int) -> str:
    with write_tx() as session:
        aid = care.raise_alert(session, patient_id=pid, kind=AlertKind.abnormal_reading, source_ref=ref,
                               now=utc_now() - timedelta(minutes=minutes_ago), severity=severity)
    assert aid is not None
    return aid


def test_queue_order_holds_across_pages(api: Api) -> None:
    pid = api.enrol()
    old_critical = _raise(pid, "c-old", "critical", 60)
    normals = [_raise(pid, f"n{i}", "normal", 50 - i) for i in range(4)]
    high = _raise(pid, "h1", "high", 5)
    new_critical = _raise(pid, "c-new", "critical", 1)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, object] = {"limit": 2, "patient_id": pid}
        if cursor:
            params["before"] = cursor
        page = api.get("/care-alerts", params=params).json()
        seen.extend(i["id"] for i in page["items"])
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [old_critical, new_critical, high, *normals]
    first = api.get("/care-alerts", params={"limit": 1}).json()["items"]
    assert [i["id"] for i in first] == [old_critical]
    # an unknown cursor starts from the top
    top = api.get("/care-alerts", params={"limit": 1, "before": "0190a5f0-0000-7000-8000-000000000000"}).json()
    assert [i["id"] for i in top["items"]] == [old_critical]
