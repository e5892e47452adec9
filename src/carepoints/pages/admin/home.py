"""The programme admin's entry (GET /admin, role admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from carepoints.pages.web import Page, staff_page

router = APIRouter(include_in_schema=False)


@router.get("/admin")
def overview(page: Annotated[Page, Depends(staff_page("programme:write"))]) -> Response:
    return page.render("admin/home.html")
