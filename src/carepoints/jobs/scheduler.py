"""In-process scheduler for the embedded default (`carepoints serve`) and for
`carepoints worker`: runs each job at its fixed local time or interval, never
at start-up (only instants after the scheduler started count). The job lease
(registry.run with a slot) keeps several processes from running the same
instance; jobs that are safe to run concurrently because they claim their own
work (`send-notifications`: leased deliveries) run without a lease row, so
that a 10-second interval does not fill `job_runs`."""

from __future__ import annotations

import logging
import threading
import traceback
from datetime import datetime, timedelta

from carepoints.config import get_settings
from carepoints.jobs import registry
from carepoints.kit.time import utc_now

log = logging.getLogger("carepoints.jobs")

# Jobs whose every step claims its rows itself (SKIP LOCKED / BEGIN IMMEDIATE and leases).
UNLEASED = frozenset({"send-notifications"})


def due_slots(now: datetime, last: datetime) -> list[tuple[str, str]]:
    """(job, slot) pairs whose scheduled instant lies in (last, now]."""
    tz = get_settings().tz
    out: list[tuple[str, str]] = []
    for name, when in registry.SCHEDULE.items():
        if isinstance(when, timedelta):
            step = int(when.total_seconds())
            a, b = int(last.timestamp()) // step, int(now.timestamp()) // step
            if b > a:
                out.append((name, f"every:{b * step}"))
            continue
        local = now.astimezone(tz)
        at = local.replace(hour=when[0], minute=when[1], second=0, microsecond=0)
        if last < at <= now:
            out.append((name, at.isoformat()))
    return out


def _run(name: str, slot: str, now: datetime) -> bool:
    """Run one due job; False when another process had it already. Failures are logged."""
    try:
        result = registry.run_unleased(name, now) if name in UNLEASED else registry.run(name, now, slot=slot)
    except registry.AlreadyRunError:
        return False
    except Exception as exc:  # type and place only: messages can quote row values
        log.error("job %s failed: %s\n%s", name, type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
        return True
    log.info("job %s done: %s", name, result)
    return True


class Scheduler:
    """With `background`, the unleased jobs (sending) run on a thread of their own, one
    run at a time, so that a slow gateway never delays the fixed-time jobs."""

    def __init__(self, tick: float = 5.0, *, background: bool = True) -> None:
        self.tick = tick
        self.background = background
        self.last = utc_now()  # nothing scheduled at or before start-up runs
        self._workers: dict[str, threading.Thread] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="carepoints-scheduler", daemon=True)

    def start(self) -> None:
        self.last = utc_now()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.wait()

    def wait(self, timeout: float = 60) -> None:
        """Until the background runs started so far have finished."""
        for worker in list(self._workers.values()):
            worker.join(timeout=timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def step(self, now: datetime) -> list[str]:
        """Run what fell due in (last, now]; answers the jobs this process ran."""
        ran: list[str] = []
        for name, slot in due_slots(now, self.last):
            if name in UNLEASED and self.background:
                busy = self._workers.get(name)
                if busy is None or not busy.is_alive():  # still sending: this interval is covered
                    worker = threading.Thread(target=_run, args=(name, slot, now), name=f"carepoints-{name}",
                                              daemon=True)
                    self._workers[name] = worker
                    worker.start()
                    ran.append(name)
            elif _run(name, slot, now):
                ran.append(name)
        self.last = max(self.last, now)
        return ran

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            self.step(utc_now())
