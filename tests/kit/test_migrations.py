"""Migrations: the migrated schema matches the models, and the SQLite-only
rebuild of the per-patient state tables keeps their rows and guards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints import bootstrap
from carepoints.kit.db import make_engine
from carepoints.kit.migrate import alembic_config
from carepoints.models import metadata
from carepoints.rules import service as rules
from tests.conftest import Db

CLUSTERED = ("rule_counters", "streak_runs")


def test_the_migrated_schema_matches_the_models(db: Db) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def _sql(conn: object, table: str) -> str:
    return str(conn.execute(text("SELECT sql FROM sqlite_schema WHERE name = :t"), {"t": table}).scalar())  # type: ignore[attr-defined]


def test_per_patient_state_is_clustered_by_patient_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    cfg = alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "b8db750c1103")  # the spine, before the rebuild
        conn.execute(text("INSERT INTO rule_counters (patient_id, key, used, cap) VALUES ('p1', 'k', 20, 20)"))
        conn.execute(text("INSERT INTO streak_runs VALUES ('p1', 'checkin', '2026-03-01', '2026-03-07')"))
        assert all("WITHOUT ROWID" not in _sql(conn, t) for t in CLUSTERED)
        command.upgrade(cfg, "head")
        assert all("WITHOUT ROWID" in _sql(conn, t) for t in CLUSTERED)
        assert conn.execute(text("SELECT used, cap FROM rule_counters")).one() == (20, 20)
        assert conn.execute(text("SELECT end_day FROM streak_runs")).scalar() == "2026-03-07"
    with engine.begin() as conn, pytest.raises(IntegrityError):  # the cap guard survived the rebuild
        conn.execute(text("UPDATE rule_counters SET used = 30"))
    with engine.begin() as conn, pytest.raises(IntegrityError):  # and the primary key
        conn.execute(text("INSERT INTO rule_counters VALUES ('p1', 'k', 1, NULL)"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "b8db750c1103")
        assert all("WITHOUT ROWID" not in _sql(conn, t) for t in CLUSTERED)
        assert conn.execute(text("SELECT used FROM rule_counters")).scalar() == 20
    engine.dispose()


def test_a_fresh_database_prepares_twice_without_change(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    bootstrap.prepare(engine)
    bootstrap.prepare(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()


def test_the_replay_group_backfill_follows_the_stored_programmes(tmp_path: Path) -> None:
    """Events stored before the replay index get their group from the programme versions
    in the database, including offline entries standing for an order-sensitive behaviour."""
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    cfg = alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "5f1c2a9d7e30")
    with Session(engine) as session, session.begin():
        rules.install(session, rules.default_programme_text())
    with engine.begin() as conn:
        for n, (etype, attrs) in enumerate([
                ("education.completed", {"content_id": "C1"}),
                ("health.measurement", {"kind": "blood_pressure"}),
                ("staff.offline_entry", {"behaviour": "appointment.cancelled", "attributes": {}}),
                ("staff.offline_entry", {"behaviour": "selfservice.used", "attributes": {}})]):
            conn.execute(text(
                "INSERT INTO events (id, type, patient_id, source, source_event_id, payload_hash, occurred_at, "
                "received_at, attributes, status, outcome, effects) VALUES (:id, :t, 'p', 's', :k, 'h', "
                "'2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', :a, 'accepted', '{}', '{}')"),
                {"id": f"e{n}", "t": etype, "k": f"k{n}", "a": json.dumps(attrs)})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        groups = dict(conn.execute(text("SELECT id, replay_group FROM events")).all())
    assert groups == {"e0": "education.completed", "e1": None, "e2": "appointment.cancelled", "e3": None}
    engine.dispose()
