"""The desk's queue page, the waiting-room display and the patient's queue card, over HTTP on
SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from carepoints.kit.templating import render
from carepoints.security.service import Principal
from tests.conftest import Db
from tests.pages.helpers import patient_client, staff_client
from tests.services.queue.world import Clinic


def test_desk_calls_and_the_patient_card_follows(db: Db) -> None:
    c = Clinic()
    appts = [c.book() for _ in range(3)]
    for a in appts:
        c.check_in(a)
    sid = c.sess["id"]
    desk, _user = staff_client("admin")
    r = desk.get("/staff/queue")
    assert r.status_code == 200, r.text[:800]
    assert f'data-session="{sid}"' in r.text
    r = desk.get(f"/staff/queue/{sid}")
    assert r.status_code == 200, r.text[:800]
    assert 'data-current=""' in r.text
    assert r.text.count("data-seq=") == 3
    # the menu marks 叫号 only: a section is active on its own path and below it, not on a longer name
    assert r.text.count('aria-current="page"') == 1
    assert '<a href="/staff/queue" aria-current="page">' in r.text
    assert "测试患者" not in r.text  # masked: 测*者

    mine = appts[2]
    card = patient_client(mine["patient_id"], elderly=True)
    r = card.get("/me/queue/card")
    assert r.status_code == 200, r.text[:800]
    assert 'data-ahead="2"' in r.text
    assert "您前面还有 2 位" in r.text

    r = desk.submit(f"/staff/queue/{sid}/call-next", htmx=True)
    assert r.status_code == 200, r.text[:800]
    assert f'data-current="{appts[0]["seq"]}"' in r.text
    r = card.get("/me/queue/card")
    assert f"当前叫号 {appts[0]['seq']} · 您前面还有 1 位" in r.text
    assert "font-size:1.6rem" in r.text  # large in elderly mode

    r = desk.get(f"/staff/queue/{sid}/display")
    assert r.status_code == 200
    assert f'data-current="{appts[0]["seq"]}"' in r.text
    assert "测试患者" not in r.text

    other = patient_client(appts[0]["patient_id"]).get("/me/queue/card").text
    assert "data-called" in other  # the called patient: go in now
    assert mine["id"] not in other  # their own card only


def test_desk_of_another_department_is_refused(db: Db) -> None:
    c = Clinic()
    nurse, _user = staff_client("nurse")
    r = nurse.get("/staff/queue")
    assert r.status_code == 200
    assert "data-no-sessions" in r.text
    r = nurse.get(f"/staff/queue/{c.sess['id']}")
    assert r.status_code == 403
    r = nurse.submit(f"/staff/queue/{c.sess['id']}/call-next")
    assert r.status_code == 403
    moderator, _ = staff_client("moderator")
    assert moderator.get("/staff/queue").status_code == 403


@pytest.mark.parametrize(("path", "active"), [
    ("/staff/queue", ["/staff/queue"]), ("/staff/queue/s1/display", ["/staff/queue"]), ("/staff/queues", []),
    ("/staff/queue-x", []), ("/staff/followups", ["/staff/followups"]), ("/staff", ["/staff"])])
def test_the_menu_marks_only_the_section_of_the_path(path: str, active: list[str]) -> None:
    """A section is active on its own path and below it, never on a longer name it is a prefix of."""
    html = render("staff/_nav.html", lang="zh", path=path, principal=Principal("staff", "u-nav", "admin", "管理员"))
    assert re.findall(r'<a href="([^"]+)" aria-current="page">', html) == active
    assert 'href="/staff/queue"' in html
