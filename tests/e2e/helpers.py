"""What browser tests share: signing in through the real login pages, screenshots in
normal and elderly mode, and the accessibility check (axe-core, vendored as a test asset)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyotp

from carepoints.config import get_settings
from carepoints.kit.db import read_tx
from carepoints.kit.time import utc_now
from carepoints.security import otp
from tests.e2e.conftest import SCREENSHOTS, Server
from tests.pages.helpers import _totp_secret, staff_user

AXE = Path(__file__).parent / "assets" / "axe.min.js"

__all__ = ["AXE", "axe_check", "capture", "login_patient", "login_staff", "set_elderly", "shot", "staff_user", "submit"]


def login_patient(page: Any, server: Server, phone: str, patient_id: str | None = None,
                  next_path: str = "/", shots: str | None = None) -> None:
    """Sign in with the phone's one-time code through /login (the code read as the dev inbox does;
    at most one code per phone per minute). `shots`: a name prefix for screenshots of each step."""
    page.goto(f"{server.url}/login?next={next_path}")
    if shots:
        shot(page, f"{shots}-phone")
    page.fill("#f-phone", phone)
    submit(page, "button[type=submit]")
    page.wait_for_selector("#f-code")
    if shots:
        shot(page, f"{shots}-code")
    if server.sms is not None:  # PostgreSQL: the code went to the local SMS gateway
        code = server.sms.code_for(phone)
    else:
        with read_tx() as session:
            code = otp.dev_code(session, phone, utc_now(), get_settings())
    assert code, "no open login code (is CAREPOINTS_DEV_OTP on?)"
    page.fill("#f-code", code)
    submit(page, "form[action='/login'] button[type=submit]")
    if shots and page.locator("button[name=patient_id]").count():
        shot(page, f"{shots}-choose")
    if patient_id is not None and page.locator(f"button[name=patient_id][value='{patient_id}']").count():
        submit(page, f"button[name=patient_id][value='{patient_id}']")


def login_staff(page: Any, server: Server, role: str, **kw: Any) -> dict[str, Any]:
    """A new staff user of `role`, signed in through /staff/login (an admin with the authenticator code)."""
    user = staff_user(role, **kw)
    page.goto(f"{server.url}/staff/login")
    page.fill("#f-username", user["username"])
    page.fill("#f-password", user["password"])
    if user["totp"]:
        page.fill("#f-otp", pyotp.TOTP(_totp_secret(user["totp"])).now())
    submit(page, "form[action='/staff/login'] button[type=submit]")
    return user


def submit(page: Any, selector: str) -> None:
    """Click a control that submits a form (or follows a link) and wait for the next page."""
    with page.expect_navigation():
        page.click(selector)


def shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def set_elderly(page: Any, server: Server, on: bool) -> None:
    """Switch elderly mode through the settings page (it is stored for the patient)."""
    back = page.url
    page.goto(f"{server.url}/me/settings")
    pressed = page.get_attribute("[data-elderly-toggle]", "aria-pressed") == "true"
    if pressed != on:
        submit(page, "[data-elderly-toggle]")
    page.goto(back)


def capture(page: Any, server: Server, name: str, *, axe: bool = True) -> None:
    """Screenshots of the current patient page in normal and elderly mode (`name`.png and
    `name`-elderly.png); in elderly mode the page must pass the accessibility check."""
    shot(page, name)
    set_elderly(page, server, True)
    assert page.locator("body.elderly").count() == 1
    if axe:
        axe_check(page)
    shot(page, f"{name}-elderly")
    set_elderly(page, server, False)


def axe_check(page: Any) -> list[dict[str, Any]]:
    """Run axe-core on the page: no serious or critical violations (the minor ones are returned)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await window.axe.run(document, {resultTypes: ['violations']})")
    bad = [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]
    assert not bad, _describe(bad)
    return list(result["violations"])


def _describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        targets = [" ".join(n.get("target", [])) for n in v.get("nodes", [])[:5]]
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} — {targets}")
    return "\n".join(lines)


def px(page: Any, selector: str, prop: str = "fontSize") -> float:
    """A computed CSS length of the first element matching `selector`, in px."""
    value = page.eval_on_selector(selector, f"e => getComputedStyle(e).{prop}")
    m = re.match(r"([0-9.]+)", str(value))
    return float(m.group(1)) if m else 0.0
