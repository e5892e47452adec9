from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from carepoints.config import get_settings, reset_settings
from carepoints.kit.db import make_engine
from tests.conftest import Db
from tests.helpers import balance, bp, enrol, event, ingest


def test_welcome_and_seven_day_streak(db: Db, now: datetime) -> None:
    pid = enrol(now)
    assert balance(pid, now) == 100
    day0 = now - timedelta(days=10)
    evs = [event(pid, "health.measurement", day0 + timedelta(days=d, hours=h), bp()) for d in range(7) for h in (0, 9)]
    ingest(now, *evs)
    assert balance(pid, now) == 340


def test_dev_otp_is_refused_with_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    monkeypatch.setenv("CAREPOINTS_DEV_OTP", "1")
    reset_settings()
    try:
        with pytest.raises(RuntimeError, match="DEV_OTP"):
            get_settings()
    finally:
        monkeypatch.delenv("CAREPOINTS_DEV_OTP")
        reset_settings()


def test_postgresql_requires_its_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    monkeypatch.delenv("CAREPOINTS_SECRET_KEY", raising=False)
    monkeypatch.delenv("CAREPOINTS_CHECKPOINT_KEY", raising=False)
    reset_settings()
    try:
        with pytest.raises(RuntimeError, match="CAREPOINTS_SECRET_KEY"):
            get_settings()
    finally:
        reset_settings()


def test_sqlite_secrets_are_generated_once_beside_the_database(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_DATABASE_URL", f"sqlite:///{tmp_path}/cp.db")
    for name in ("CAREPOINTS_SECRET_KEY", "CAREPOINTS_CHECKPOINT_KEY", "CAREPOINTS_PII_KEY"):
        monkeypatch.delenv(name, raising=False)
    reset_settings()
    try:
        first = get_settings().secret_key
        key_file = tmp_path / "carepoints.keys.json"
        assert key_file.stat().st_mode & 0o777 == 0o600
        reset_settings()
        assert get_settings().secret_key == first
        assert len(first) >= 32
    finally:
        reset_settings()


def test_database_errors_never_carry_statement_parameters(db: Db, now: datetime) -> None:
    """Parameters can be names and phone numbers: they must not reach logs through error texts."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from carepoints.kit.db import write_tx

    pid = enrol(now)
    with pytest.raises(IntegrityError) as caught, write_tx() as session:
        session.execute(text("INSERT INTO patients (id, name_enc, phone_enc, sex, status, tier, elderly_mode, "
                             "created_at) VALUES (:id, :name, :phone, 'female', 'active', 'standard', false, :at)"),
                        {"id": pid, "name": "王秀英", "phone": "13912345678", "at": now})
    assert "王秀英" not in str(caught.value)
    assert "13912345678" not in str(caught.value)


def test_postgresql_checkpoint_key_is_derived_not_the_token_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    monkeypatch.setenv("CAREPOINTS_SECRET_KEY", "s" * 40)
    monkeypatch.delenv("CAREPOINTS_CHECKPOINT_KEY", raising=False)
    reset_settings()
    try:
        settings = get_settings()
        assert settings.checkpoint_key
        assert settings.checkpoint_key != settings.secret_key
    finally:
        reset_settings()


@pytest.mark.parametrize(("setting", "pages_kib"), [(None, 64 * 1024), ("8", 8 * 1024)])
def test_sqlite_connections_get_the_configured_page_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          setting: str | None, pages_kib: int) -> None:
    if setting is None:
        monkeypatch.delenv("CAREPOINTS_SQLITE_CACHE_MB", raising=False)
    else:
        monkeypatch.setenv("CAREPOINTS_SQLITE_CACHE_MB", setting)
    reset_settings()
    try:
        engine = make_engine(f"sqlite:///{tmp_path}/c.db")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -pages_kib  # negative: KiB
        engine.dispose()
    finally:
        reset_settings()


def test_an_absurd_page_cache_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_SQLITE_CACHE_MB", "0")
    reset_settings()
    try:
        with pytest.raises(ValueError, match="sqlite_cache_mb"):
            get_settings()
    finally:
        monkeypatch.delenv("CAREPOINTS_SQLITE_CACHE_MB")
        reset_settings()
