"""The desk's queue calls (/staff/queue, queue:call: front desk, nurses, clinicians of the
session's department, admins): choose one of today's sessions, then the big current number,
call next / recall / skip and the waiting list (masked names), refreshed by HTMX polling every
few seconds. `/staff/queue/{session}/display` is the waiting-room TV: big numbers, masked names,
no controls."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from carepoints.audit.service import Actor
from carepoints.kit.time import utc_now
from carepoints.pages.web import Page, reading, staff_page, writing
from carepoints.services.queue import service

router = APIRouter(include_in_schema=False)
_Call = Annotated[Page, Depends(staff_page("queue:call"))]
POLL_SECONDS = 4


def _actor(page: Page) -> Actor:
    assert page.principal is not None  # noqa: S101 - a signed-in page
    return page.principal.actor()


@router.get("/staff/queue")
def sessions(page: _Call) -> Response:
    """Today's sessions the signed-in user calls for."""
    with reading() as session:
        items = service.todays_sessions(session, _actor(page), utc_now())
    return page.render("staff/queue/sessions.html", sessions=items)


def _board(page: Page, session_id: str) -> dict[str, object]:
    with reading() as session:
        return service.board(session, session_id, _actor(page), utc_now())


@router.get("/staff/queue/{session_id}")
def desk(page: _Call, session_id: str) -> Response:
    """The desk: current number, the buttons and the waiting list (the board polls itself)."""
    return page.render("staff/queue/desk.html", b=_board(page, session_id), poll=POLL_SECONDS)


@router.get("/staff/queue/{session_id}/board")
def board(page: _Call, session_id: str) -> Response:
    """The board fragment (HTMX polling)."""
    return page.render("staff/queue/_board.html", b=_board(page, session_id), poll=POLL_SECONDS)


@router.post("/staff/queue/{session_id}/{verb}")
def act(page: _Call, session_id: str, verb: Literal["call-next", "recall", "skip"]) -> Response:
    """Call next, call again or skip; answers the refreshed board (HTMX) or back to the desk."""
    action = {"call-next": service.call_next, "recall": service.recall, "skip": service.skip}[verb]
    with writing() as session:
        action(session, session_id, _actor(page), utc_now())
    if page.htmx:
        return board(page, session_id)
    return page.redirect(f"/staff/queue/{session_id}")


@router.get("/staff/queue/{session_id}/display")
def display(page: _Call, session_id: str) -> Response:
    """The waiting-room display: the current number and the next few, masked names."""
    return page.render("staff/queue/display.html", b=_board(page, session_id), poll=POLL_SECONDS)
