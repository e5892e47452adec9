"""为您推荐 for the patient: the home page's block (/me/recommendations/card, loaded by HTMX into
the home page: a few suggestions, each with "为什么推荐" and its reason; nothing when switched
off; fewer in elderly mode), the full list (/me/recommendations) with the careful note, and the
switch (/me/recommendations/switch, on the settings page: the signed-in patient's own, never
whom they act for). The same services and permissions as the API: recommendations:read for the
patient shown (a proxy with view), recommendations:write for the switch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from carepoints.kit.time import utc_now
from carepoints.pages.web import PATIENT, Page, PageRule, patient_page, reading, safe_next, writing
from carepoints.services.recommend import service
from carepoints.services.recommend.errors import SwitchValueError

router = APIRouter(include_in_schema=False)

Reader = Annotated[Page, Depends(patient_page("recommendations:read"))]
# the switch is the signed-in patient's own setting, even while they act for someone
Switcher = Annotated[Page, Depends(PageRule(PATIENT, ("recommendations:write",), itself=True))]

KINDS: dict[str, tuple[str, str, str]] = {
    "task": ("任务", "Task", "check"), "content": ("健康知识", "Learning", "book"),
    "lecture": ("健康讲座", "Lecture", "star"), "service": ("线上服务", "Online service", "calendar")}
ALL = 20  # the full list shows every suggestion that fits (the home block: the rules' few)
# where the switch's form may send the patient back to
_BACK = ("/me/settings", "/me/recommendations")


def _items(page: Page, doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for r in doc["items"]:
        zh, en, icon = KINDS.get(r["kind"], KINDS["task"])
        out.append({**r, "kind_name": page.tr(zh, en), "icon": icon})
    return out


@router.get("/me/recommendations/card")
def card(page: Reader) -> Response:
    """The home page's 为您推荐 block (an empty, hidden element when off or when nothing fits)."""
    with reading() as session:
        doc = service.recommendations(session, page.patient_id, utc_now(), elderly=page.elderly)
    return page.render("patient/recommend/_card.html", doc=doc, items=_items(page, doc))


@router.get("/me/recommendations")
def recommendations(page: Reader) -> Response:
    """Every suggestion with its reason, the careful note, and (for oneself) the switch."""
    with reading() as session:
        doc = service.recommendations(session, page.patient_id, utc_now(), limit=ALL)
        own = None if page.acting else service.setting(session, page.patient_id)
    return page.render("patient/recommend/index.html", tab="home", back="/", doc=doc, items=_items(page, doc),
                       own=own, next_path="/me/recommendations")


def _switch(page: Page, **values: Any) -> Response:
    assert page.principal is not None  # noqa: S101 - signed in
    with reading() as session:
        own = service.setting(session, page.principal.id)
    return page.render("patient/recommend/_switch.html", own=own, **values)


@router.get("/me/recommendations/switch")
def switch_form(page: Switcher) -> Response:
    """The settings page's 为您推荐 switch (the signed-in patient's own)."""
    return _switch(page, next_path="/me/settings")


@router.post("/me/recommendations/switch")
def switch(page: Switcher, enabled: Annotated[str, Form(max_length=3)] = "",
           next: Annotated[str, Form(max_length=200)] = "/me/settings") -> Response:
    """Turn one's own recommendations on (enabled=1) or off (enabled=0): stored and audited."""
    assert page.principal is not None  # noqa: S101 - signed in
    target = safe_next(next, "/me/settings")
    target = target if target in _BACK else "/me/settings"
    if enabled not in ("0", "1"):
        raise SwitchValueError()  # the surface's error page (a fragment for HTMX)
    with writing() as session:
        service.switch(session, page.principal.id, enabled == "1", page.principal.actor(), utc_now())
    if page.htmx:
        return _switch(page, next_path=target)
    return page.redirect(target)
