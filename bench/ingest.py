"""Ingest benchmark: one generated workload through the raw-sqlite3 yardstick
and through carepoints over HTTP.

    make bench                      # or:
    .venv/bin/python bench/ingest.py [--events 50000] [--patients 5000] [--only a,b,c,d]

The workload is the yardstick's own generator (`workload(n, patients,
seed=7)` in ../shared/bench/limit_award.py: ≥ 50,000 events over 5,000
patients, 10% of them resends of an earlier event), each tuple mapped to a
device blood-pressure reading (`health.measurement`) of one enrolled patient.

(a) ../shared/bench/limit_award.py N P — the raw-sqlite3 yardstick, events/s.
(b) carepoints' HTTP batch ingest: 100 events per `POST /api/v1/events`,
    sequential from one keep-alive connection, `carepoints serve` in a
    subprocess on a fresh SQLite database.
(c) single-event HTTP ingest: the first `--single-events` events of the
    workload, one per request, on a fresh server and database each time:
    closed loop from `--single-clients` keep-alive connections (each sends
    its next event when it has the answer: the most the server does, and the
    latency at that saturation), then paced (open loop) at `--single-rate`
    events/s over the same connections, latency counted from each event's due
    time; events/s and latency percentiles. The target is judged on the paced
    run: it is the load the target names.
(d) (b)'s batches on PostgreSQL (`CAREPOINTS_BENCH_PG_URL`, default
    postgresql+psycopg://postgres@127.0.0.1:5432/test; a fresh database
    `cp_bench` per run) from `--pg-clients` connections, with one server
    worker and with `serve --workers 4`. Skipped when PostgreSQL is
    unreachable.

Enrolling the patients (`POST /api/v1/patients`) is untimed setup. After
every carepoints run a spot check compares `GET …/points` of sampled
patients with the balance the default programme must give (welcome 100,
first reading 50, 10 per reading capped at 20 a day, streak bonuses), so the
figures are known to measure real work.

Targets: (b) ≥ 30% of (a); (c) ≥ 1,500 events/s with p99 ≤ 20 ms (paced);
(d) 4 workers ≥ 2× one worker. Each run also prints how busy the machine's
CPUs were (server, database and load generator together): a ratio in (d)
cannot exceed 1 / (one worker's busy share) on the same machine. Prints a
summary table and writes it as JSON to bench/out/ingest.json. Exit status 1
when a run failed (not when a target is missed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import http.client
import io
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency of carepoints

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()

    loads = json.loads


BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
YARDSTICK = REPO.parent / "shared" / "bench" / "limit_award.py"
OUT = BENCH_DIR / "out" / "ingest.json"
CST = timezone(timedelta(hours=8))  # Asia/Shanghai has no DST; the events carry +08:00
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_BENCH_DB = "cp_bench"
BATCH = 100

Item = tuple[str, int, str]  # (source_event_id, patient number 1..P, "2026-03-DD")


class BenchError(Exception):
    """A run cannot go on (server error, wrong answer); the message says which request."""


# --------------------------------------------------------------------------- workload


def workload(n: int, patients: int, seed: int = 7) -> list[Item]:
    """The yardstick's generator, verbatim in behaviour (limit_award.py can't be
    imported: it reads sys.argv at import time). With 10% probability an event
    is a resend of one sent earlier; the prefix of length k is workload(k)."""
    rnd = random.Random(seed)
    out: list[Item] = []
    sent: list[Item] = []
    for i in range(n):
        if sent and rnd.random() < 0.10:
            out.append(rnd.choice(sent))
            continue
        ev = (f"ev-{i:09d}", rnd.randint(1, patients), f"2026-03-{1 + i % 28:02d}")
        out.append(ev)
        sent.append(ev)
    return out


def to_event(t: Item, patient_ids: Sequence[str]) -> dict[str, Any]:
    """A device blood-pressure reading. Everything but the patient is a function
    of the key, so a resend is the same event (a duplicate, never a conflict)."""
    key, pid, day = t
    h = hashlib.blake2b(key.encode(), digest_size=8).digest()
    hour, minute, second = 8 + h[0] % 14, h[1] % 60, h[2] % 60  # 08:00–21:59 local: same day in any case
    return {
        "type": "health.measurement",
        "patient": {"id": patient_ids[pid - 1]},
        "occurred_at": f"{day}T{hour:02d}:{minute:02d}:{second:02d}+08:00",
        "source": "bench",
        "source_event_id": key,
        "attributes": {
            "kind": "blood_pressure",
            "systolic": 120 + h[3] % 21,
            "diastolic": 70 + h[4] % 21,
            "provenance": "device",
        },
    }


def runs(days: set[date]) -> list[int]:
    """Lengths of the maximal runs of consecutive days."""
    out: list[int] = []
    prev: date | None = None
    for d in sorted(days):
        if prev is not None and d - prev == timedelta(days=1):
            out[-1] += 1
        else:
            out.append(1)
        prev = d
    return out


def readings_per_day(events: Sequence[Item], patients: int) -> dict[int, Counter[date]]:
    """Distinct readings per patient and local day (resends counted once)."""
    per_day: dict[int, Counter[date]] = {p: Counter() for p in range(1, patients + 1)}
    for _key, pid, day in set(events):
        per_day[pid][date.fromisoformat(day)] += 1
    return per_day


def expected_balances(per_day: dict[int, Counter[date]]) -> dict[int, int]:
    """Balances under the default programme: welcome 100 at enrolment; for device
    readings, first reading ever +50, +10 per reading up to 20 per local day,
    +50 per 7 and +200 per 30 consecutive days (Σ ⌊L/N⌋ per maximal run);
    resends change nothing."""
    out: dict[int, int] = {}
    for pid, days in per_day.items():
        bal = 100
        if days:
            bal += 50 + sum(10 * min(c, 2) for c in days.values())
            lengths = runs(set(days))
            bal += 50 * sum(n // 7 for n in lengths) + 200 * sum(n // 30 for n in lengths)
        out[pid] = bal
    return out


# --------------------------------------------------------------------------- HTTP


class Conn:
    """One keep-alive HTTP/1.1 connection (one per thread)."""

    def __init__(self, port: int, key: str, timeout: float = 300.0) -> None:
        self.port, self.key, self.timeout = port, key, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.reconnects = 0

    def _connect(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self.conn.connect()
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, method: str, path: str, body: Any = None, auth: bool = True) -> tuple[int, Any]:
        """Send one request (body: JSON-able, or bytes already encoded); answer (status, JSON)."""
        data = None if body is None else body if isinstance(body, bytes) else dumps(body)
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.key}"
        for attempt in (1, 2):
            conn = self._connect()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                status = resp.status
                if resp.will_close:
                    self.close()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection the server dropped; ingest is idempotent by
                # source_event_id, so one retry is safe (it is counted and reported).
                self.close()
                if attempt == 2:
                    raise
                self.reconnects += 1
        try:
            doc = loads(raw) if raw else None
        except ValueError:
            doc = raw.decode(errors="replace")
        return status, doc


def short(obj: Any, n: int = 600) -> str:
    text = obj if isinstance(obj, str) else dumps(obj).decode()
    return text if len(text) <= n else text[:n] + f"… ({len(text)} chars)"


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def carepoints_exe() -> Path:
    for cand in (Path(sys.executable).parent / "carepoints", REPO / ".venv" / "bin" / "carepoints"):
        if cand.exists():
            return cand
    raise BenchError("no carepoints executable beside sys.executable or in .venv/bin "
                     "(run with .venv/bin/python)")


class Server:
    """`carepoints serve` on a fresh database in a temporary directory, as
    ../shared/contract/harness.py starts it."""

    def __init__(self, label: str, db_url: str | None = None, workers: int = 1,
                 env: dict[str, str] | None = None) -> None:
        self.label, self.workers = label, workers
        self.dir = Path(tempfile.mkdtemp(prefix="cp-bench-"))
        self.env = dict(os.environ)
        self.env["CAREPOINTS_DATABASE_URL"] = db_url or f"sqlite:///{self.dir}/carepoints.db"
        self.env["CAREPOINTS_SCHEDULER"] = "off"
        self.env.update(env or {})
        self.port = free_port()
        self.key = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "server.log"

    def cli(self, *args: str) -> str:
        r = subprocess.run([str(carepoints_exe()), *args], capture_output=True, text=True,
                           env=self.env, cwd=self.dir, timeout=600, check=False)
        if r.returncode:
            raise BenchError(f"`carepoints {' '.join(args)}` exited {r.returncode}: "
                             f"{(r.stderr or r.stdout).strip()[-800:]}")
        return r.stdout

    def start(self) -> Server:
        self.cli("db", "upgrade")
        out = self.cli("api-key", "create", "--name", "bench", "--role", "admin").strip()
        if not out:
            raise BenchError("`carepoints api-key create` printed nothing")
        self.key = out.splitlines()[-1].strip()
        args = [str(carepoints_exe()), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(args, env=self.env, cwd=self.dir, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"server exited at start ({self.proc.returncode}): {self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                c = Conn(self.port, "", timeout=2)
                try:
                    if c.call("GET", "/healthz", auth=False)[0] == 200:
                        return self
                finally:
                    c.close()
            time.sleep(0.1)
        raise BenchError(f"server did not answer /healthz within 60 s: {self.log_tail()}")

    def log_tail(self, n: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def errors_in_log(self) -> str:
        """Tracebacks and 5xx lines in the server log, if any (printed on failures)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        if "Traceback" in text:
            i = text.index("Traceback")
            return text[i:i + 3000]
        return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)  # the group this script created
                self.proc.wait(10)
        if self.proc is not None:
            # workers of `--workers N` are in the session we created; make sure none is left
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def serving(label: str, db_url: str | None = None, workers: int = 1,
            env: dict[str, str] | None = None) -> Iterator[Server]:
    srv = Server(label, db_url, workers, env)
    try:
        yield srv.start()
    except BaseException:
        trace = srv.errors_in_log()
        if trace:
            print(f"  server log ({label}):\n{trace}", file=sys.stderr)
        raise
    finally:
        srv.stop()


# --------------------------------------------------------------------------- PostgreSQL


def pg_plain(url: str) -> str:
    """SQLAlchemy URL → libpq URL (drop the `+driver`)."""
    u = urlsplit(url)
    return urlunsplit(u._replace(scheme=u.scheme.split("+", 1)[0]))


def pg_fresh(admin_url: str, name: str = PG_BENCH_DB) -> str:
    """Drop and create the bench database `name`; answer the server's URL for it."""
    import psycopg

    with psycopg.connect(pg_plain(admin_url), autocommit=True, connect_timeout=5) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {name}")
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def pg_drop(admin_url: str, name: str = PG_BENCH_DB) -> None:
    import psycopg

    with (contextlib.suppress(Exception),
          psycopg.connect(pg_plain(admin_url), autocommit=True, connect_timeout=5) as c):
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pg_reachable(admin_url: str) -> str | None:
    """None when reachable, else why not."""
    try:
        import psycopg
    except ImportError as e:
        return f"psycopg not importable ({e})"
    try:
        with psycopg.connect(pg_plain(admin_url), autocommit=True, connect_timeout=5) as c:
            c.execute("SELECT 1")
    except Exception as e:
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    return None


# --------------------------------------------------------------------------- runs


def enrol(srv: Server, patients: int, threads: int = 8) -> list[str]:
    """POST /api/v1/patients for patients 1..P (untimed); answers their ids in order."""
    local = threading.local()
    conns: list[Conn] = []
    lock = threading.Lock()
    accepted_at = datetime.now(CST).isoformat(timespec="seconds")

    def one(n: int) -> str:
        conn: Conn | None = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = Conn(srv.port, srv.key)
            with lock:
                conns.append(conn)
        body = {"name": f"患者{n}", "phone": f"139{n:08d}",
                "external_ids": [{"system": "urn:bench:mrn", "value": f"B{n}"}],
                "consent": {"version": "1.0", "accepted_at": accepted_at}}
        status, doc = conn.call("POST", "/api/v1/patients", body)
        if status not in (200, 201) or not isinstance(doc, dict) or not doc.get("id"):
            raise BenchError(f"POST /api/v1/patients {short(body)} -> {status} {short(doc)}")
        return str(doc["id"])

    t = time.perf_counter()
    try:
        with ThreadPoolExecutor(threads) as pool:
            ids = list(pool.map(one, range(1, patients + 1)))
    finally:
        for c in conns:
            c.close()
    print(f"  enrolled {patients} patients in {time.perf_counter() - t:.1f} s")
    return ids


@dataclass
class IngestResult:
    events: int
    seconds: float
    events_per_s: float
    new: int
    duplicates: int
    expected_duplicates: int
    requests: int
    clients: int
    reconnects: int = 0
    cpu_busy: float | None = None  # share of all CPUs busy during the timed part (cpu_busy_since)
    offered_per_s: float | None = None  # paced runs: the rate events were scheduled at
    latency_ms: dict[str, float] = field(default_factory=dict)
    spot_check: dict[str, Any] = field(default_factory=dict)


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat (Linux); (0, 0) elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy_since(start: tuple[int, int]) -> float | None:
    """Share of the machine's CPU time (all CPUs) that was busy since `start`: server,
    database and this load generator together. 1.0 means no CPU was left over."""
    busy, total = cpu_jiffies()
    if total <= start[1]:
        return None
    return round((busy - start[0]) / (total - start[1]), 3)


def run_parallel(clients: int, work: Callable[[int, Conn, threading.Event], None],
                 srv: Server) -> tuple[float, int, float | None]:
    """Run work(i, conn, abort) for i in range(clients) in threads, released together;
    answers the wall time, the number of reconnects and the CPU busy share. The first error sets abort
    (work stops when it sees it) and is raised."""
    conns = [Conn(srv.port, srv.key) for _ in range(clients)]
    for c in conns:  # connect before the clock starts
        c.call("GET", "/healthz", auth=False)
    gate = threading.Barrier(clients + 1)
    errors: list[BaseException] = []
    abort = threading.Event()

    def body(i: int) -> None:
        gate.wait()
        try:
            work(i, conns[i], abort)
        except BaseException as e:
            errors.append(e)
            abort.set()

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(clients)]
    for th in threads:
        th.start()
    gate.wait()
    t, cpu = time.perf_counter(), cpu_jiffies()
    for th in threads:
        th.join()
    dt = time.perf_counter() - t
    busy = cpu_busy_since(cpu)
    for c in conns:
        c.close()
    if errors:
        raise errors[0]
    return dt, sum(c.reconnects for c in conns), busy


def run_batches(srv: Server, tuples: Sequence[Item], ids: Sequence[str], clients: int) -> IngestResult:
    """POST /api/v1/events with 100 events per request; batch j goes to client j % clients."""
    batches = [[to_event(t, ids) for t in tuples[i:i + BATCH]] for i in range(0, len(tuples), BATCH)]
    bodies = [dumps({"events": b}) for b in batches]  # serialised before the clock starts
    counts = Counter[str]()
    lock = threading.Lock()

    def work(i: int, conn: Conn, abort: threading.Event) -> None:
        local = Counter[str]()
        for j in range(i, len(batches), clients):
            if abort.is_set():
                return
            status, doc = conn.call("POST", "/api/v1/events", bodies[j])
            if status != 200 or not isinstance(doc, dict) or not isinstance(doc.get("outcomes"), list):
                raise BenchError(f"batch {j}: POST /api/v1/events ({len(batches[j])} events, first "
                                 f"{short(batches[j][0], 400)}) -> {status} {short(doc)}")
            outcomes = doc["outcomes"]
            if len(outcomes) != len(batches[j]):
                raise BenchError(f"batch {j}: {len(batches[j])} events but {len(outcomes)} outcomes")
            for ev, out in zip(batches[j], outcomes, strict=True):
                if not isinstance(out, dict) or "error" in out or "duplicate" not in out:
                    raise BenchError(f"batch {j}: event {short(ev, 500)} -> item {short(out)}")
                local["duplicates" if out["duplicate"] else "new"] += 1
        with lock:
            counts.update(local)

    dt, reconnects, busy = run_parallel(clients, work, srv)
    n = len(tuples)
    return IngestResult(events=n, seconds=round(dt, 3), events_per_s=round(n / dt, 1), new=counts["new"],
                        duplicates=counts["duplicates"], expected_duplicates=n - len(set(tuples)),
                        requests=len(batches), clients=clients, reconnects=reconnects, cpu_busy=busy)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * q // 100) - 1))
    return sorted_values[int(k)]


async def _single_client(port: int, key: str, bodies: Sequence[bytes], jobs: Iterator[int],
                         lat: list[float], counts: Counter[str], pace: tuple[float, float] | None = None) -> None:
    """One keep-alive connection sending events one request at a time, taking the
    next from `jobs` when the previous answer is in. With `pace` = (start, rate),
    event j is due at start + j / rate: the connection waits for that moment, and
    the latency counts from it, so an answer that came late because every
    connection was busy counts as late (no coordinated omission). A lean asyncio
    client: the load generator must cost far less than the server."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nContent-Length: ").encode()
    clock = time.perf_counter
    try:
        for j in jobs:
            body = bodies[j]
            t0 = clock()
            if pace is not None:
                due = pace[0] + j / pace[1]
                if due > t0:
                    await asyncio.sleep(due - t0)
                t0 = due
            writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
            raw = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in raw.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            payload = await reader.readexactly(length)
            lat.append(clock() - t0)
            status = int(raw[9:12])
            doc = loads(payload)
            if status not in (200, 201) or not isinstance(doc, dict) or "duplicate" not in doc:
                raise BenchError(f"event {j}: POST /api/v1/events {short(loads(body), 500)} -> {status} {short(doc)}")
            if (status == 200) != bool(doc["duplicate"]):
                counts["status_mismatch"] += 1
            counts["duplicates" if doc["duplicate"] else "new"] += 1
    finally:
        writer.close()


def run_single(srv: Server, tuples: Sequence[Item], ids: Sequence[str], clients: int,
               rate: float | None = None) -> IngestResult:
    """POST /api/v1/events one event per request from `clients` concurrent keep-alive
    connections, like kiosks and HIS feeds. Closed loop (rate None): each connection
    sends its next event as soon as it has the answer (event j on connection
    j % clients), which measures the most the server does and the latency at that
    saturation. Paced (open loop): events are due at `rate` per second in workload
    order, taken by whichever connection is free; this measures the latency at that
    load."""
    bodies = [dumps(to_event(t, ids)) for t in tuples]  # serialised before the clock starts
    lat: list[float] = []
    counts = Counter[str]()
    n = len(tuples)

    async def drive() -> float:
        t = time.perf_counter()
        if rate is None:
            await asyncio.gather(*(_single_client(srv.port, srv.key, bodies, iter(range(i, n, clients)), lat, counts)
                                   for i in range(clients)))
        else:
            shared = iter(range(n))  # one iterator: the next due event goes to the next free connection
            pace = (t + 0.05, rate)
            await asyncio.gather(*(_single_client(srv.port, srv.key, bodies, shared, lat, counts, pace)
                                   for _ in range(clients)))
        return time.perf_counter() - t

    cpu = cpu_jiffies()
    dt = asyncio.run(drive())
    busy = cpu_busy_since(cpu)
    allv = sorted(v * 1000 for v in lat)
    res = IngestResult(events=n, seconds=round(dt, 3), events_per_s=round(n / dt, 1), new=counts["new"],
                       duplicates=counts["duplicates"], expected_duplicates=n - len(set(tuples)),
                       requests=n, clients=clients, reconnects=0, cpu_busy=busy, offered_per_s=rate,
                       latency_ms={f"p{q}": round(percentile(allv, q), 2) for q in (50, 90, 99)}
                       | {"max": round(allv[-1], 2) if allv else 0.0})
    if counts["status_mismatch"]:
        print(f"  ! {counts['status_mismatch']} single-event answers had status 200/201 disagreeing "
              "with their `duplicate` flag (API.md: 201 new, 200 duplicate)")
    return res


def spot_check(srv: Server, tuples: Sequence[Item], ids: Sequence[str], sample: int) -> dict[str, Any]:
    """Compare GET /api/v1/patients/{id}/points with the expected balance for
    sampled patients (all when sample is 0): patients with a 7-day streak and
    the busiest ones first, then a seeded random sample."""
    per_day = readings_per_day(tuples, len(ids))
    expected = expected_balances(per_day)
    longest = {p: max(runs(set(days)), default=0) for p, days in per_day.items()}
    pids = list(range(1, len(ids) + 1))
    if sample and sample < len(pids):
        streaky = sorted((p for p in pids if longest[p] >= 7), key=lambda p: -longest[p])
        busiest = sorted(pids, key=lambda p: -sum(per_day[p].values()))[:3]
        idle = [p for p in pids if not per_day[p]][:2]
        chosen = list(dict.fromkeys([*streaky[:10], *busiest, *idle]))
        taken = set(chosen)
        rest = [p for p in pids if p not in taken]
        chosen += random.Random(1).sample(rest, max(0, min(len(rest), sample - len(chosen))))
    else:
        chosen = pids
    local = threading.local()
    conns: list[Conn] = []
    lock = threading.Lock()

    def one(p: int) -> tuple[int, int, Any]:
        conn: Conn | None = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = Conn(srv.port, srv.key)
            with lock:
                conns.append(conn)
        status, doc = conn.call("GET", f"/api/v1/patients/{ids[p - 1]}/points")
        if status != 200 or not isinstance(doc, dict) or "balance" not in doc:
            raise BenchError(f"GET /api/v1/patients/{ids[p - 1]}/points -> {status} {short(doc)}")
        return p, expected[p], doc["balance"]

    try:
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(one, chosen))
    finally:
        for c in conns:
            c.close()
    bad = [{"patient": ids[p - 1], "number": p, "expected": e, "balance": b}
           for p, e, b in got if int(b) != e]
    streaks = sum(1 for p in chosen if longest[p] >= 7)
    return {"checked": len(chosen), "with_streak": streaks, "passed": not bad, "mismatches": bad[:10]}


def report_run(name: str, r: IngestResult) -> None:
    extra = ""
    if r.latency_ms:
        extra = "  latency ms " + " ".join(f"{k}={v}" for k, v in r.latency_ms.items())
    if r.cpu_busy is not None:
        extra += f"  CPU busy {r.cpu_busy:.0%} of {os.cpu_count()}"
    print(f"  {name}: {r.events} events in {r.seconds:.2f} s = {r.events_per_s:,.0f} events/s "
          f"({r.clients} client{'s' if r.clients > 1 else ''}, {r.requests} requests){extra}")
    dup_ok = r.duplicates == r.expected_duplicates
    print(f"  outcomes: {r.new} new, {r.duplicates} duplicates (expected {r.expected_duplicates})"
          f"{'' if dup_ok else '  ✗ MISMATCH'}" + (f"; {r.reconnects} reconnects" if r.reconnects else ""))
    sc = r.spot_check
    if sc:
        print(f"  spot check: {'PASS' if sc['passed'] else 'FAIL'} ({sc['checked']} patients, "
              f"{sc['with_streak']} with a 7-day streak)")
        for m in sc["mismatches"]:
            print(f"    patient #{m['number']} {m['patient']}: "
                  f"balance {m['balance']}, expected {m['expected']}")


# --------------------------------------------------------------------------- parts


def part_a(args: argparse.Namespace) -> dict[str, Any]:
    if not YARDSTICK.exists():
        raise BenchError(f"yardstick not found at {YARDSTICK}")
    r = subprocess.run([sys.executable, str(YARDSTICK), str(args.events), str(args.patients)],
                       capture_output=True, text=True, timeout=1800, check=False)
    if r.returncode:
        raise BenchError(f"limit_award.py exited {r.returncode}: {r.stderr.strip()[-500:]}")
    eps = float(r.stdout.strip().splitlines()[-1])
    print(f"  raw sqlite3: {eps:,.0f} events/s")
    return {"events_per_s": eps}


def part_b(args: argparse.Namespace, tuples: Sequence[Item]) -> dict[str, Any]:
    with serving("b: sqlite batch") as srv:
        ids = enrol(srv, args.patients)
        r = run_batches(srv, tuples, ids, clients=1)
        r.spot_check = spot_check(srv, tuples, ids, args.spot_check)
    report_run("batch ingest (SQLite)", r)
    return asdict(r)


def part_c(args: argparse.Namespace, tuples: Sequence[Item]) -> dict[str, Any]:
    """Closed loop (the most the server does, and its latency there), then paced at
    `--single-rate` on a fresh server and database (the latency at that load: the target)."""
    part = tuples[:args.single_events]
    out: dict[str, Any] = {}
    for rate in ((None,) if args.single_closed else ()) + (args.single_rate,):
        label = "closed loop" if rate is None else f"paced at {rate:,.0f}/s"
        with serving(f"c: sqlite single, {label}", workers=args.single_workers) as srv:
            ids = enrol(srv, args.patients)
            r = run_single(srv, part, ids, clients=args.single_clients, rate=rate)
            r.spot_check = spot_check(srv, part, ids, args.spot_check)
        report_run(f"single-event ingest (SQLite, {args.single_workers} worker(s), {label})", r)
        doc = asdict(r) | {"server_workers": args.single_workers}
        if rate is None:
            out.update(doc)
        else:
            out["paced"] = doc
    return out


def part_d(args: argparse.Namespace, tuples: Sequence[Item]) -> dict[str, Any]:
    admin = os.environ.get("CAREPOINTS_BENCH_PG_URL", PG_DEFAULT)
    why = pg_reachable(admin)
    if why:
        print(f"  skipped: PostgreSQL unreachable at {admin} ({why})")
        return {"skipped": why}
    env = {"CAREPOINTS_SECRET_KEY": secrets.token_urlsafe(32),
           "CAREPOINTS_CHECKPOINT_KEY": secrets.token_urlsafe(32),
           "CAREPOINTS_PII_KEY": secrets.token_urlsafe(32)}
    out: dict[str, Any] = {}
    try:
        for workers in (1, args.pg_workers):
            url = pg_fresh(admin)
            with serving(f"d: postgresql x{workers}", db_url=url, workers=workers, env=env) as srv:
                ids = enrol(srv, args.patients)
                r = run_batches(srv, tuples, ids, clients=args.pg_clients)
                r.spot_check = spot_check(srv, tuples, ids, args.spot_check)
            report_run(f"batch ingest (PostgreSQL, {workers} worker(s))", r)
            out[f"workers_{workers}"] = asdict(r) | {"server_workers": workers}
    finally:
        pg_drop(admin)
    return out


# --------------------------------------------------------------------------- summary


def mark(ok: bool | None) -> str:
    return "–" if ok is None else ("✓" if ok else "✗")


def summarise(res: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    def eps(part: dict[str, Any] | None) -> float | None:
        return part.get("events_per_s") if isinstance(part, dict) else None

    a, b, c, d = (res.get(k) for k in "abcd")
    d1 = d.get("workers_1") if isinstance(d, dict) else None
    dn = d.get(f"workers_{args.pg_workers}") if isinstance(d, dict) else None
    cp = c.get("paced") if isinstance(c, dict) else None
    ea, eb, ec, ecp, ed1, edn = eps(a), eps(b), eps(c), eps(cp), eps(d1), eps(dn)
    ratio_ba = round(eb / ea, 3) if ea and eb else None
    ratio_d = round(edn / ed1, 3) if ed1 and edn else None
    # The most any number of workers could give on this machine if an event cost the
    # same CPU however many there are: one worker's run left (1 - busy) of it idle.
    busy1 = d1.get("cpu_busy") if isinstance(d1, dict) else None
    bound_d = round(1 / busy1, 2) if busy1 else None

    def latency(part: dict[str, Any] | None) -> dict[str, float]:
        return part.get("latency_ms", {}) if isinstance(part, dict) else {}

    lat, latp = latency(c), latency(cp)
    p99 = latp.get("p99")
    targets = {
        "b_vs_a_ge_0.30": None if ratio_ba is None else ratio_ba >= 0.30,
        "c_ge_1500_eps": None if ecp is None else ecp >= 1500,
        "c_p99_le_20ms": None if p99 is None else p99 <= 20,
        f"d_{args.pg_workers}w_ge_2x_1w": None if ratio_d is None else ratio_d >= 2.0,
    }
    ran = [(k, v) for k, v in (("b", b), ("c", c), ("c_paced", cp), ("d1", d1), (f"d{args.pg_workers}", dn))
           if isinstance(v, dict) and "events_per_s" in v]
    checks = {k: bool(v["spot_check"]["passed"]) for k, v in ran if v.get("spot_check")}
    dups = {k: v["duplicates"] == v["expected_duplicates"] for k, v in ran}

    def fmt(x: float | None) -> str:
        return "—" if x is None else f"{x:,.0f}"

    lines: list[tuple[str, str, str, str]] = [
        ("(a) raw sqlite3 yardstick", f"{fmt(ea)} ev/s", "", ""),
        ("(b) HTTP batch ×100, SQLite", f"{fmt(eb)} ev/s",
         "" if ratio_ba is None else f"(b)/(a) = {ratio_ba:.0%}", f"≥ 30% {mark(targets['b_vs_a_ge_0.30'])}"),
        (f"(c) HTTP single, {args.single_clients} clients, closed loop", f"{fmt(ec)} ev/s",
         "" if not lat else "p50/p90/p99/max " + "/".join(f"{lat[k]:g}" for k in ("p50", "p90", "p99", "max"))
         + " ms", "(the most it does)"),
        (f"(c) HTTP single, paced at {args.single_rate:,.0f}/s", f"{fmt(ecp)} ev/s",
         "" if not latp else "p50/p90/p99/max " + "/".join(f"{latp[k]:g}" for k in ("p50", "p90", "p99", "max"))
         + " ms",
         f"≥ 1,500 {mark(targets['c_ge_1500_eps'])}  p99 ≤ 20 ms {mark(targets['c_p99_le_20ms'])}"),
        (f"(d) PostgreSQL batch, 1 worker ({args.pg_clients} clients)", f"{fmt(ed1)} ev/s",
         "" if busy1 is None else f"CPU busy {busy1:.0%}: at most ×{bound_d:.2f} here", ""),
        (f"(d) PostgreSQL batch, {args.pg_workers} workers", f"{fmt(edn)} ev/s",
         "" if ratio_d is None else f"×{ratio_d:.2f} of 1 worker",
         f"≥ 2× {mark(targets[f'd_{args.pg_workers}w_ge_2x_1w'])}"),
    ]
    lines = [line for line, part in zip(lines, "abccdd", strict=True) if part in res]
    print("\nSummary" + f"  ({args.events} events, {args.patients} patients, {os.cpu_count()} CPUs)")
    w = max((len(x[0]) for x in lines), default=0)
    for name, fig, ratio, target in lines:
        print(f"  {name:<{w}}  {fig:>14}  {ratio:<34} {target}")
    if checks:
        print("  spot checks: " + ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in checks.items()))
    if not all(dups.values()):
        print("  duplicate counts differ from the workload's resends in: "
              + ", ".join(k for k, ok in dups.items() if not ok))
    for k, v in res.items():
        if isinstance(v, dict) and v.get("error"):
            print(f"  ({k}) FAILED: {v['error'][:600]}")
        if isinstance(v, dict) and v.get("skipped"):
            print(f"  ({k}) skipped: {v['skipped']}")
    return {"ratios": {"b_over_a": ratio_ba, f"d_{args.pg_workers}w_over_1w": ratio_d,
                       "d_cpu_bound": bound_d},
            "targets": targets, "spot_checks": checks, "duplicates_as_expected": dups}


def busy_warning() -> list[float]:
    """The 1/5/15-minute load averages; warns when other work competes for the CPUs
    (the figures, and most of all the ratios, are then not comparable)."""
    load = [round(x, 2) for x in os.getloadavg()]
    cpus = os.cpu_count() or 1
    if load[0] > 0.5 * cpus:
        print(f"  ! load average {load[0]:.1f} on {cpus} CPUs before the runs: "
              "something else is using the machine, figures will be low and noisy")
    return load


def run_each(names: list[str], runners: dict[str, Callable[[], dict[str, Any]]],
             title: Callable[[str], str]) -> tuple[dict[str, Any], bool]:
    """Run the named parts in order; a part that fails is reported and recorded, and the rest still run."""
    res: dict[str, Any] = {}
    failed = False
    for name in names:
        print(f"\n{title(name)}")
        try:
            res[name] = runners[name]()
        except (BenchError, OSError, http.client.HTTPException, subprocess.SubprocessError) as e:
            print(f"  FAILED: {e}")
            res[name] = {"error": str(e)}
            failed = True
    return res, failed


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--events", type=int, default=50000)
    ap.add_argument("--patients", type=int, default=5000)
    ap.add_argument("--only", default="a,b,c,d", help="comma-separated parts to run (a,b,c,d)")
    ap.add_argument("--single-events", type=int, default=20000, help="events for (c)")
    ap.add_argument("--single-clients", type=int, default=24, help="concurrent connections for (c)")
    ap.add_argument("--single-rate", type=float, default=1600.0,
                    help="events/s offered in (c)'s paced run (the target is judged there)")
    ap.add_argument("--no-single-closed", dest="single_closed", action="store_false",
                    help="skip (c)'s closed-loop run")
    ap.add_argument("--single-workers", type=int, default=1, help="server workers for (c)")
    ap.add_argument("--pg-workers", type=int, default=4, help="server workers for the second (d) run")
    ap.add_argument("--pg-clients", type=int, default=8, help="concurrent connections for (d)")
    ap.add_argument("--spot-check", type=int, default=50, help="patients to check after each run (0 = all)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress and errors (stderr) in order
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set("abcd")
    if unknown:
        ap.error(f"unknown parts: {','.join(sorted(unknown))}")

    tuples = workload(args.events, args.patients)
    print(f"workload: {len(tuples)} events over {args.patients} patients, "
          f"{len(tuples) - len(set(tuples))} resends; today {datetime.now(CST).date()}")
    load_before = busy_warning()
    today = datetime.now(CST).date()
    days = sorted({date.fromisoformat(d) for _, _, d in tuples})
    if days and (days[-1] > today or (today - days[0]).days > 3 * 365):
        print(f"  ! the workload's days ({days[0]}..{days[-1]}) are not within the last 3 years "
              "(max_event_age): events would earn nothing and the spot checks fail")
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "a": lambda: part_a(args),
        "b": lambda: part_b(args, tuples),
        "c": lambda: part_c(args, tuples),
        "d": lambda: part_d(args, tuples),
    }
    titles = {"a": "raw-sqlite3 yardstick", "b": "HTTP batch ingest, SQLite",
              "c": "single-event HTTP ingest, SQLite", "d": "HTTP batch ingest, PostgreSQL"}
    res, failed = run_each([p for p in "abcd" if p in parts], runners, lambda p: f"({p}) {titles[p]}")
    load_after = [round(x, 2) for x in os.getloadavg()]  # includes this run's own load
    summary = summarise(res, args)
    doc = {"generated_at": datetime.now(CST).isoformat(timespec="seconds"),
           "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_before": load_before,
                    "loadavg_after": load_after},
           "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "results": res, **summary}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {args.out}")
    invalid = not all(summary["spot_checks"].values()) or not all(summary["duplicates_as_expected"].values())
    return 1 if failed or invalid else 0


if __name__ == "__main__":
    sys.exit(main())
