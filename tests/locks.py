"""The race harness of the concurrency tests: racers in threads with their own
connections, released together, and on PostgreSQL row locks held so that they really
queue behind them (visible in pg_stat_activity) before they are let go at once; on
SQLite nothing is held, since BEGIN IMMEDIATE already serialises the writers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, select, text
from sqlalchemy.engine import Connection

from carepoints.kit.db import get_engine
from tests.conftest import Db

Outcome = tuple[str, Any]  # ("ok", value) | ("err", exception)


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


def race(db: Db, fns: list[Callable[[], Any]], *, lock: tuple[Table, list[str]] | None = None) -> list[Outcome]:
    """Run every fn in its own thread, all released together (queued behind `lock` on
    PostgreSQL); return their outcomes in order."""
    results: list[Outcome] = [("err", RuntimeError("did not run"))] * len(fns)
    barrier = threading.Barrier(len(fns) + 1)

    def worker(i: int, fn: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = ("ok", fn())
        except Exception as exc:  # collected and asserted by the test
            results[i] = ("err", exc)

    threads = [threading.Thread(target=worker, args=(i, fn), daemon=True) for i, fn in enumerate(fns)]
    tbl, ids = lock if lock is not None else (None, [])
    with RowLocks(db, tbl, ids) as held:
        for t in threads:
            t.start()
        barrier.wait()
        held.wait_for(len(fns))
        held.release()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racer hung"
    return results


def oks(results: list[Outcome]) -> list[Any]:
    return [v for kind, v in results if kind == "ok"]


def errors(results: list[Outcome]) -> list[BaseException]:
    return [v for kind, v in results if kind == "err"]
