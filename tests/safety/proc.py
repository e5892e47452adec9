"""The installed `carepoints` command and a real `carepoints serve` as
subprocesses, on a database of the test's own (a SQLite file in a temporary
directory, or a fresh PostgreSQL database)."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from carepoints.kit.db import make_engine
from tests.conftest import PG_URL

EXE = str(Path(sys.executable).parent / "carepoints")
PII_KEY = "safety-test-pii-key-0123456789-abcdefghijklmnop"
_SECRETS = ("CAREPOINTS_SECRET_KEY", "CAREPOINTS_CHECKPOINT_KEY", "CAREPOINTS_PII_KEY")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Target:
    """A database the subprocesses use: `url`, and for SQLite its file."""

    dir: Path
    url: str
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")

    @property
    def db_path(self) -> Path:
        return Path(self.url.split("///", 1)[1])

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAREPOINTS_")}
        env.update({k: v for k, v in os.environ.items() if k in _SECRETS})
        if self.is_postgres:  # SQLite generates its keys into a file beside the database
            env.setdefault("CAREPOINTS_PII_KEY", PII_KEY)
        env.update(CAREPOINTS_DATABASE_URL=self.url, CAREPOINTS_SCHEDULER="off", CAREPOINTS_LOG_LEVEL="warning")
        return env

    def run(self, *args: str, ok: bool | None = True, url: str | None = None) -> subprocess.CompletedProcess[str]:
        env = self.env
        if url:
            env["CAREPOINTS_DATABASE_URL"] = url
        proc = subprocess.run([EXE, *args], env=env, cwd=self.dir, capture_output=True, text=True, timeout=300,
                              check=False)
        if ok is True:
            assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        elif ok is False:
            assert proc.returncode != 0, f"{args} should fail:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def api_key(self) -> str:
        out = self.run("api-key", "create", "--name", "his", "--role", "admin")
        return out.stdout.strip().splitlines()[-1]

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """A read on a connection of the test's own (never the server's)."""
        if not self.is_postgres:
            conn = sqlite3.connect(self.db_path, timeout=30)
            try:
                return [tuple(r) for r in conn.execute(sql, params).fetchall()]
            finally:
                conn.close()
        engine = make_engine(self.url, pool_size=1)
        try:
            with engine.connect() as c:
                return [tuple(r) for r in c.execute(text(sql), params).all()]
        finally:
            engine.dispose()

    def serve(self) -> Server:
        port = free_port()
        log = (self.dir / f"server-{port}.log").open("wb")
        proc = subprocess.Popen([EXE, "serve", "--port", str(port)], env=self.env, cwd=self.dir,
                                stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.servers.append(proc)
        server = Server(proc, port, self.dir / f"server-{port}.log")
        server.wait_ready()
        return server

    def stop_all(self) -> None:
        for proc in self.servers:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited at start:\n{self.log.read_text()[-2000:]}")
                try:
                    if http.get("/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)  # waiting for a process to listen, not for an effect
        raise AssertionError(f"server not ready within {timeout} s:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> str:
        """Stop it gracefully; its log."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.log.read_text(errors="replace")


@contextmanager
def sqlite_target(tmp: Path) -> Iterator[Target]:
    target = Target(tmp, f"sqlite:///{tmp / 'cp.db'}")
    try:
        yield target
    finally:
        target.stop_all()


@contextmanager
def fresh_pg_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (dropped after); its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def pg_target(tmp: Path) -> Iterator[Target]:
    with fresh_pg_database("cp_safety") as url:
        target = Target(tmp, url)
        try:
            yield target
        finally:
            target.stop_all()
