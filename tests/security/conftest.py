"""Fixtures for the access-control tests: an SMS gateway on a local port that
records what it is sent (the real SMS channel posts to it), and helpers to log
patients in with a one-time code."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from carepoints.config import reset_settings


class Gateway:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def code_for(self, phone: str) -> str:
        """The code in the last SMS sent to `phone`."""
        with self.lock:
            texts = [m["text"] for m in self.messages if m["to"] == phone]
        assert texts, f"no SMS to {phone}"
        found = re.search(r"(\d{6})", texts[-1])
        assert found is not None
        return found.group(1)

    def count(self, phone: str) -> int:
        with self.lock:
            return sum(1 for m in self.messages if m["to"] == phone)


@contextmanager
def gateway_server() -> Iterator[tuple[Gateway, str]]:
    """A local SMS gateway recording what it is sent: (gateway, its URL)."""
    gateway = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with gateway.lock:
                gateway.messages.append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gateway, f"http://127.0.0.1:{server.server_address[1]}/sms"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sms(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    """A local SMS gateway; CAREPOINTS_SMS_GATEWAY_URL points at it for the test."""
    with gateway_server() as (gateway, url):
        monkeypatch.setenv("CAREPOINTS_SMS_GATEWAY_URL", url)
        reset_settings()
        yield gateway
        monkeypatch.delenv("CAREPOINTS_SMS_GATEWAY_URL")
        reset_settings()
