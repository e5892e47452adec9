"""Queue calls (候诊提醒) in Chromium: three patients checked in for today's session; the third, on
a 390 px phone in elderly mode, watches "我的预约"; a front-desk user of the department on a desktop
calls the next patient at /staff/queue, and the phone's card shows the new current number and
"您前面还有 1 位" without reloading (HTMX polling); then the waiting-room display shows the big
number and masked names only. Screenshots of every step; the accessibility check on each page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from carepoints.audit.service import Actor
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.services.queue import service as queue
from tests.e2e.conftest import Server
from tests.e2e.helpers import AXE, axe_check, login_patient, login_staff, px, set_elderly, shot
from tests.helpers import enrol
from tests.services.queue.world import Clinic

ADMIN = Actor("api_key", "k-e2e-queue", "admin")
NAMES = ("钱玉华", "孙建国", "周桂兰")


def axe_card(page: Any) -> None:
    """axe-core on the queue card only (the rest of "my appointments" is the booking pages' own)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await window.axe.run('#queue-card', {resultTypes: ['violations']})")
    assert not [v["id"] for v in result["violations"] if v.get("impact") in ("serious", "critical")]


def test_a_desk_call_moves_the_patients_card_and_the_display(server: Server, phone: Any, desktop: Any) -> None:
    c = Clinic()
    mine = enrol(utc_now() - timedelta(days=2), phone="13812347101", name=NAMES[2], birth_date="1962-03-04")
    appts = [c.book(name=NAMES[0]), c.book(name=NAMES[1]), c.book(mine)]
    for a in appts:
        c.check_in(a)
    sid = c.sess["id"]

    login_patient(phone, server, "13812347101", next_path="/me/appointments")
    set_elderly(phone, server, True)
    phone.goto(f"{server.url}/me/appointments")
    card = phone.locator(f"[data-queue='{appts[2]['id']}']")
    card.wait_for()
    assert card.get_attribute("data-ahead") == "2"
    assert "您前面还有 2 位" in card.inner_text()
    assert px(phone, "[data-queue]") >= 24  # large in elderly mode
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    axe_card(phone)
    shot(phone, "queue-patient-before-elderly")
    phone.evaluate("window.__same_page = true")  # gone if the page reloads

    user = login_staff(desktop, server, "frontdesk")
    with write_tx() as s:
        queue.assign_desk(s, c.department, user["id"], ADMIN, utc_now())
    desktop.goto(f"{server.url}/staff/queue")
    assert desktop.locator('nav a[aria-current="page"]').all_inner_texts() == ["叫号"]
    axe_check(desktop)
    shot(desktop, "queue-staff-sessions")
    desktop.click(f"[data-session='{sid}'] a.cp-btn")
    desktop.wait_for_selector("[data-call-next]")
    assert desktop.locator("[data-waiting] tr[data-seq]").count() == 3
    text = desktop.locator("[data-waiting]").inner_text()
    assert not any(n in text for n in NAMES)  # masked: 钱**
    assert "钱**" in text
    axe_check(desktop)
    shot(desktop, "queue-staff-desk")
    desktop.click("[data-call-next]")  # HTMX: the board is swapped in place
    first = appts[0]["seq"]
    desktop.wait_for_selector(f"#queue-board [data-current='{first}']")
    assert desktop.locator("[data-waiting] tr[data-seq]").count() == 2
    assert not desktop.locator("[data-recall]").is_disabled()
    shot(desktop, "queue-staff-called")

    # the phone follows within a polling interval or two, on the same page
    phone.wait_for_selector(f"[data-queue='{appts[2]['id']}'][data-ahead='1']", timeout=20_000)
    assert phone.evaluate("window.__same_page === true")
    assert f"当前叫号 {first} · 您前面还有 1 位" in card.inner_text()
    axe_card(phone)
    shot(phone, "queue-patient-after-elderly")

    desktop.goto(f"{server.url}/staff/queue/{sid}/display")
    now = desktop.locator(f".now[data-current='{first}']")
    assert now.inner_text().split()[0] == str(first)
    assert px(desktop, ".now") >= 120  # readable across the waiting room
    tv = desktop.locator("#tv").inner_text()
    assert not any(n in tv for n in NAMES)
    assert "孙**" in tv
    assert "周**" in tv
    assert desktop.locator("#tv li[data-seq]").count() == 2
    axe_check(desktop)
    shot(desktop, "queue-display")
