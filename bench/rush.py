"""Booking-rush benchmark (抢号): thousands of patients race for the few slots of
one session over HTTP, on SQLite and then on PostgreSQL.

    .venv/bin/python bench/rush.py [--attempts 5000] [--clients 200] [--slots 50]
                                   [--only sqlite,postgres] [--pg-workers 4]

Each run starts `carepoints serve` in a subprocess on a fresh database with
bench/ingest.py's `serving` helper (SQLite: a temporary file, `--sqlite-workers`
server workers, default 1; PostgreSQL: a database `cp_rush_<pid>` of the run's own,
created from `CAREPOINTS_BENCH_PG_URL` and dropped after it, default
postgresql+psycopg://postgres@127.0.0.1:5432/test, `--pg-workers` server
workers, default 4; skipped with a message when unreachable). Untimed setup:
an institution, a department, a clinician and one session of exactly
`--slots` 5-minute slots (08:00 local, Asia/Shanghai, three days ahead), all in
the online pool (`"pattern": ["online"]`, `"referral_share": 0`), then
`--attempts` distinct patients enrolled with ingest.py's `enrol`.

The rush: one `POST /api/v1/appointments` per patient (channel online, its own
idempotency key), from `--clients` concurrent keep-alive connections driven by
a lean asyncio client (one thread; the load generator must cost far less than
the server). Every connection is opened first, then all are released
together; each sends its next attempt as soon as it has the previous answer.

The session is already released (`release_at` one minute before it is
created) rather than opening a few seconds into the run. The rush is the
moment the clients are released together, which is what a 放号 moment is;
a `release_at` in the future would either have the clients wait for it
(the same thing, plus clock noise) or have the early attempts answered
409 `scheduling.not_open`, which would then need a retry. Retries would
break "one attempt per patient" and mix not-open answers into the figures.
Before the rush, `GET /api/v1/sessions/{id}` must show the session open with
`--slots` free online slots.

Correctness (exit status 1 when any fails): exactly `--slots` bookings (201);
no slot, seq or appointment booked twice in the answers; the booked seqs
are 1..slots each once; afterwards `GET /api/v1/sessions/{id}` shows no
free slot; no 5xx. Each other attempt should be answered 409
`scheduling.session_full`. Anything else is counted and shown as
"unexpected". Printed: those counts, requests/s over the rush, latency
p50/p90/p99/max (from sending the request to having the whole answer; also
for the 201s and the 409s apart, and when the last booking was answered),
and the target "p99 ≤ 250 ms" (on all answers). A missed target does not change the exit status.
Writes the figures as JSON to bench/out/rush.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import (  # bench/ is on the path (just above); E402 is not selected
    CST,
    PG_DEFAULT,
    BenchError,
    Conn,
    Server,
    busy_warning,
    cpu_busy_since,
    cpu_jiffies,
    dumps,
    enrol,
    loads,
    percentile,
    pg_drop,
    pg_fresh,
    pg_reachable,
    run_each,
    serving,
    short,
)

BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / "out" / "rush.json"
SLOT_MINUTES = 5
FIRST_SLOT = (8, 0)  # local time of the first slot
DAYS_AHEAD = 3
P99_TARGET_MS = 250.0
REQUEST_TIMEOUT = 120.0  # seconds for one answer before the run is called failed
DATABASES = ("sqlite", "postgres")
# Not ingest.py's `cp_bench`: a database of this run's own, so that an ingest benchmark or
# another rush running at the same time on the same PostgreSQL is neither dropped nor
# dropping this one (both drop theirs WITH (FORCE) when they start and end).
PG_RUSH_DB = f"cp_rush_{os.getpid()}"


def admin_post(conn: Conn, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, doc = conn.call("POST", path, body)
    if status != 201 or not isinstance(doc, dict) or not doc.get("id"):
        raise BenchError(f"POST {path} {short(body)} -> {status} {short(doc)}")
    return doc


def get_session(conn: Conn, session_id: str) -> dict[str, Any]:
    status, doc = conn.call("GET", f"/api/v1/sessions/{session_id}")
    if status != 200 or not isinstance(doc, dict) or not isinstance(doc.get("free"), dict):
        raise BenchError(f"GET /api/v1/sessions/{session_id} -> {status} {short(doc)}")
    return doc


def create_session(srv: Server, slots: int) -> dict[str, Any]:
    """Institution, department, clinician and one session of `slots` online slots of
    5 minutes, DAYS_AHEAD days ahead (local), already released."""
    start_min = FIRST_SLOT[0] * 60 + FIRST_SLOT[1]
    end_min = start_min + slots * SLOT_MINUTES
    if end_min >= 24 * 60:
        raise BenchError(f"{slots} slots of {SLOT_MINUTES} minutes from "
                         f"{FIRST_SLOT[0]:02d}:{FIRST_SLOT[1]:02d} do not fit in a day")
    now = datetime.now(CST)
    conn = Conn(srv.port, srv.key)
    try:
        inst = admin_post(conn, "/api/v1/institutions", {"code": "rush", "name_zh": "抢号医院"})
        dept = admin_post(conn, "/api/v1/departments",
                          {"institution_id": inst["id"], "code": "rush-dept", "name_zh": "专家门诊"})
        clin = admin_post(conn, "/api/v1/clinicians",
                          {"department_id": dept["id"], "code": "rush-doc", "name": "名医", "title": "主任医师"})
        body = {"clinician_id": clin["id"], "date": (now + timedelta(days=DAYS_AHEAD)).date().isoformat(),
                "start": f"{start_min // 60:02d}:{start_min % 60:02d}",
                "end": f"{end_min // 60:02d}:{end_min % 60:02d}",
                "slot_minutes": SLOT_MINUTES, "capacity": slots, "level": "expert", "fee_cny": "50.00",
                "pattern": ["online"], "referral_share": 0,
                "release_at": (now - timedelta(minutes=1)).isoformat(timespec="seconds")}
        sess = admin_post(conn, "/api/v1/sessions", body)
        doc = get_session(conn, sess["id"])
    finally:
        conn.close()
    want = {"online": slots, "onsite": 0, "referral": 0}
    if doc.get("status") != "open" or doc["free"] != want or doc.get("capacity") != slots:
        raise BenchError(f"session before the rush: expected open with free {want}, got {short(doc)}")
    return doc


# --------------------------------------------------------------------------- the rush


@dataclass
class Answer:
    patient: int  # index into the patient ids
    status: int
    doc: Any
    latency: float  # seconds
    done: float  # when the answer was in: perf_counter, then seconds since the rush started
    retried: bool = False


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server closes) of one HTTP/1.1 answer with a Content-Length."""
    raw = await reader.readuntil(b"\r\n\r\n")
    length, closes = 0, False
    for line in raw.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            closes = True
    payload = await reader.readexactly(length) if length else b""
    return int(raw[9:12]), payload, closes


async def _rush_client(port: int, key: str, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                       bodies: Sequence[bytes], jobs: Iterator[int], gate: asyncio.Event,
                       answers: list[Answer], counts: Counter[str]) -> None:
    """One keep-alive connection: waits at the gate, then sends one booking at a time,
    taking the next patient from the shared `jobs` when it has the previous answer. A
    connection the server dropped before answering is reopened and the same request
    sent once more (safe: the idempotency key makes a booking at most once; counted)."""
    reader, writer = conn
    head = (f"POST /api/v1/appointments HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: ").encode()
    clock = time.perf_counter
    await gate.wait()
    try:
        for j in jobs:
            body = bodies[j]
            request = head + str(len(body)).encode() + b"\r\n\r\n" + body
            t0 = clock()
            retried = False
            while True:
                try:
                    writer.write(request)
                    await writer.drain()
                    status, payload, closes = await asyncio.wait_for(_read_answer(reader), REQUEST_TIMEOUT)
                    break
                except (asyncio.IncompleteReadError, ConnectionError) as e:
                    writer.close()
                    if retried:
                        raise BenchError(f"patient #{j + 1}: connection dropped twice ({type(e).__name__})") from e
                    retried = True
                    counts["reconnects"] += 1
                    reader, writer = await _open(port)
                except TimeoutError as e:
                    raise BenchError(f"patient #{j + 1}: no answer within {REQUEST_TIMEOUT:.0f} s") from e
            done = clock()
            latency = done - t0
            try:
                doc: Any = loads(payload) if payload else None
            except ValueError:
                doc = payload.decode(errors="replace")
            answers.append(Answer(j, status, doc, latency, done, retried))
            if closes:
                writer.close()
                counts["server_closed"] += 1
                reader, writer = await _open(port)
    finally:
        writer.close()


def run_rush(srv: Server, session_id: str, patient_ids: Sequence[str], clients: int) -> tuple[list[Answer], float,
                                                                                             dict[str, int],
                                                                                             float | None]:
    """Fire one booking per patient from `clients` connections released together;
    answers (answers, wall seconds, connection counts, CPU busy share)."""
    bodies = [dumps({"patient_id": pid, "session_id": session_id, "channel": "online",
                     "idempotency_key": f"rush-{i + 1}"}) for i, pid in enumerate(patient_ids)]
    answers: list[Answer] = []
    counts = Counter[str]()

    async def drive() -> tuple[float, float | None]:
        conns = await asyncio.gather(*(_open(srv.port) for _ in range(clients)))  # before the clock
        gate = asyncio.Event()
        jobs = iter(range(len(bodies)))  # shared: the next patient goes to the next free connection
        tasks = [asyncio.create_task(_rush_client(srv.port, srv.key, c, bodies, jobs, gate, answers, counts))
                 for c in conns]
        await asyncio.sleep(0.05)  # every client is waiting at the gate
        cpu = cpu_jiffies()
        t = time.perf_counter()
        gate.set()
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        dt = time.perf_counter() - t
        for a in answers:
            a.done -= t
        return dt, cpu_busy_since(cpu)

    dt, busy = asyncio.run(drive())
    return answers, dt, dict(counts), busy


# --------------------------------------------------------------------------- checks


@dataclass
class RushResult:
    database: str
    server_workers: int
    attempts: int
    clients: int
    slots: int
    booked: int
    session_full: int
    server_errors: int
    unexpected: dict[str, int]
    duplicate_slots: int
    duplicate_seqs: int
    duplicate_appointments: int
    duplicate_patients: int
    seqs_ok: bool
    missing_seqs: list[int]
    free_after: dict[str, int]
    seconds: float
    requests_per_s: float
    latency_ms: dict[str, float]
    latency_ms_booked: dict[str, float]  # the 201s alone (they do the work: event, points, outbox)
    latency_ms_full: dict[str, float]  # the 409 session_full alone
    sold_out_ms: float | None  # from the release to the last booking's answer
    cpu_busy: float | None
    reconnects: int = 0
    server_closed: int = 0
    full_before_last_booking: int | None = None  # 409s answered while bookings were still being made
    examples: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    p99_target_met: bool = False

    @property
    def correct(self) -> bool:
        return all(self.checks.values())


def tally(database: str, workers: int, answers: Sequence[Answer], slots: int, clients: int, dt: float,
          counts: dict[str, int], busy: float | None, session_after: dict[str, Any],
          patient_ids: Sequence[str]) -> RushResult:
    booked: list[Answer] = []
    full = errors = 0
    unexpected = Counter[str]()
    examples: dict[str, Any] = {}
    for a in answers:
        code = a.doc.get("error") if isinstance(a.doc, dict) else None
        if a.status == 201 or (a.status == 200 and a.retried):  # 200: the replay of a retried booking
            if isinstance(a.doc, dict) and "seq" in a.doc and "slot_id" in a.doc:
                booked.append(a)
                continue
            kind = f"{a.status} without seq/slot_id"
        elif a.status == 409 and code == "scheduling.session_full":
            full += 1
            continue
        elif a.status >= 500:
            errors += 1
            kind = f"{a.status} {code}"
        else:
            kind = f"{a.status} {code}"
        if a.status < 500:
            unexpected[kind] += 1
        examples.setdefault(kind, {"patient": patient_ids[a.patient], "status": a.status, "answer": short(a.doc)})

    def dup(values: Sequence[Any]) -> int:
        return sum(n - 1 for n in Counter(values).values() if n > 1)

    seqs = [a.doc["seq"] for a in booked]
    missing = sorted(set(range(1, slots + 1)) - set(seqs))
    seqs_ok = sorted(seqs) == list(range(1, slots + 1))
    free = {str(k): int(v) for k, v in session_after.get("free", {}).items()}
    def pcts(values: Sequence[Answer]) -> dict[str, float]:
        lat = sorted(a.latency * 1000 for a in values)
        return {f"p{q}": round(percentile(lat, q), 2) for q in (50, 90, 99)} | {
            "max": round(lat[-1], 2) if lat else 0.0}

    latency = pcts(answers)
    full_answers = [a for a in answers if a.status == 409 and isinstance(a.doc, dict)
                    and a.doc.get("error") == "scheduling.session_full"]
    # Answers are in completion order: did any "full" come before the last booking? (Not an
    # error: with slots being claimed and rolled back side by side it may say "full" while
    # a slot is only held; it is shown because it would look unfair to a patient.)
    booked_ids = {id(a) for a in booked}
    last_booked = max((i for i, a in enumerate(answers) if id(a) in booked_ids), default=None)
    early_full = None if last_booked is None else sum(
        1 for a in answers[:last_booked] if a.status == 409 and isinstance(a.doc, dict)
        and a.doc.get("error") == "scheduling.session_full")
    res = RushResult(
        database=database, server_workers=workers, attempts=len(answers), clients=clients, slots=slots,
        booked=len(booked), session_full=full, server_errors=errors, unexpected=dict(unexpected),
        duplicate_slots=dup([a.doc["slot_id"] for a in booked]), duplicate_seqs=dup(seqs),
        duplicate_appointments=dup([a.doc.get("id") for a in booked]),
        duplicate_patients=dup([a.doc.get("patient_id") for a in booked]),
        seqs_ok=seqs_ok, missing_seqs=missing[:20], free_after=free, seconds=round(dt, 3),
        latency_ms_booked=pcts(booked), latency_ms_full=pcts(full_answers),
        sold_out_ms=round(max(a.done for a in booked) * 1000, 1) if booked else None,
        requests_per_s=round(len(answers) / dt, 1) if dt else 0.0, latency_ms=latency, cpu_busy=busy,
        reconnects=counts.get("reconnects", 0), server_closed=counts.get("server_closed", 0),
        full_before_last_booking=early_full, examples=examples)
    res.checks = {
        f"booked == {slots}": res.booked == slots,
        "no duplicate bookings": not (res.duplicate_slots or res.duplicate_seqs or res.duplicate_appointments
                                      or res.duplicate_patients),
        f"seqs are 1..{slots} once each": seqs_ok,
        "free == 0 afterwards": bool(free) and sum(free.values()) == 0,
        "no 5xx": errors == 0,
    }
    res.p99_target_met = latency["p99"] <= P99_TARGET_MS
    return res


def report(r: RushResult) -> None:
    print(f"  rush: {r.attempts} attempts in {r.seconds:.2f} s = {r.requests_per_s:,.0f} requests/s "
          f"({r.clients} clients, {r.server_workers} server worker(s))"
          + (f"  CPU busy {r.cpu_busy:.0%} of {os.cpu_count()}" if r.cpu_busy is not None else ""))
    print("  latency ms " + " ".join(f"{k}={v:g}" for k, v in r.latency_ms.items())
          + f"   p99 ≤ {P99_TARGET_MS:g} ms {'✓' if r.p99_target_met else '✗'}")
    print("  latency ms, bookings (201) " + " ".join(f"{k}={v:g}" for k, v in r.latency_ms_booked.items())
          + "; session_full (409) " + " ".join(f"{k}={v:g}" for k, v in r.latency_ms_full.items())
          + ("" if r.sold_out_ms is None else f"; last booking answered {r.sold_out_ms:g} ms after the release"))
    print(f"  booked {r.booked} (expected {r.slots}), 409 session_full {r.session_full}, "
          f"server errors (5xx) {r.server_errors}, other unexpected {sum(r.unexpected.values())}")
    print(f"  duplicates: slots {r.duplicate_slots}, seqs {r.duplicate_seqs}, appointments "
          f"{r.duplicate_appointments}, patients {r.duplicate_patients}; seqs 1..{r.slots} once each: "
          f"{'yes' if r.seqs_ok else 'NO (missing ' + ','.join(map(str, r.missing_seqs)) + ')'}; "
          f"free afterwards {r.free_after}")
    if r.full_before_last_booking:
        print(f"  note: {r.full_before_last_booking} session_full answers came before the last booking's answer")
    if r.reconnects or r.server_closed:
        print(f"  connections: {r.reconnects} dropped and retried, {r.server_closed} closed by the server")
    for kind, n in r.unexpected.items():
        print(f"  unexpected {kind}: {n}×, e.g. {r.examples[kind]['answer']}")
    for kind, ex in r.examples.items():
        if kind not in r.unexpected:
            print(f"  server error {kind}, e.g. {ex['answer']}")
    print("  checks: " + ", ".join(f"{k} {'✓' if ok else '✗'}" for k, ok in r.checks.items()))


# --------------------------------------------------------------------------- runs


def rush_on(label: str, database: str, args: argparse.Namespace, workers: int, db_url: str | None = None,
            env: dict[str, str] | None = None) -> RushResult:
    with serving(label, db_url=db_url, workers=workers, env=env) as srv:
        try:
            return _rush(srv, database, args, workers)
        except BenchError:
            show_log_errors(srv)
            raise


def show_log_errors(srv: Server, n: int = 3000) -> None:
    """The server's logged crashes (`unhandled … on …` with their frames, tracebacks) on stderr."""
    try:
        text = srv.log.read_text(errors="replace")
    except OSError:
        return
    marks = [i for i in (text.find("unhandled "), text.find("Traceback")) if i >= 0]
    if marks:
        print(f"  server log ({srv.label}):\n{text[min(marks):min(marks) + n]}", file=sys.stderr)


def _rush(srv: Server, database: str, args: argparse.Namespace, workers: int) -> RushResult:
    sess = create_session(srv, args.slots)
    print(f"  session {sess['id']} on {sess['date']} {sess['start'][11:16]}–{sess['end'][11:16]}: "
          f"{args.slots} online slots, released at {sess['release_at']}")
    ids = enrol(srv, args.attempts)
    answers, dt, counts, busy = run_rush(srv, sess["id"], ids, args.clients)
    conn = Conn(srv.port, srv.key)
    try:
        after = get_session(conn, sess["id"])
    finally:
        conn.close()
    res = tally(database, workers, answers, args.slots, args.clients, dt, counts, busy, after, ids)
    report(res)
    if res.server_errors:
        show_log_errors(srv)
    return res


def run_sqlite(args: argparse.Namespace) -> dict[str, Any]:
    res = rush_on("rush: sqlite", "sqlite", args, args.sqlite_workers)
    return asdict(res) | {"correct": res.correct}


def run_postgres(args: argparse.Namespace) -> dict[str, Any]:
    admin = os.environ.get("CAREPOINTS_BENCH_PG_URL", PG_DEFAULT)
    why = pg_reachable(admin)
    if why:
        print(f"  skipped: PostgreSQL unreachable at {admin} ({why})")
        return {"skipped": why}
    env = {"CAREPOINTS_SECRET_KEY": secrets.token_urlsafe(32),
           "CAREPOINTS_CHECKPOINT_KEY": secrets.token_urlsafe(32),
           "CAREPOINTS_PII_KEY": secrets.token_urlsafe(32)}
    try:
        url = pg_fresh(admin, PG_RUSH_DB)
        res = rush_on(f"rush: postgresql x{args.pg_workers}", "postgres", args, args.pg_workers, url, env)
    finally:
        pg_drop(admin, PG_RUSH_DB)
    return asdict(res) | {"correct": res.correct}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--attempts", type=int, default=5000, help="patients, one booking attempt each")
    ap.add_argument("--clients", type=int, default=200, help="concurrent keep-alive connections")
    ap.add_argument("--slots", type=int, default=50, help="slots of the session")
    ap.add_argument("--only", default=",".join(DATABASES), help="comma-separated databases (sqlite,postgres)")
    ap.add_argument("--sqlite-workers", type=int, default=1, help="server workers on SQLite")
    ap.add_argument("--pg-workers", type=int, default=4, help="server workers on PostgreSQL")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    only = [d.strip() for d in args.only.split(",") if d.strip()]
    unknown = set(only) - set(DATABASES)
    if unknown:
        ap.error(f"unknown databases: {','.join(sorted(unknown))}")
    if args.attempts < 1 or args.clients < 1 or args.slots < 1:
        ap.error("--attempts, --clients and --slots must be at least 1")

    print(f"rush: {args.attempts} patients, one booking each, from {args.clients} connections "
          f"for {args.slots} slots; today {datetime.now(CST).date()}")
    load_before = busy_warning()
    runners: dict[str, Callable[[], dict[str, Any]]] = {"sqlite": lambda: run_sqlite(args),
                                                        "postgres": lambda: run_postgres(args)}
    res, failed = run_each([db for db in DATABASES if db in only], runners, str)
    failed = failed or any(r.get("correct") is False for r in res.values())
    load_after = [round(x, 2) for x in os.getloadavg()]

    print(f"\nSummary  ({args.attempts} attempts, {args.clients} clients, {args.slots} slots, "
          f"{os.cpu_count()} CPUs)")
    for db, r in res.items():
        if "skipped" in r:
            print(f"  {db:<8}  skipped: {r['skipped']}")
        elif "error" in r:
            print(f"  {db:<8}  FAILED: {r['error'][:600]}")
        else:
            lat = r["latency_ms"]
            print(f"  {db:<8}  booked {r['booked']}/{r['slots']}  full {r['session_full']}  5xx {r['server_errors']}  "
                  f"other {sum(r['unexpected'].values())}  dup {r['duplicate_slots'] + r['duplicate_seqs']}  "
                  f"{r['requests_per_s']:>7,.0f} req/s  p50/p90/p99/max "
                  + "/".join(f"{lat[k]:g}" for k in ("p50", "p90", "p99", "max"))
                  + f" ms  p99 ≤ {P99_TARGET_MS:g} ms {'✓' if r['p99_target_met'] else '✗'}  "
                  f"{'correct' if r['correct'] else 'INCORRECT'}")
    doc = {"generated_at": datetime.now(CST).isoformat(timespec="seconds"),
           "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_before": load_before,
                    "loadavg_after": load_after},
           "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "target": {"p99_ms_le": P99_TARGET_MS},
           "results": res,
           "correct": not failed}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
