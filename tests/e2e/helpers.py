"""What browser tests share: signing in through the real login pages, screenshots in
normal and elderly mode, and the accessibility check (axe-core, vendored as a test asset)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyotp

from carepoints.config import get_settings
from carepoints.kit.db import read_tx
from carepoints.kit.time import utc_now
from carepoints.security import otp
from tests.e2e.conftest import SCREENSHOTS, Server
from tests.pages.helpers import _totp_secret, staff_user

AXE = Path(__file__).parent / "assets" / "axe.min.js"

__all__ = ["AXE", "assert_elderly_sizes", "axe_check", "capture", "elderly_misses", "login_patient", "login_staff",
           "miss_line", "set_elderly", "shot", "staff_user", "submit"]

# Elderly mode's floor (issue 8): body text >= 18 px, touch targets >= 44 x 44 px.
ELDERLY_TEXT_PX = 18
ELDERLY_TARGET_PX = 44


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
    if not urlsplit(page.url).path.startswith(("/staff", "/admin")):
        assert_elderly_sizes(page)
    shot(page, f"{name}-elderly")
    set_elderly(page, server, False)


def axe_check(page: Any) -> list[dict[str, Any]]:
    """Run axe-core on the page: no serious or critical violations (the minor ones are returned)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # evaluated over the DevTools protocol, not a <script>: works under the pages' real CSP too
        page.evaluate(_axe_source() + "\n;typeof window.axe")
    result = page.evaluate("async () => await window.axe.run(document, {resultTypes: ['violations']})")
    bad = [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]
    assert not bad, _describe(bad)
    return list(result["violations"])


@functools.cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


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


# Every visible control smaller than the target floor and every visible text smaller than the type
# floor. Exempt, each for a reason:
# - an inline link inside running text (a sentence with words of its own around the link): WCAG 2.5.5/2.5.8's
#   inline exception, the size being set by the line of text;
# - a checkbox / radio measured with its label (the label is part of the target: a tap on it toggles);
# - screen-reader-only content (1 px clipped boxes) and the skip link while it is off screen;
# - text inside <svg> (chart axis labels, icons: drawn figures, not body text) and form control values.
_MISSES_JS = """([minText, minTarget]) => {
  const visible = (el) => {
    if (!el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) return false;
    const r = el.getBoundingClientRect();
    return r.width > 1 && r.height > 1 && r.right > 0 && r.bottom > -window.scrollY;
  };
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    const cls = (el.getAttribute('class') || '').trim().split(/\\s+/).filter(Boolean).slice(0, 2);
    if (cls.length) s += '.' + cls.join('.');
    const parent = el.closest('[class]:not(body)');
    if (parent && parent !== el) s = (parent.getAttribute('class') || '').split(' ')[0] + ' > ' + s;
    return s;
  };
  const inlineInText = (el) => {
    if (el.tagName !== 'A' || getComputedStyle(el).display !== 'inline') return false;
    const block = el.parentElement;
    if (!block) return false;
    const own = (block.textContent || '').replace(el.textContent || '', '').replace(/[\\s·|,,。.::;;()()]/g, '');
    return own.length >= 2;
  };
  const box = (el) => {
    const r = el.getBoundingClientRect();
    let w = r.width, h = r.height;
    if (el.tagName === 'INPUT' && (el.type === 'checkbox' || el.type === 'radio') && el.labels) {
      for (const label of el.labels) {
        const l = label.getBoundingClientRect();
        const left = Math.min(r.left, l.left), right = Math.max(r.right, l.right);
        const top = Math.min(r.top, l.top), bottom = Math.max(r.bottom, l.bottom);
        w = Math.max(w, right - left); h = Math.max(h, bottom - top);
      }
    }
    return [w, h];
  };
  const out = [];
  for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, summary, textarea')) {
    if (!visible(el) || inlineInText(el)) continue;
    if (el.classList.contains('skip')) continue;
    const [w, h] = box(el);
    if (w < minTarget - 0.5 || h < minTarget - 0.5) {
      const text = (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 30);
      out.push({kind: 'target', what: describe(el), text: text, width: Math.round(w), height: Math.round(h)});
    }
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || !n.textContent.trim() || seen.has(el)) continue;
    if (el.closest('script, style, noscript, template, svg, option, textarea')) continue;
    if (!visible(el)) continue;
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < minText - 0.05) {
      seen.add(el);
      out.push({kind: 'text', what: describe(el), text: n.textContent.trim().slice(0, 30), size: size});
    }
  }
  return out;
}"""


def elderly_misses(page: Any) -> list[dict[str, Any]]:
    """What on the current page is below elderly mode's floor (see _MISSES_JS for the exemptions)."""
    return list(page.evaluate(_MISSES_JS, [ELDERLY_TEXT_PX, ELDERLY_TARGET_PX]))


def assert_elderly_sizes(page: Any) -> None:
    """Elderly mode on the current patient page: every visible text >= 18 px and every visible
    a / button / input / select / summary / textarea >= 44 x 44 px; the failure lists them all."""
    assert page.locator("body.elderly").count() == 1, f"not in elderly mode: {page.url}"
    misses = elderly_misses(page)
    assert not misses, f"elderly mode below {ELDERLY_TEXT_PX} px text / {ELDERLY_TARGET_PX} px targets on " \
        f"{urlsplit(page.url).path}:\n" + "\n".join(miss_line(m) for m in misses)


def miss_line(m: dict[str, Any]) -> str:
    """One miss in words: what, how big, its text (to find it on the page)."""
    if m["kind"] == "target":
        return f"  target {m['width']}x{m['height']} px: {m['what']} \"{m['text']}\""
    return f"  text {m['size']} px: {m['what']} \"{m['text']}\""
