"""`carepoints backup` / `carepoints restore`: a consistent copy of the whole
database while the app keeps writing, and its restore into an empty database.

- SQLite: the online backup API (`sqlite3.Connection.backup`) copies every page
  in one read transaction, so the copy is one committed state even while
  writers go on (WAL lets them); the file is then switched to a self-contained
  rollback journal and checked (`PRAGMA quick_check`).
- PostgreSQL: `pg_dump -Fc` (one snapshot of the database) and
  `pg_restore --clean --if-exists`; the password travels in `PGPASSWORD`, never
  on a command line that `ps` shows.

Secrets are not part of a backup: the key file beside a SQLite database
(`carepoints.keys.json`) or the `CAREPOINTS_*` keys hold the PII and
checkpoint keys, and must be kept (and restored) separately."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from carepoints.config import Settings
from carepoints.kit.errors import AppError

SECRETS_NOTE = ("注意:备份不含密钥(数据库旁的 carepoints.keys.json 或 CAREPOINTS_* 密钥),请另行保管 / "
                "Note: secrets are not in the backup (the key file beside the database or the CAREPOINTS_* keys); "
                "keep them separately: without the same PII and checkpoint keys the data cannot be read or verified")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_PG_MAGIC = b"PGDMP"
_TIMEOUT = 6 * 3600  # a dump of a large hospital database may take hours, never forever


class BackupError(AppError):
    code = "backup.failed"
    status_code = 400
    message = "备份或恢复失败 / Backup or restore failed: {reason}"


class BackupExistsError(BackupError):
    code = "backup.file_exists"
    message = "备份文件已存在(用 --force 覆盖) / The backup file exists (use --force to overwrite)"


class NotABackupError(BackupError):
    code = "backup.not_a_backup"
    message = "不是本数据库类型的备份文件 / Not a backup file for this kind of database: {kind}"


class TargetNotEmptyError(BackupError):
    code = "backup.target_not_empty"
    message = ("目标数据库不是空的(有 {tables} 张表;用 --force 覆盖) / "
               "The target database is not empty ({tables} tables; use --force to replace it)")


@dataclass(frozen=True)
class Written:
    path: Path
    size: int


def _settings() -> Settings:
    # Not get_settings(): that would generate a key file beside a database being restored,
    # and a backup needs only the database's address.
    return Settings()


def backup(out: Path, *, force: bool = False) -> Written:
    """Write a consistent copy of the configured database to `out` (atomically)."""
    settings = _settings()
    out = out.expanduser().resolve()
    if out.exists() and not force:
        raise BackupExistsError()
    if not out.parent.is_dir():
        raise BackupError(reason=f"no such directory: {out.parent}")
    partial = out.with_name(f".{out.name}.partial")
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # health data: owner only
    try:
        if settings.is_sqlite:
            _sqlite_backup(_sqlite_file(settings), partial)
        else:
            _pg_run(["pg_dump", "--format=custom", "--compress=6", f"--file={partial}"], settings.database_url)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return Written(out, out.stat().st_size)


def restore(source: Path, *, force: bool = False) -> str:
    """Replace the configured (empty, unless `force`) database with the backup `source`;
    returns where it went (a file path or a database name, never a password)."""
    settings = _settings()
    source = source.expanduser().resolve()
    if not source.is_file():
        raise BackupError(reason=f"no such file: {source}")
    with source.open("rb") as fh:
        magic = fh.read(16)
    if settings.is_sqlite:
        if not magic.startswith(_SQLITE_MAGIC):
            raise NotABackupError(kind="sqlite")
        target = _sqlite_file(settings)
        tables = _sqlite_tables(target)
        if tables and not force:
            raise TargetNotEmptyError(tables=tables)
        _sqlite_restore(source, target)
        return str(target)
    if not magic.startswith(_PG_MAGIC):
        raise NotABackupError(kind="postgresql")
    tables = _pg_tables(settings.database_url)
    if tables and not force:
        raise TargetNotEmptyError(tables=tables)
    _pg_run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
             str(source)], settings.database_url)
    return str(make_url(settings.database_url).database)


# --- SQLite ----------------------------------------------------------------------------

def _sqlite_file(settings: Settings) -> Path:
    path = settings.sqlite_path()
    if path is None:
        raise BackupError(reason="an in-memory SQLite database has nothing to back up")
    return path


def _sqlite_tables(path: Path) -> int:
    if not path.exists() or path.stat().st_size == 0:
        return 0
    conn = sqlite3.connect(path, timeout=30)
    try:
        row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
        return int(row[0])
    except sqlite3.DatabaseError as err:
        raise BackupError(reason=f"the target is not a SQLite database ({type(err).__name__})") from None
    finally:
        conn.close()


def _sqlite_backup(source: Path, dest: Path) -> None:
    if not source.exists():
        raise BackupError(reason=f"no such database: {source}")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(dest)
    try:
        # pages=-1 (the default): every page in one step, i.e. in one read transaction; in
        # steps, a write by another process would restart the copy or mix two states.
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        if dst.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise BackupError(reason="the copy failed its integrity check")
    except sqlite3.Error as err:
        raise BackupError(reason=f"SQLite: {type(err).__name__}") from None
    finally:
        dst.close()
        src.close()


def _sqlite_restore(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        if src.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise BackupError(reason="the backup file failed its integrity check")
        if not src.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone():
            raise NotABackupError(kind="sqlite")
        dst = sqlite3.connect(target, timeout=30)
        try:
            # Through SQLite, not a file copy: the target's WAL and locks are honoured.
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")
        finally:
            dst.close()
    except sqlite3.Error as err:
        raise BackupError(reason=f"SQLite: {type(err).__name__}") from None
    finally:
        src.close()


# --- PostgreSQL --------------------------------------------------------------------------

def _pg_tables(url: str) -> int:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")).scalar_one())
    except Exception as err:
        raise BackupError(reason=f"cannot connect to the database ({type(err).__name__})") from None
    finally:
        engine.dispose()


def _pg_env(url: URL) -> dict[str, str]:
    """libpq's environment for `url`: the password in PGPASSWORD, never in argv. Other PG*
    variables stay, as the app's own connections (libpq too) honour them."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    query = dict(url.query)
    for name, var in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("host", "PGHOST")):
        value = query.get(name)
        if isinstance(value, str):
            env[var] = value
    return env


def _pg_run(args: list[str], raw_url: str) -> None:
    url = make_url(raw_url)
    exe = shutil.which(args[0])
    if exe is None:
        raise BackupError(reason=f"{args[0]} is not installed (PostgreSQL client tools)")
    conn = [f"--dbname={url.database}"] if url.database else []
    if url.host:
        conn.append(f"--host={url.host}")
    if url.port:
        conn.append(f"--port={url.port}")
    if url.username:
        conn.append(f"--username={url.username}")
    cmd = [exe, *args[1:], "--no-password", *conn]
    try:
        proc = subprocess.run(cmd, env=_pg_env(url), capture_output=True, text=True,  # noqa: S603
                              timeout=_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise BackupError(reason=f"{args[0]} timed out") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupError(reason=f"{args[0]} exited with {proc.returncode}: {last[:300]}")
