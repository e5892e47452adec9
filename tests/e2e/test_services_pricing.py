"""Cost estimates (费用估算) in Chromium: a patient on a 390 × 844 phone in elderly mode picks a
package and a drug, sees the running estimate and the cheaper-equivalent hint, switches to it
(the accessibility check passes, nothing is wider than the phone); the desk's printable sheet; the
admin on a desktop uploads a price list, sees the preview of changes and of row errors, and
confirms; a PostgreSQL smoke run of the patient's estimate. Screenshots for review."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from carepoints.audit.service import Actor
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.services.pricing import service
from carepoints.services.pricing.schemas import EstimateCreate
from tests.e2e.conftest import Server
from tests.e2e.helpers import axe_check, capture, login_patient, login_staff, set_elderly, shot, submit
from tests.helpers import enrol
from tests.services.pricing.kit import institution

SAMPLE = Path(service.__file__).with_name("sample_catalogue.csv")


def _hospital(now: datetime) -> str:
    inst = institution(now, "e2e", "示范人民医院")
    with write_tx() as session:
        service.load_samples(session, inst, Actor.system("e2e"), now)
    return inst


def _expected(inst: str, items: list[tuple[str, int]], packages: list[str]) -> dict[str, Any]:
    body = EstimateCreate.model_validate({"institution_id": inst, "packages": packages,
                                          "items": [{"code": c, "qty": q} for c, q in items]})
    with read_tx() as session:
        return service.estimate(session, body, utc_now())["totals"]


def _patient_flow(phone: Any, server: Server, inst: str, name: str) -> None:
    phone.goto(f"{server.url}/me/costs")
    assert phone.locator("[data-notice=bill]").inner_text().strip().endswith("实际费用以医院收费为准")
    shot(phone, f"{name}-start")
    submit(phone, "[data-package=PKG_DM] [data-toggle-package]")
    assert phone.locator("[data-chosen-package=PKG_DM]").count() == 1
    phone.fill("#f-q", "氨氯地平")
    submit(phone, "[data-search] button[type=submit]")
    submit(phone, "[data-item=YP001] [data-add]")
    hint = phone.locator("[data-line=YP001] [data-hint]").inner_text()
    assert hint.startswith("同类可选: 苯磺酸氨氯地平片(集采)")
    assert "便宜 ¥95.14" in hint
    submit(phone, "[data-line=YP001] [data-inc]")
    want = _expected(inst, [("YP001", 2)], ["PKG_DM"])
    assert phone.locator("[data-total]").inner_text() == f"¥{want['total']}"
    assert phone.locator("[data-self-pay-total]").inner_text() == f"¥{want['self_pay']}"
    phone.locator("[data-estimate]").scroll_into_view_if_needed()
    shot(phone, f"{name}-estimate")
    submit(phone, "[data-line=YP001] [data-swap]")
    assert phone.locator("[data-line=YP002]").count() == 1
    assert phone.locator("[data-line=YP001]").count() == 0
    switched = _expected(inst, [("YP002", 2)], ["PKG_DM"])
    assert phone.locator("[data-total]").inner_text() == f"¥{switched['total']}"
    shot(phone, f"{name}-switched")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width


def test_a_patient_estimates_on_a_phone_in_elderly_mode(server: Server, phone: Any) -> None:
    now = utc_now()
    inst = _hospital(now)
    pid = enrol(now, phone="13900007701")
    login_patient(phone, server, "13900007701", pid, next_path="/me/costs")
    phone.goto(f"{server.url}/me/costs")
    capture(phone, server, "pricing-patient")  # normal and elderly, the elderly one checked by axe
    set_elderly(phone, server, True)
    assert phone.locator("body.elderly").count() == 1
    _patient_flow(phone, server, inst, "pricing-patient-elderly")
    axe_check(phone)
    font = phone.eval_on_selector("[data-self-pay-total]", "e => parseFloat(getComputedStyle(e).fontSize)")
    assert font >= 24, font


def test_the_desk_sheet_and_the_admin_import_on_a_desktop(server: Server, desktop: Any, tmp_path: Path) -> None:
    now = utc_now()
    inst = _hospital(now)
    login_staff(desktop, server, "admin")
    desktop.goto(f"{server.url}/staff/costs?item=JC005:1&item=YP005:1&package=PKG_HTN")
    assert desktop.locator("[data-print]").count() == 1
    assert desktop.locator("[data-line=YP005] [data-hint]").count() == 1
    want = _expected(inst, [("JC005", 1), ("YP005", 1)], ["PKG_HTN"])
    assert desktop.locator("[data-total]").inner_text() == f"¥{want['total']}"
    axe_check(desktop)
    shot(desktop, "pricing-desk-sheet")
    desktop.emulate_media(media="print")
    assert desktop.locator("nav.cp-side").is_hidden()  # the paper holds the sheet alone
    assert desktop.locator("[data-search]").is_hidden()
    shot(desktop, "pricing-desk-print")
    desktop.emulate_media(media="screen")

    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    changed = [re.sub(r",98\.50,", ",88.00,", ln) for ln in lines if not ln.startswith("QT001,")]
    changed.append("ZL006,推拿(局部),Massage (local),治疗,次,35.00,乙,,,1,,,")
    bad = [*changed, "BAD01,坏行,,飞行,次,abc,丁,,,1,,,"]
    (tmp_path / "bad.csv").write_text("\n".join(bad) + "\n", encoding="utf-8")
    (tmp_path / "v2.csv").write_text("\n".join(changed) + "\n", encoding="gb18030")

    desktop.goto(f"{server.url}/admin/pricing?institution_id={inst}")
    assert desktop.locator("tr[data-item]").count() == 49
    shot(desktop, "pricing-admin-list")
    desktop.set_input_files("#f-file", str(tmp_path / "bad.csv"))
    submit(desktop, "[data-import] button[type=submit]")
    assert desktop.locator("table[data-table=errors] tr[data-row]").count() == 3  # category, price, class
    assert desktop.locator("[data-confirm]").count() == 0
    axe_check(desktop)
    shot(desktop, "pricing-admin-preview-errors")

    desktop.goto(f"{server.url}/admin/pricing?institution_id={inst}")
    desktop.set_input_files("#f-file", str(tmp_path / "v2.csv"))
    submit(desktop, "[data-import] button[type=submit]")
    assert desktop.locator("[data-count=created]").inner_text().endswith("1")
    assert desktop.locator("tr[data-change=updated][data-code=YP001]").count() == 1
    assert desktop.locator("tr[data-change=deactivated][data-code=QT001]").count() == 1
    axe_check(desktop)
    shot(desktop, "pricing-admin-preview")
    submit(desktop, "[data-confirm] button[type=submit]")
    assert "导入完成" in desktop.locator("#flash").inner_text()
    assert desktop.locator("tr[data-item=ZL006]").count() == 1
    with read_tx() as session:
        found = service.items(session, inst, utc_now(), q="YP001")["items"]
    assert found[0]["price"] == "88.00"
    shot(desktop, "pricing-admin-imported")


def test_pg_smoke_estimate(pg_server: Server, phone: Any) -> None:
    now = utc_now()
    inst = _hospital(now)
    pid = enrol(now, phone="13900007702")
    login_patient(phone, pg_server, "13900007702", pid, next_path="/me/costs")
    phone.goto(f"{pg_server.url}/me/costs?item=JC009:1")
    want = _expected(inst, [("JC009", 1)], [])
    assert phone.locator("[data-self-pay-total]").inner_text() == f"¥{want['self_pay']}"
    assert want["self_pay"] == "110.00"  # 乙 with its own 20%
