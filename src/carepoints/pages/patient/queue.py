"""The patient's queue card (候诊提醒) on "my appointments": for each checked-in appointment today
the current number and how many are ahead ("当前叫号 12 · 您前面还有 3 位"), refreshed by HTMX
polling; large in elderly mode. Counts only: never who is ahead."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from carepoints.kit.time import utc_now
from carepoints.pages.web import Page, patient_page, reading
from carepoints.services.queue import service

router = APIRouter(include_in_schema=False)
POLL_SECONDS = 5


@router.get("/me/queue/card")
def card(page: Annotated[Page, Depends(patient_page("appointments:read"))]) -> Response:
    """The queue card fragment (empty when nothing is checked in today)."""
    with reading() as session:
        items = service.positions(session, page.patient_id, utc_now())
    return page.render("patient/queue/_card.html", items=items, poll=POLL_SECONDS)
