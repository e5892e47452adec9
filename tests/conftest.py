"""Test databases: every DB test runs on SQLite and PostgreSQL.

- SQLite: a migrated template file is copied for each test (a fresh database).
- PostgreSQL: one database per xdist worker, migrated once; each test starts
  from TRUNCATE + seed. CAREPOINTS_TEST_PG=require (CI) fails when the server
  is missing; =skip skips those tests with a clear reason; unset probes.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from carepoints import bootstrap
from carepoints.config import reset_settings
from carepoints.kit.db import dispose_engines, get_engine, make_engine
from carepoints.models import metadata

settings.register_profile("ci", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("dev", max_examples=15, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

PG_URL = os.environ.get("CAREPOINTS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_MODE = os.environ.get("CAREPOINTS_TEST_PG", "")

os.environ["CAREPOINTS_SCHEDULER"] = "off"
os.environ.setdefault("CAREPOINTS_ANALYTICS_LIVE_SECONDS", "0")  # tests read today right after writing it
os.environ.setdefault("CAREPOINTS_SECRET_KEY", "test-secret-key-0123456789-abcdefghijklmnop")
os.environ.setdefault("CAREPOINTS_CHECKPOINT_KEY", "test-checkpoint-key-0123456789-abcdefghijk")
os.environ.setdefault("CAREPOINTS_PII_KEY", "test-pii-key-0123456789-abcdefghijklmnopqrs")
# test databases need not survive a power cut: commits skip the WAL flush (locking is unchanged)
os.environ.setdefault("CAREPOINTS_SQLITE_SYNCHRONOUS", "NORMAL")


def _pg_reachable() -> bool:
    url = make_url(PG_URL)
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=2):
            return True
    except OSError:
        return False


def _pg_enabled() -> bool:
    if PG_MODE == "skip":
        return False
    if PG_MODE == "require":
        return True
    return _pg_reachable()


@dataclass
class Db:
    kind: str
    url: str

    @property
    def engine(self) -> Engine:
        return get_engine()

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgres"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    bootstrap.prepare(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database(worker_id: str) -> Iterator[str]:
    if not _pg_enabled():
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432 (set CAREPOINTS_TEST_PG=require to fail instead)")
    if not _pg_reachable():
        pytest.fail(f"PostgreSQL is required (CAREPOINTS_TEST_PG=require) but {PG_URL} is not reachable")
    name = f"cp_test_{worker_id}_{os.getpid()}".replace("-", "_")  # concurrent sessions never share one
    admin = make_engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        # a test database need not survive a power cut: commits skip the WAL flush (about 1 ms each);
        # locking, isolation and what other connections see are unchanged
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    admin.dispose()
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    bootstrap.prepare(engine)
    engine.dispose()
    yield url
    dispose_engines()
    admin = make_engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_NONEMPTY = " UNION ALL ".join(
    f"SELECT '{t.name}' FROM (SELECT 1 FROM \"{t.name}\" LIMIT 1) AS probe" for t in metadata.sorted_tables  # noqa: S608 - our own table names
)


def _use(url: str) -> None:
    dispose_engines()
    os.environ["CAREPOINTS_DATABASE_URL"] = url
    reset_settings()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """A fresh, migrated and seeded database; the process-wide engine points at it."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "carepoints.db"
        shutil.copyfile(template, path)
        url = f"sqlite:///{path}"
        _use(url)
    else:
        url = request.getfixturevalue("pg_database")
        _use(url)
        with get_engine().begin() as conn:
            # TRUNCATE costs per table named (about 0.3 s for all of them): name only those holding rows.
            used = conn.execute(text(_NONEMPTY)).scalars().all()
            if used:
                conn.execute(text("TRUNCATE " + ", ".join(f'"{name}"' for name in used) + " CASCADE"))
        bootstrap.seed()
    yield Db(request.param, url)
    dispose_engines()


@pytest.fixture
def now() -> datetime:
    """The test clock: a fixed instant (a Monday, 10:30 in Shanghai)."""
    return datetime(2026, 6, 15, 2, 30, tzinfo=UTC)


@pytest.fixture
def racing(db: Db, monkeypatch: pytest.MonkeyPatch) -> Iterator[Db]:
    """The `db` database with a connection pool large enough for 50 racers, the lock
    holder and the observer at once (the default PostgreSQL pool allows 30)."""
    monkeypatch.setenv("CAREPOINTS_DB_POOL_SIZE", "60")
    dispose_engines()
    reset_settings()
    yield db
    dispose_engines()
