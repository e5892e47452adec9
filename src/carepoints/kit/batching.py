"""Group commit: concurrent requests share one writer transaction.

A durable SQLite commit costs an fsync, so one transaction per request caps
throughput at the disk's fsync rate, and on PostgreSQL a commit per request
costs a round trip and a WAL flush each. A `GroupCommitter` hands every
submitted job to one writer thread per process, which takes whatever has
queued up (up to a size limit) and runs it as one group: the handler gives
each job its own result, and nobody is answered before the group commits.
Idle, a job runs at once, alone; under load, jobs queue during a commit and
the next group takes them all."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

J = TypeVar("J")
R = TypeVar("R")

log = logging.getLogger("carepoints.batching")


class GroupCommitter(Generic[J, R]):
    def __init__(self, handler: Callable[[Sequence[J]], Sequence[R]], size: Callable[[J], int],
                 max_size: int, name: str) -> None:
        self._handler = handler
        self._size = size
        self._max = max_size
        self._name = name
        self._queue: queue.SimpleQueue[tuple[J, Future[R]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: J) -> Future[R]:
        future: Future[R] = Future()
        self._queue.put((job, future))
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                    self._thread.start()
        return future

    async def run(self, job: J) -> R:
        return await asyncio.wrap_future(self.submit(job))

    def _loop(self) -> None:
        carry: tuple[J, Future[R]] | None = None
        while True:
            try:
                carry = self._next_group(carry)
            except Exception:  # the writer must outlive any one group
                log.error("event writer group failed unexpectedly", exc_info=False)
                carry = None

    def _next_group(self, carry: tuple[J, Future[R]] | None) -> tuple[J, Future[R]] | None:
        """Take one group (starting with `carry`) and run it; returns the job that did not fit."""
        group = [carry] if carry is not None else [self._queue.get()]
        carry = None
        total = self._size(group[0][0])
        while total < self._max:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if total + self._size(nxt[0]) > self._max:
                carry = nxt
                break
            group.append(nxt)
            total += self._size(nxt[0])
        # Jobs whose caller gave up (a cancelled request) are dropped, not run.
        group = [g for g in group if g[1].set_running_or_notify_cancel()]
        if group:
            self._run(group)
        return carry

    def _run(self, group: list[tuple[J, Future[R]]]) -> None:
        try:
            results = self._handler([job for job, _ in group])
        except Exception as exc:
            if len(group) == 1:
                if not group[0][1].done():
                    group[0][1].set_exception(exc)
                return
            # One job broke the shared transaction: run each on its own so only it fails.
            log.warning("group of %d failed; retrying its jobs one by one", len(group))
            for item in group:
                self._run([item])
            return
        for (_job, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)
