"""GET /healthz (alive) and GET /readyz (database reachable, migrations current):
unauthenticated; readyz answers 503 with a code when the schema is behind or
the database cannot be used."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text

from carepoints.app import create_asgi
from carepoints.config import reset_settings
from carepoints.kit import migrate
from carepoints.kit.db import dispose_engines, get_engine, make_engine
from tests.conftest import Db

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

OLDER = "b2c3d4e5f605"  # an earlier revision of the chain (engagement, before the trust work)


def _use(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    dispose_engines()
    monkeypatch.setenv("CAREPOINTS_DATABASE_URL", url)
    reset_settings()


def test_probes_answer_without_credentials(api: Api) -> None:
    r = api.get("/healthz", auth=False)
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = api.get("/readyz", auth=False)
    assert (r.status_code, r.json()) == (200, {"status": "ok", "database": True})
    assert api.get("/metrics", auth=False).status_code == 200


def test_readyz_is_503_while_migrations_are_pending(db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if db.is_postgres:
        # The worker's shared database: its version row is set back, then restored.
        with get_engine().begin() as conn:
            head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": OLDER})
        try:
            r = TestClient(create_asgi()).get("/readyz")
        finally:
            with get_engine().begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    else:
        url = f"sqlite:///{tmp_path / 'older.db'}"
        engine = make_engine(url)
        cfg = migrate.alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, OLDER)
        engine.dispose()
        _use(monkeypatch, url)
        r = TestClient(create_asgi()).get("/readyz")
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["error"] == "ready.migrations_pending"
    assert body["database"] is True
    assert "/" in body["detail"]  # 中文 / English
    assert TestClient(create_asgi()).get("/healthz").status_code == 200


def test_readyz_is_503_when_the_database_cannot_be_used(db: Db, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "not-a-database.db"
    broken.write_bytes(b"this is not an SQLite file" * 100)
    _use(monkeypatch, f"sqlite:///{broken}")
    client = TestClient(create_asgi())
    r = client.get("/readyz")
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "ready.database_unavailable"
    assert r.json()["database"] is False
    assert client.get("/healthz").status_code == 200  # alive without a database
