"""Test kit: a real HTTP gateway stub on loopback, settings switches, and readers
of the notification tables."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from sqlalchemy import Table, select

from carepoints.config import reset_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.outbox import OutboxMessage, enqueue_many
from carepoints.notifications.models import Delivery, InboxMessage
from carepoints.notifications.tasks import send_notifications

_outbox: Table = OutboxMessage.__table__  # type: ignore[assignment]
_inbox: Table = InboxMessage.__table__  # type: ignore[assignment]
_deliveries: Table = Delivery.__table__  # type: ignore[assignment]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Gateway:
    """A real HTTP server on 127.0.0.1 that records every request; `script` holds the
    statuses to answer next (then 200)."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    gate: threading.Event | None = None  # when set up, requests wait for it before answering
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self) -> int:
        with self.lock:
            return self.script.pop(0) if self.script else 200

    def bodies(self) -> list[Any]:
        """Bodies of the requests answered 2xx... and every other one: all received."""
        return [r.json for r in self.received]


def _handler(gw: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            gw.arrived.set()
            if gw.gate is not None:
                gw.gate.wait(timeout=30)
            status = gw.answer()
            with gw.lock:
                gw.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def start_gateway() -> Gateway:
    gw = Gateway(server=ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler))
    gw.server.RequestHandlerClass = _handler(gw)
    threading.Thread(target=gw.server.serve_forever, daemon=True).start()
    return gw


def stop_gateway(gw: Gateway) -> None:
    gw.server.shutdown()
    gw.server.server_close()


def configure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Set CAREPOINTS_<NAME> variables and forget cached settings."""
    for name, value in env.items():
        monkeypatch.setenv(f"CAREPOINTS_{name.upper()}", value)
    reset_settings()


def with_sms(monkeypatch: pytest.MonkeyPatch, gw: Gateway, **env: str) -> None:
    configure(monkeypatch, sms_gateway_url=gw.url + "/sms", sms_gateway_token="sms-token", **env)


def enqueue(now: datetime, topic: str, payload: dict[str, Any]) -> None:
    with write_tx() as session:
        enqueue_many(session.connection(), [(topic, payload.get("patient_id"), payload)], now)


def run(now: datetime) -> dict[str, Any]:
    return send_notifications(now)


def outbox_rows(topic: str | None = None) -> list[dict[str, Any]]:
    stmt = select(_outbox).order_by(_outbox.c.id)
    if topic is not None:
        stmt = stmt.where(_outbox.c.topic == topic)
    with read_tx() as session:
        return [dict(r) for r in session.connection().execute(stmt).mappings()]


def inbox_rows(**where: str) -> list[dict[str, Any]]:
    stmt = select(_inbox).order_by(_inbox.c.id)
    for k, v in where.items():
        stmt = stmt.where(_inbox.c[k] == v)
    with read_tx() as session:
        return [dict(r) for r in session.connection().execute(stmt).mappings()]


def delivery_rows(**where: str) -> list[dict[str, Any]]:
    stmt = select(_deliveries).order_by(_deliveries.c.id)
    for k, v in where.items():
        stmt = stmt.where(_deliveries.c[k] == v)
    with read_tx() as session:
        return [dict(r) for r in session.connection().execute(stmt).mappings()]
