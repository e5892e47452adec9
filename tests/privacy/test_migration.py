"""The privacy migration on SQLite: older active duplicates of a (patient, purpose) consent
end as superseded before the one-active-grant index is built; downgrade and upgrade again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config

import carepoints

BEFORE = "c3d4e5f60702"


def config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(carepoints.__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def insert_patient(conn: sqlite3.Connection, pid: str) -> None:
    """A patients row with whatever columns that revision has (their NOT NULL ones filled)."""
    values: dict[str, object] = {"id": pid}
    for _cid, name, type_, notnull, default, _pk in conn.execute("PRAGMA table_info(patients)"):
        if name in values or not notnull or default is not None:
            continue
        kind = str(type_).upper()
        values[name] = ("2026-01-01 00:00:00.000000" if "DATE" in kind or "TIME" in kind
                        else 0 if "INT" in kind or "BOOL" in kind else "x")
    marks = ", ".join("?" for _ in values)
    conn.execute(f"INSERT INTO patients ({', '.join(values)}) VALUES ({marks})", list(values.values()))  # noqa: S608


def test_duplicate_active_consents_are_superseded(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    cfg = config(f"sqlite:///{path}")
    command.upgrade(cfg, BEFORE)
    with sqlite3.connect(path) as conn:
        for pid in ("p1", "p2"):
            insert_patient(conn, pid)
        conn.executemany(
            "INSERT INTO consents (id, patient_id, purpose, version, accepted_at, source, withdrawn_at) "
            "VALUES (?, ?, ?, ?, ?, 'patient', NULL)",
            [("c1", "p1", "research", "1.0", "2026-01-01 00:00:00.000000"),
             ("c2", "p1", "research", "1.1", "2026-02-01 00:00:00.000000"),
             ("c3", "p1", "health_data", "1.0", "2026-01-01 00:00:00.000000"),
             ("c4", "p2", "research", "1.0", "2026-01-01 00:00:00.000000")])
    command.upgrade(cfg, "head")
    with sqlite3.connect(path) as conn:
        rows = {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT id, withdrawn_at IS NOT NULL, ended_by FROM consents ORDER BY id")}
        assert rows == {"c1": (1, "superseded"), "c2": (0, None), "c3": (0, None), "c4": (0, None)}
        assert conn.execute("SELECT count(*) FROM patient_erasures").fetchone() == (0,)
    command.downgrade(cfg, BEFORE)
    with sqlite3.connect(path) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(consents)")}
        assert "ended_by" not in columns
    command.upgrade(cfg, "head")
