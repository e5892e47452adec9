"""Browser tests: the app served by uvicorn on a free loopback port (in a thread) over a
fresh SQLite database, driven by Playwright with Debian's system Chromium. Without
Chromium the tests skip with a reason; in CI (CI set) they fail instead. Every request a
page makes is recorded, and a context's close asserts that each went to this machine (the
pages load nothing from outside at run time)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from carepoints import bootstrap
from carepoints.config import reset_settings
from carepoints.kit.db import dispose_engines

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
SCREENSHOTS = Path(os.environ.get("CAREPOINTS_SCREENSHOTS", "/tmp/screens"))  # noqa: S108 - for review, not secrets


@dataclass
class Server:
    url: str
    sms: Any = None  # the local SMS gateway of a PostgreSQL server (no dev inbox there)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serving(url: str, prepare: bool = True) -> Iterator[Server]:
    """The real app (create_asgi) on `url`, with the dev inbox of login codes on (SQLite) and no
    quiet hours for messages."""
    import uvicorn

    from carepoints.app import create_asgi

    saved = {k: os.environ.get(k) for k in ("CAREPOINTS_DATABASE_URL", "CAREPOINTS_DEV_OTP",
                                              "CAREPOINTS_NOTIFY_QUIET_HOURS")}
    os.environ["CAREPOINTS_DATABASE_URL"] = url
    os.environ["CAREPOINTS_DEV_OTP"] = "1" if url.startswith("sqlite") else "0"
    os.environ["CAREPOINTS_NOTIFY_QUIET_HOURS"] = ""
    dispose_engines()
    reset_settings()
    if prepare:
        bootstrap.prepare()
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_asgi(), host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        threading.Event().wait(0.05)
    try:
        yield Server(f"http://127.0.0.1:{port}")
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        dispose_engines()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """The real app on a fresh, migrated and seeded SQLite database."""
    with _serving(f"sqlite:///{tmp_path / 'e2e.db'}") as srv:
        yield srv


@pytest.fixture
def pg_server(pg_database: str) -> Iterator[Server]:
    """The real app on a fresh (truncated, re-seeded) PostgreSQL database: the smoke runs."""
    from sqlalchemy import text

    from carepoints.kit.db import get_engine
    from carepoints.models import metadata

    os.environ["CAREPOINTS_DATABASE_URL"] = pg_database
    dispose_engines()
    reset_settings()
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with get_engine().begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    bootstrap.seed()
    from tests.security.conftest import gateway_server

    with gateway_server() as (gateway, sms_url):
        os.environ["CAREPOINTS_SMS_GATEWAY_URL"] = sms_url
        try:
            with _serving(pg_database, prepare=False) as srv:
                srv.sms = gateway
                yield srv
        finally:
            os.environ.pop("CAREPOINTS_SMS_GATEWAY_URL", None)
            reset_settings()


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"Chromium not installed at {CHROMIUM} (apt-get install -y --no-install-recommends chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def browser_context(browser: Any, **options: Any) -> Iterator[Any]:
    """A browser context whose every request's host is recorded; when the test is done with it,
    each must have been this machine (data:, blob: and about: URLs load nothing)."""
    context = browser.new_context(**options)
    hosts: set[str] = set()

    def seen(request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss"):
            hosts.add(parts.hostname or "")

    context.on("request", seen)
    try:
        yield context
    finally:
        context.close()
    outside = sorted(hosts - LOCAL_HOSTS)
    assert not outside, f"the pages loaded something from outside this machine: {outside}"


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A page in a 390 × 844 phone viewport."""
    # bypass_csp: the accessibility check (axe-core) is injected as a script the pages' CSP would refuse
    with browser_context(browser, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                         locale="zh-CN", bypass_csp=True) as context:
        yield context.new_page()


@pytest.fixture
def desktop(browser: Any) -> Iterator[Any]:
    """A page in a 1280 × 800 desktop viewport (staff console, programme admin)."""
    with browser_context(browser, viewport={"width": 1280, "height": 800}, locale="zh-CN",
                         bypass_csp=True) as context:
        yield context.new_page()
