"""Row locks held on PostgreSQL so that concurrency tests' racers really queue behind
them (visible in pg_stat_activity) and are then let go at once; on SQLite nothing is
held, since BEGIN IMMEDIATE already serialises the writers."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Table, select, text
from sqlalchemy.engine import Connection

from carepoints.kit.db import get_engine
from tests.conftest import Db


def lock_waiters() -> int:
    with get_engine().connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar() or 0)


class RowLocks:
    """On PostgreSQL, hold the row locks of `ids` in `tbl` so that racers queue behind
    them; on SQLite do nothing (BEGIN IMMEDIATE already serialises the writers)."""

    def __init__(self, db: Db, tbl: Table | None, ids: list[str]) -> None:
        self.active = db.is_postgres and tbl is not None and bool(ids)
        self.tbl = tbl
        self.ids = ids
        self.conn: Connection | None = None

    def __enter__(self) -> RowLocks:
        if self.active:
            assert self.tbl is not None
            self.conn = get_engine().connect()
            self.conn.begin()
            locked = self.conn.execute(select(self.tbl.c.id).where(self.tbl.c.id.in_(self.ids))
                                       .with_for_update()).all()
            assert len(locked) == len(set(self.ids))
        return self

    def wait_for(self, waiters: int) -> None:
        """Until `waiters` backends queue for a lock (pg_stat_activity)."""
        if not self.active:
            return
        deadline = time.monotonic() + 30
        while lock_waiters() < waiters:
            assert time.monotonic() < deadline, "the racers never queued for the lock"
            threading.Event().wait(0.005)

    def release(self) -> None:
        if self.conn is not None:
            self.conn.rollback()
            self.conn.close()
            self.conn = None

    def __exit__(self, *exc: object) -> None:
        self.release()
