"""In-process scheduler for the embedded default (and `carepoints worker`):
runs each job at its fixed local time; the job lease keeps several
processes from running the same instance."""

from __future__ import annotations

import logging
import threading
import traceback
from datetime import datetime, timedelta

from carepoints.config import get_settings
from carepoints.jobs import registry
from carepoints.kit.time import utc_now

log = logging.getLogger("carepoints.jobs")


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


class Scheduler:
    def __init__(self, tick: float = 20.0) -> None:
        self.tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="carepoints-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        last = utc_now()
        while not self._stop.wait(self.tick):
            now = utc_now()
            for name, slot in due_slots(now, last):
                try:
                    result = registry.run(name, now, slot=slot)
                    log.info("job %s done: %s", name, result)
                except registry.AlreadyRunError:
                    pass
                except Exception as exc:  # type and place only: messages can quote row values
                    log.error("job %s failed: %s\n%s", name, type(exc).__name__,
                              "".join(traceback.format_tb(exc.__traceback__)))
            last = now
