"""`carepoints pricing import FILE --institution CODE [--dry-run]`, the installed command run as a
subprocess against the test database (SQLite and PostgreSQL): dry run, import, the same file
again, a file with a bad row (exit 2, the rows named, nothing stored), and wrong arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from carepoints.kit.db import get_engine
from tests.conftest import Db
from tests.services.pricing.kit import HEADER, ITEMS, PACKAGE_HEADER, PACKAGES, csv_bytes, institution, xlsx_bytes

EXE = str(Path(sys.executable).parent / "carepoints")


def run(db: Db, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREPOINTS_")}
    env.update({k: v for k, v in os.environ.items() if k in ("CAREPOINTS_SECRET_KEY", "CAREPOINTS_CHECKPOINT_KEY",
                                                             "CAREPOINTS_PII_KEY")})
    env.update(CAREPOINTS_DATABASE_URL=db.url, CAREPOINTS_SCHEDULER="off", CAREPOINTS_LOG_LEVEL="warning")
    return subprocess.run([EXE, "pricing", "import", *args], env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def stored() -> list[tuple[Any, ...]]:
    with get_engine().connect() as conn:
        return sorted(tuple(r) for r in conn.execute(text("SELECT code, price_fen, active FROM price_items")))


def test_the_import_command(db: Db, now: datetime, tmp_path: Path) -> None:
    institution(now, "cli-h")
    good = tmp_path / "目录.csv"
    good.write_bytes(csv_bytes(ITEMS, bom=True))
    dry = run(db, str(good), "--institution", "cli-h", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert (report["dry_run"], report["counts"]["created"]) == (True, 9)
    assert stored() == []

    done = run(db, str(good), "--institution", "cli-h")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["applied"] is True
    assert len(stored()) == 9
    again = run(db, str(good), "--institution", "cli-h")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["counts"]["unchanged"] == 9
    before = stored()

    book = tmp_path / "packages.xlsx"
    book.write_bytes(xlsx_bytes({"items": [HEADER, *ITEMS], "packages": [PACKAGE_HEADER, *PACKAGES]}))
    pkg = run(db, str(book), "--institution", "cli-h")
    assert pkg.returncode == 0, pkg.stderr
    assert json.loads(pkg.stdout)["counts"]["created"] == 1  # the package; the items are unchanged
    assert stored() == before

    bad = tmp_path / "bad.csv"
    rows = [list(r) for r in ITEMS]
    rows[0][5] = "1.00"
    rows.append(["BAD", "坏", "", "检查", "次", "x", "甲", "", "", ""])
    bad.write_bytes(csv_bytes(rows))
    refused = run(db, str(bad), "--institution", "cli-h")
    assert refused.returncode == 2
    assert "pricing.invalid_rows" in refused.stderr
    assert "row 11 price BAD" in refused.stderr
    assert stored() == before  # the good change in the same file did not land either
    refused_dry = run(db, str(bad), "--institution", "cli-h", "--dry-run")
    assert refused_dry.returncode == 2
    assert json.loads(refused_dry.stdout)["items"]["updated"][0]["code"] == "CT01"


def test_wrong_arguments(db: Db, now: datetime, tmp_path: Path) -> None:
    institution(now, "cli-h")
    good = tmp_path / "ok.csv"
    good.write_bytes(csv_bytes(ITEMS))
    nowhere = run(db, str(good), "--institution", "nope")
    assert nowhere.returncode == 2
    assert "pricing.institution_not_found" in nowhere.stderr
    missing = run(db, str(tmp_path / "missing.csv"), "--institution", "cli-h")
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 8)
    unreadable = run(db, str(junk), "--institution", "cli-h")
    assert unreadable.returncode == 2
    assert "pricing.unreadable_file" in unreadable.stderr
    assert stored() == []
