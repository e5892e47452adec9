"""Staff sign-in (username + password, and an administrator's authenticator code), sign-out,
and the console's overview (GET /staff)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import Response

from carepoints.config import get_settings
from carepoints.kit.time import utc_now
from carepoints.pages.web import STAFF, Page, anonymous, reading, safe_next, staff_page, writing
from carepoints.security import service, staff
from carepoints.security.deps import forget

router = APIRouter(include_in_schema=False)
Anonymous = Annotated[Page, Depends(anonymous(STAFF))]


@router.get("/staff/login")
def login_form(page: Anonymous, next: str | None = Query(None, max_length=500)) -> Response:
    if page.principal is not None and page.principal.kind == "staff":
        return page.redirect(safe_next(next, _home(page)))
    return page.render("staff/login.html", next=safe_next(next, ""), username="")


def _home(page: Page) -> str:
    return "/admin" if page.principal is not None and page.principal.can("programme:write") else "/staff"


@router.post("/staff/login")
def login(page: Anonymous, username: Annotated[str, Form(max_length=64)],
          password: Annotated[str, Form(max_length=200)], otp: Annotated[str | None, Form(max_length=12)] = None,
          next: Annotated[str, Form(max_length=500)] = "") -> Response:
    settings = get_settings()
    with writing() as session:  # failed attempts are counted even though the login fails
        outcome = staff.login(session, username.strip(), password, (otp or "").strip() or None, utc_now(), settings)
    if not isinstance(outcome, staff.Issued):
        return page.render("staff/login.html", status=outcome.status_code, next=next, username=username,
                           error=outcome.to_dict(), needs_otp=outcome.code.startswith("auth.otp"))
    page.sign_in(outcome.token)
    with reading() as session:
        page.principal = service.authenticate(session, outcome.token, settings.secret_key)
    return page.redirect(safe_next(next, _home(page)))


@router.post("/staff/logout")
def logout(page: Anonymous) -> Response:
    if page.principal is not None and page.principal.session_id is not None:
        with writing() as session:
            staff.logout(session, page.principal.session_id, utc_now())
        forget(f"{page.data['t']}")
    page.sign_out()
    return page.redirect("/staff/login")


@router.get("/staff")
def overview(page: Annotated[Page, Depends(staff_page())]) -> Response:
    return page.render("staff/home.html")
