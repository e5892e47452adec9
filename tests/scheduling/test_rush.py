"""A booking rush through the app in one event loop: many concurrent requests for a
few slots, so that the admission gate in front of the write path (requests wait
while as many bookings are in flight as there are claimable slots) and the
booking writer (concurrent bookings share a transaction) really run."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import time
from typing import TYPE_CHECKING, Any

import httpx

from carepoints.app import create_asgi
from carepoints.scheduling import endpoints
from tests.scheduling.test_endpoints import ONLINE_ONLY, ahead, hospital, new_session

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def test_forty_concurrent_requests_for_three_slots(api: Api) -> None:
    ids = hospital(api)
    sess = new_session(api, ids["wang"], ahead(api, 3), start=time(9), end=time(9, 30), slot_minutes=10,
                       **ONLINE_ONLY)
    pids = [api.enrol() for _ in range(40)]
    headers = api.headers()

    async def rush() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_asgi())
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return list(await asyncio.gather(*(client.post("/api/v1/appointments", headers=headers, json={
                "patient_id": pid, "session_id": sess["id"], "idempotency_key": f"r{n}"})
                for n, pid in enumerate(pids))))

    answers = asyncio.run(rush())
    statuses = Counter(r.status_code for r in answers)
    assert statuses == {201: 3, 409: 37}
    assert {r.json()["error"] for r in answers if r.status_code == 409} == {"scheduling.session_full"}
    booked: list[dict[str, Any]] = [r.json() for r in answers if r.status_code == 201]
    assert sorted(b["seq"] for b in booked) == [1, 2, 3]
    assert api.get(f"/sessions/{sess['id']}").json()["free"]["online"] == 0
    assert not endpoints._rush.inflight
    assert not endpoints._rush.conds
    # a replay of a winner still answers its booking, though the session is full
    winner = next(r for r in answers if r.status_code == 201)
    n = next(i for i, r in enumerate(answers) if r is winner)
    again = api.post("/appointments", {"patient_id": pids[n], "session_id": sess["id"], "idempotency_key": f"r{n}"})
    assert again.status_code == 200
    assert again.json()["id"] == winner.json()["id"]
