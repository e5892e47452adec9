"""A stub WeChat OAuth server on loopback (ThreadingHTTPServer in a thread) serving
GET /sns/oauth2/access_token the way api.weixin.qq.com does, and the settings that point
carepoints at it.

Codes: `ok-<openid>` or `ok-<openid>~<n>` answers that openid (once: a second use is errcode 40163, as WeChat
does), `bad` answers errcode 40029, `busy` errcode -1, `hang` sleeps past the client's timeout,
`boom` answers HTTP 500, `html` answers a non-JSON page."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from carepoints.config import reset_settings

APP_ID = "wx5e1f0c0ffee00001"
APP_SECRET = "stub-app-secret-0123456789abcdef"
REDIRECT = "https://h5.hospital.example/wechat/back"


@dataclass
class Stub:
    base: str
    used: set[str] = field(default_factory=set)
    calls: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(stub_ref: list[Stub]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            stub = stub_ref[0]
            url = urlparse(self.path)
            if url.path != "/sns/oauth2/access_token":
                self._send(404, b'{"errcode":404}')
                return
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            with stub.lock:
                stub.calls.append(q)
            if q.get("appid") != APP_ID or q.get("secret") != APP_SECRET:
                self._send(200, b'{"errcode":40125,"errmsg":"invalid appsecret"}')
                return
            if q.get("grant_type") != "authorization_code":
                self._send(200, b'{"errcode":40002,"errmsg":"invalid grant_type"}')
                return
            code = q.get("code", "")
            if code == "hang":
                time.sleep(2.0)
                self._send(200, b'{"openid":"late"}')
                return
            if code == "boom":
                self._send(500, b"internal error", "text/plain")
                return
            if code == "html":
                self._send(200, b"<html>busy</html>", "text/html")
                return
            if code == "busy":
                self._send(200, b'{"errcode":-1,"errmsg":"system error"}')
                return
            if not code.startswith("ok-"):
                self._send(200, b'{"errcode":40029,"errmsg":"invalid code"}')
                return
            with stub.lock:
                reused = code in stub.used
                stub.used.add(code)
            if reused:
                self._send(200, b'{"errcode":40163,"errmsg":"code been used"}')
                return
            doc = {"access_token": "ACCESS", "expires_in": 7200, "refresh_token": "REFRESH",
                   "openid": code[3:].split("~")[0], "scope": "snsapi_base"}
            self._send(200, json.dumps(doc).encode())

    return Handler


@pytest.fixture(scope="session")
def stub_server() -> Iterator[Stub]:
    ref: list[Stub] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref))
    server.daemon_threads = True
    ref.append(Stub(base=f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ref[0]
    server.shutdown()
    server.server_close()


@pytest.fixture
def stub(stub_server: Stub, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stub]:
    """WeChat configured against the stub (fresh code memory); masked names wired as the app
    would wire them."""
    stub_server.used.clear()
    stub_server.calls.clear()
    monkeypatch.setenv("CAREPOINTS_WECHAT_APP_ID", APP_ID)
    monkeypatch.setenv("CAREPOINTS_WECHAT_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("CAREPOINTS_WECHAT_API_BASE", stub_server.base)
    monkeypatch.setenv("CAREPOINTS_WECHAT_REDIRECT_ALLOW", f"{REDIRECT}, https://h5.hospital.example/other")
    monkeypatch.setenv("CAREPOINTS_WECHAT_TIMEOUT_SECONDS", "0.5")
    reset_settings()
    yield stub_server
    monkeypatch.undo()
    reset_settings()
