"""The patient's home page (GET /): the entry, the login when signed out (API.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from carepoints.enrolment import service as enrolment
from carepoints.kit.time import utc_now
from carepoints.pages.web import Page, patient_page, reading

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(page: Annotated[Page, Depends(patient_page("points:read"))]) -> Response:
    with reading() as session:
        points = enrolment.points(session, page.patient_id, utc_now())
    return page.render("patient/home.html", tab="home", points=points)
