"""Appending audit rows from several connections while two sealers run: writers
never wait on the sealer's reads, no row is lost from verification, nothing
deadlocks (both databases, real commits)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from carepoints.audit import service as audit
from carepoints.config import get_settings
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from tests.audit.kit import all_ids, seal_all, seals, verify
from tests.conftest import Db

WRITERS, ROWS = 4, 100
MARGIN = timedelta(milliseconds=300)  # far longer than one append transaction


def test_appending_while_sealing_loses_nothing(racing: Db) -> None:
    errors: list[BaseException] = []
    written: list[str] = []
    lock = threading.Lock()
    done = threading.Event()
    sealed_during: list[int] = []

    def writer(w: int) -> None:
        try:
            for i in range(ROWS):
                with write_tx() as session:
                    rid = audit.record(session, audit.Actor("staff", f"s-{w}", "nurse"), "test:row:write",
                                       utc_now(), patient_id=None, n=i)
                with lock:
                    written.append(rid)
        except BaseException as exc:
            errors.append(exc)

    def sealer() -> None:
        try:
            while not done.is_set():
                with write_tx() as session:
                    n = audit.seal(session, get_settings().checkpoint_key, utc_now(), margin=MARGIN, block_rows=40)
                if n:
                    sealed_during.append(n)
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    sealers = [threading.Thread(target=sealer) for _ in range(2)]  # two sealers never write one block twice
    started = time.monotonic()
    for t in [*sealers, *writers]:
        t.start()
    for t in writers:
        t.join(timeout=120)
    done.set()
    for t in sealers:
        t.join(timeout=60)
    elapsed = time.monotonic() - started
    assert not any(t.is_alive() for t in [*writers, *sealers]), "deadlock: a thread never finished"
    assert errors == []
    assert len(written) == WRITERS * ROWS
    # while the writers ran, whatever was sealed verifies and nothing landed inside a block
    mid = verify()
    assert mid.ok, mid.problem
    assert mid.rows == sum(sealed_during)
    seal_all()
    final = verify()
    assert final.ok, final.problem
    assert final.pending == 0
    assert final.rows == len(all_ids())
    assert set(written) <= set(all_ids())
    assert sum(b["row_count"] for b in seals()) == final.rows
    if elapsed > 3 * MARGIN.total_seconds():  # the writers ran long enough for sealing to overlap them
        assert sealed_during, "nothing was sealed while the writers ran"
