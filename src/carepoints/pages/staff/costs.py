"""The desk's cost estimate (/staff/costs, pricing:read: front desk, nurses, clinicians, admins,
auditors): the patient page's estimate (pages.patient.costs) for a patient standing at the desk —
search or pick a package, adjust quantities, switch to a cheaper equivalent — laid out as a sheet
that prints on its own (the menu and controls are left off the paper). Nothing is stored and no
patient is named."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from carepoints.kit.templating import local
from carepoints.kit.time import utc_now
from carepoints.pages.patient.costs import costs_view
from carepoints.pages.web import Page, staff_page

router = APIRouter(include_in_schema=False)


@router.get("/staff/costs")
def desk_costs(page: Annotated[Page, Depends(staff_page("pricing:read"))], request: Request) -> Response:
    """The estimate sheet with the price list beside it; the print button prints the sheet alone."""
    now = utc_now()
    view = costs_view(page, request, "/staff/costs", now, 15)
    return page.render("staff/costs.html", printed_at=local(now), **view)
