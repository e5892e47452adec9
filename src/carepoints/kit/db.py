"""Engine, sessions and transaction edges.

SQLite (the embedded default) runs in WAL mode with synchronous=FULL; write
transactions start with BEGIN IMMEDIATE so that the database, not Python,
serialises writers, and a busy timeout makes them queue instead of failing.
Read-only transactions start deferred and never block writers.

Only the edge (request, job, CLI command) commits: `write_tx()` and
`read_tx()` hand a session to the use case and commit or roll back."""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, cast

import orjson
from sqlalchemy import MetaData, Table, create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from carepoints.config import get_settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


log = logging.getLogger("carepoints.db")
_WRITE = "carepoints_write"
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA cache_size=-{int(get_settings().sqlite_cache_mb) * 1024}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={get_settings().sqlite_synchronous}")  # FULL | NORMAL, validated
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # Checkpoints run on a background thread (see _Checkpointer); this is only a backstop.
    cur.execute("PRAGMA wal_autocheckpoint=20000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(_WRITE):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class _Checkpointer:
    """Copies the WAL back into the database file off the commit path.

    SQLite's automatic checkpoint runs inside whichever commit crosses the
    threshold, adding a database fsync to that request; here a daemon thread
    runs PASSIVE checkpoints (which never block writers or readers) instead."""

    def __init__(self, engine: Engine, interval: float = 0.5) -> None:
        self.engine, self.interval = engine, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="carepoints-wal-checkpoint", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:  # retried on the next tick
                log.debug("WAL checkpoint failed; retrying", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


_checkpointers: dict[int, _Checkpointer] = {}


def make_engine(url: str, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        # SQLite connections are cheap to keep but not to open (WAL and pragma set-up):
        # keep as many as the request thread pool can use, so none is opened per request;
        # last in, first out, so that the event writer keeps getting a connection whose
        # page cache is warm.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False, "cached_statements": 1024},
                               pool_size=max(pool_size, 48), max_overflow=16, pool_use_lifo=True,
                               json_serializer=_json_dumps, json_deserializer=orjson.loads, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        # At most 2 × pool_size connections per process: `serve --workers N` keeps N of these
        # within PostgreSQL's max_connections (default 100) instead of failing under a rush.
        engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                               json_serializer=_json_dumps, json_deserializer=orjson.loads,
                               hide_parameters=True)  # statement parameters may hold PII: never in errors or logs
    return engine


def get_engine() -> Engine:
    url = get_settings().database_url
    engine = _engines.get(url)
    if engine is None:
        with _lock:
            engine = _engines.get(url)
            if engine is None:
                engine = make_engine(url, get_settings().db_pool_size)
                _engines[url] = engine
                if engine.dialect.name == "sqlite" and get_settings().sqlite_path() is not None:
                    _checkpointers[id(engine)] = _Checkpointer(engine)
    return engine


@atexit.register
def dispose_engines() -> None:
    """Close every pooled connection. At exit this lets SQLite fold the WAL back
    into the database file, so a stopped process leaves one self-contained file."""
    with _lock:
        for checkpointer in _checkpointers.values():
            checkpointer.stop()
        _checkpointers.clear()
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


_write_makers: dict[int, sessionmaker[Session]] = {}
_read_makers: dict[int, sessionmaker[Session]] = {}


def _maker(engine: Engine, write: bool) -> sessionmaker[Session]:
    cache = _write_makers if write else _read_makers
    maker = cache.get(id(engine))
    if maker is None:
        bind = engine.execution_options(**{_WRITE: True}) if write else engine
        maker = sessionmaker(bind=bind, expire_on_commit=False, autoflush=False)
        cache[id(engine)] = maker
    return maker


class _WriterLock:
    """Hands SQLite's single write lock from writer to writer without polling.

    SQLite lets one writer in at a time; the others wait in its busy handler,
    which sleeps in growing steps (1, 2, 5, … 100 ms), so with several
    processes (`serve --workers N`) a waiting request can sleep long after the
    lock is free. Writers here first queue on an exclusive flock of a file
    beside the database, which the kernel hands over the moment it is
    released; BEGIN IMMEDIATE then never waits. Reentrant per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    @contextmanager
    def hold(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            fd = getattr(self._local, "fd", None)
            if fd is None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                self._local.fd = fd
            fcntl.flock(fd, fcntl.LOCK_EX)
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth -= 1
            if self._local.depth == 0:
                fcntl.flock(self._local.fd, fcntl.LOCK_UN)


_writer_locks: dict[str, _WriterLock] = {}  # by database file


def _writer_lock(engine: Engine) -> AbstractContextManager[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        return nullcontext()
    lock = _writer_locks.get(database)
    if lock is None:
        lock = _writer_locks.setdefault(database, _WriterLock(Path(database + ".writer-lock")))
    return lock.hold()


@contextmanager
def write_tx(engine: Engine | None = None) -> Iterator[Session]:
    """One use case that writes: commit on success, roll back on any error."""
    engine = engine or get_engine()
    with _writer_lock(engine):
        session = _maker(engine, write=True)()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def drain(step: Callable[[Session], int], engine: Engine | None = None) -> int:
    """Run `step` in write transactions of its own bounded size until it does nothing;
    answers the total it did (jobs that work through a backlog)."""
    total = 0
    while True:
        with write_tx(engine) as session:
            n = step(session)
        total += n
        if n == 0:
            return total


@contextmanager
def read_tx(engine: Engine | None = None) -> Iterator[Session]:
    """One read-only use case; never commits anything."""
    session = _maker(engine or get_engine(), write=False)()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@contextmanager
def read_conn(engine: Engine | None = None) -> Iterator[Connection]:
    """A Core connection for a lean read (a hot path's single query), no ORM session."""
    with (engine or get_engine()).connect() as conn:
        try:
            yield conn
        finally:
            conn.rollback()


def is_sqlite() -> bool:
    """The process's database is SQLite (the embedded default)."""
    return get_engine().dialect.name == "sqlite"


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def serialise(conn: Connection, *keys: str | int) -> None:
    """One transaction at a time past this point for each key, until it ends: a
    transaction-scoped advisory lock per key on PostgreSQL (sorted: no deadlock; a string key
    hashed by the server); SQLite's write transactions (BEGIN IMMEDIATE) already run one at a
    time."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted(set(keys), key=str):
        if isinstance(key, int):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        else:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})


def table(model: type[Base]) -> Table:
    """The Core table of a mapped class, typed for Core statements."""
    return cast(Table, model.__table__)
