"""The group-commit writer: groups, per-job answers, cancelled callers, failures."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future

import pytest

from carepoints.kit.batching import GroupCommitter


def _committer(seen: list[list[int]], gate: threading.Event | None = None) -> GroupCommitter[int, int]:
    def handler(jobs: Sequence[int]) -> list[int]:
        if gate is not None:
            gate.wait(5)
        if any(j < 0 for j in jobs):
            raise ValueError("bad job")
        seen.append(list(jobs))
        return [j * 10 for j in jobs]

    return GroupCommitter(handler, size=lambda _j: 1, max_size=3, name="test-writer")


def test_jobs_queued_during_a_group_run_together_up_to_the_limit() -> None:
    seen: list[list[int]] = []
    gate = threading.Event()
    writer = _committer(seen, gate)
    first = writer.submit(1)  # the writer takes it and waits at the gate
    while not first.running():
        pass
    rest = [writer.submit(n) for n in (2, 3, 4, 5)]
    gate.set()
    assert [f.result(5) for f in (first, *rest)] == [10, 20, 30, 40, 50]
    assert seen == [[1], [2, 3, 4], [5]]


def test_a_failing_job_fails_alone() -> None:
    seen: list[list[int]] = []
    gate = threading.Event()
    writer = _committer(seen, gate)
    first = writer.submit(1)
    while not first.running():
        pass
    good, bad = writer.submit(2), writer.submit(-1)
    gate.set()
    assert first.result(5) == 10
    assert good.result(5) == 20
    with pytest.raises(ValueError, match="bad job"):
        bad.result(5)


def test_a_cancelled_caller_does_not_stop_the_writer() -> None:
    seen: list[list[int]] = []
    gate = threading.Event()
    writer = _committer(seen, gate)
    first = writer.submit(1)
    while not first.running():
        pass
    gone: Future[int] = writer.submit(2)
    assert gone.cancel()  # the request was cancelled while its job waited
    later = writer.submit(3)
    gate.set()
    assert first.result(5) == 10
    assert later.result(5) == 30
    assert seen == [[1], [3]]
    assert writer.submit(4).result(5) == 40  # the writer is still alive
