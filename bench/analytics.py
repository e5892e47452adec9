"""Analytics benchmark: a medical alliance of a million patients on PostgreSQL.

    .venv/bin/python bench/analytics.py            # 1,000,000 patients, 20,000,000 ledger entries
    .venv/bin/python bench/analytics.py --small    # 20,000 patients, 400,000 entries (database ..._small)
    .venv/bin/python bench/analytics.py --reuse    # the database of the last run: roll-ups and queries only
    [--generate-only] [--skip-rollups | --keep-rollups] [--rollup-days N] [--runs 5] [--db NAME] [--out FILE] [--drop]

With `--reuse` the data is kept and only brought up to the current models (`catch_up`: analytics'
own tables made anew, tables / nullable columns / indexes added since created), so the roll-ups
and views can be timed again as their code changes without the long generation.

Steps, each timed:

1. A fresh database (`carepoints_bench`, or `carepoints_bench_small`; dropped and created through
   the `postgres` database at `--admin-url`, default postgresql://postgres@127.0.0.1:5432/postgres),
   brought to the current schema with the project's migrations and seed (`bootstrap.prepare`).
2. The base data (bench/analytics_data.py): patients over 730 local days ending yesterday (and
   today so far), their events, ledger (transfers, lots, allocations, holds), appointments on
   the slots of clinic sessions, readings, conditions, follow-ups, care alerts, redemptions,
   written with COPY over one connection, the bulk tables' secondary indexes dropped before and
   built after, then VACUUM ANALYZE. Hash chains are real; analytics never verifies them.
3. The roll-ups: `carepoints.analytics.rollup.rollup_days(every closed day, today, tz)`, the
   job's own code; each day's and each week's / month's time is measured around the registry's
   `replace` (one transaction per day or period, as the job runs). Target: a day ≤ 60 s.
4. Every registered view (`carepoints.analytics.views.all_views()`) over the default range (the
   last 30 days, today live), the last whole month, the last 4 whole ISO weeks, the last whole
   year (12 whole months), an arbitrary 90-day range and the two years, without and with each
   breakdown it accepts: one warm-up, then the median of `--runs` (default 5) runs of
   `views.run(...)` in its own read transaction; `points (additive)` is the points view without
   its distinct count (`points.additive_report`), timed apart. Targets: additive KPIs over any
   range and distinct-patient KPIs over whole weeks / months ≤ 300 ms. The roll-up finishers
   (experiment results, rebuilt after every run) are timed apart from the days.
5. Rolled-up against live in the same run: points issued over the 4 weeks and the two years from
   the view against the same sum straight from `transfers` (and the two must agree), and the day
   roll-ups' own `compute` run live over every day of the 4 weeks.

Prints a table (view, range, by, median ms, target, OK/MISS), the roll-up times and a summary
block, and writes everything as JSON to bench/out/analytics.json. Generation is one process and
one connection; other databases on the server are not touched. Exit status 1 when a step fails
(not when a target is missed)."""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import secrets
import statistics
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / "out" / "analytics.json"
ADMIN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_DEFAULT = "carepoints_bench"
FULL = (1_000_000, 20_000_000)
SMALL = (20_000, 400_000)
QUERY_TARGET_MS = 300.0
DAY_TARGET_S = 60.0

sys.path.insert(0, str(BENCH_DIR))
os.environ.setdefault("CAREPOINTS_SCHEDULER", "off")
for _name in ("CAREPOINTS_SECRET_KEY", "CAREPOINTS_CHECKPOINT_KEY", "CAREPOINTS_PII_KEY"):
    os.environ.setdefault(_name, secrets.token_urlsafe(32))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- the database


def db_url(admin: str, name: str, driver: str = "postgresql+psycopg") -> str:
    base, _, _db = admin.rpartition("/")
    return f"{base.replace('postgresql://', driver + '://', 1)}/{name}"


def fresh_database(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def use_database(url: str) -> None:
    """Point carepoints (settings, engines) at the bench database, as tests/conftest.py `_use` does."""
    from carepoints.config import reset_settings
    from carepoints.kit.db import dispose_engines

    dispose_engines()
    os.environ["CAREPOINTS_DATABASE_URL"] = url
    reset_settings()


_INDEXES = """
SELECT t.relname, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), c.conname, pg_get_constraintdef(c.oid)
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid AND t.relnamespace = 'public'::regnamespace
LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype IN ('p', 'u') AND c.conrelid = t.oid
WHERE t.relname = ANY(%s)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = i.indexrelid)
ORDER BY t.relname, 2
"""


def drop_indexes(conn: psycopg.Connection[Any], tables: Sequence[str]) -> list[str]:
    """Drop the secondary indexes (and unique / primary keys no foreign key relies on) of the
    bulk tables; answers the statements that build them again."""
    rows = conn.execute(_INDEXES, (list(tables),)).fetchall()
    rebuild = []
    for table, index, indexdef, conname, condef in rows:
        if conname:
            conn.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{conname}"')
            rebuild.append(f'ALTER TABLE "{table}" ADD CONSTRAINT "{conname}" {condef}')
        else:
            conn.execute(f"DROP INDEX {index}")
            rebuild.append(indexdef)
    conn.commit()
    return rebuild


def generate(args: argparse.Namespace, url: str) -> dict[str, Any]:
    from analytics_data import BULK_TABLES, Generator
    from carepoints import bootstrap
    from carepoints.config import get_settings
    from carepoints.kit.db import get_engine

    out: dict[str, Any] = {}
    t = time.perf_counter()
    fresh_database(args.admin_url, args.db)
    use_database(url)
    bootstrap.prepare(get_engine())
    out["schema_s"] = round(time.perf_counter() - t, 1)
    log(f"schema: migrations and seed in {out['schema_s']} s")
    with psycopg.connect(db_url(args.admin_url, args.db, "postgresql")) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK triggers while loading (data is consistent)
        conn.execute("SET synchronous_commit = off")
        conn.commit()
        rebuild = drop_indexes(conn, BULK_TABLES)
        log(f"dropped {len(rebuild)} indexes of {len(BULK_TABLES)} bulk tables")
        now = datetime.now(UTC) if args.now is None else datetime.fromisoformat(args.now)
        gen = Generator(conn, args.patients, args.entries, args.seed, now, get_settings().tz, log=lambda m: log(m))
        t = time.perf_counter()
        data = gen.run()
        out["generate_s"] = round(time.perf_counter() - t, 1)
        log(f"generated {data['patients']:,} patients, {data['events']:,} events, {data['entries']:,} ledger "
            f"entries in {out['generate_s']} s")
        t = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        for stmt in rebuild:
            conn.execute(stmt)
            conn.commit()
        out["indexes_s"] = round(time.perf_counter() - t, 1)
        log(f"indexes built in {out['indexes_s']} s")
        conn.commit()
        conn.autocommit = True
        t = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        out["vacuum_analyze_s"] = round(time.perf_counter() - t, 1)
        log(f"VACUUM ANALYZE in {out['vacuum_analyze_s']} s")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        out["database_gb"] = round((size[0] if size else 0) / 1e9, 2)
    out.update(data)
    out["now"] = now.isoformat()
    return out


def catch_up(url: str, now: datetime, keep_rollups: bool = False) -> list[str]:
    """Bring a reused bench database to the current models without generating it again: analytics'
    own tables (derived data, empty until the roll-ups run) are made anew from the models (unless
    `keep_rollups`), and
    the tables, columns (nullable or with a server default) and indexes the code has gained since are added (areas whose
    migrations were filled in after the data was made); then the migrations are stamped as
    current. The bench experiment is added when its table is new. Answers what changed."""
    from alembic import command
    from sqlalchemy import inspect, text
    from sqlalchemy.schema import CreateIndex

    from analytics_data import Clock, ensure_experiment
    from carepoints.config import get_settings
    from carepoints.kit import migrate
    from carepoints.kit.db import get_engine
    from carepoints.models import metadata

    engine = get_engine()
    added: list[str] = []
    with engine.begin() as conn:
        have = set(inspect(conn).get_table_names())
        own = [] if keep_rollups else [t for t in metadata.sorted_tables if t.name.startswith("analytics_")]
        for t in reversed(own):
            conn.execute(text(f'DROP TABLE IF EXISTS "{t.name}" CASCADE'))
        have -= {t.name for t in own}
        missing = [t for t in metadata.sorted_tables if t.name not in have]
        metadata.create_all(conn, tables=missing)
        added += [f"table {t.name}" for t in missing if t not in own]
        insp = inspect(conn)
        for t in metadata.sorted_tables:
            if t in missing:
                continue
            columns = {c["name"] for c in insp.get_columns(t.name)}
            for col in t.columns:
                arg = getattr(col.server_default, "arg", None)
                default = f"'{arg}'" if isinstance(arg, str) else getattr(arg, "text", None)  # 'x' or text("0")
                if col.name not in columns and (col.nullable or isinstance(default, str)):
                    conn.execute(text(f'ALTER TABLE "{t.name}" ADD COLUMN "{col.name}" '
                                      f"{col.type.compile(dialect=conn.dialect)}"
                                      + ("" if col.nullable else f" NOT NULL DEFAULT {default}")))
                    added.append(f"column {t.name}.{col.name}")
            indexes = {i["name"] for i in insp.get_indexes(t.name)}
            for index in t.indexes:
                if index.name not in indexes:
                    conn.execute(CreateIndex(index))
                    added.append(f"index {index.name}")
        cfg = migrate.alembic_config(url)
        cfg.attributes["connection"] = conn
        command.stamp(cfg, "head")
        conn.execute(text("ANALYZE"))
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as pconn:
        staff = pconn.execute("SELECT id FROM staff_users ORDER BY id LIMIT 1").fetchone()
        clock = Clock(int((now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)), get_settings().tz,
                      730)
        if staff and "table experiments" in added:
            ensure_experiment(pconn, clock, staff[0])
            added.append("the bench experiment")
    return added


# --------------------------------------------------------------------------- roll-ups


def run_rollups(now: datetime, last_days: int | None = None) -> dict[str, Any]:
    """`rollup_days` over every closed day (or the last `last_days`), timing each day and period
    around `replace`."""
    from carepoints.analytics import rollup
    from carepoints.config import get_settings
    from carepoints.kit.time import local_date

    tz = get_settings().tz
    today = local_date(now, tz)
    registered = rollup.registered()
    if not registered:
        log("roll-ups: none registered")
        return {"registered": []}
    from sqlalchemy import func, select

    from carepoints.kit.db import read_tx, table
    from carepoints.ledger.models import Transfer

    with read_tx() as session:
        first_at = session.execute(select(func.min(table(Transfer).c.at))).scalar()
    first = local_date(first_at, tz) if first_at else today
    days = [first + timedelta(days=i) for i in range((today - first).days)]
    if last_days is not None:
        days = days[-last_days:]
    timings: list[tuple[str, str, date, float, int]] = []
    original = rollup.replace

    def timed(session: Any, r: Any, start: date, tz_: Any) -> int:
        t0 = time.perf_counter()
        n = original(session, r, start, tz_)
        timings.append((r.name, r.grain, start, time.perf_counter() - t0, n))
        return n

    finishers = dict(rollup.FINISHERS)
    finish_s: dict[str, float] = {}

    def timed_finisher(name: str, fn: Any) -> Any:
        def run(*a: Any) -> int:
            t0 = time.perf_counter()
            rollup.replace = original  # type: ignore[assignment]  # days a finisher rolls itself are not the job's days
            try:
                return int(fn(*a))
            finally:
                rollup.replace = timed  # type: ignore[assignment]
                finish_s[name] = finish_s.get(name, 0.0) + time.perf_counter() - t0
        return run

    log(f"roll-ups: {', '.join(f'{r.name} ({r.grain})' for r in registered)} over {len(days)} days"
        + (f"; then {', '.join(finishers)}" if finishers else ""))
    rollup.replace = timed  # type: ignore[assignment]
    rollup.FINISHERS.update({k: timed_finisher(k, fn) for k, fn in finishers.items()})
    t = time.perf_counter()
    try:
        result = rollup.rollup_days(days, today, tz)
    finally:
        rollup.replace = original  # type: ignore[assignment]
        rollup.FINISHERS.update(finishers)
    total = time.perf_counter() - t
    per_day: dict[date, float] = {}
    per_period: dict[tuple[str, date], float] = {}
    per_rollup: dict[str, list[float]] = {}
    for name, grain, start, secs, _n in timings:
        per_rollup.setdefault(name, []).append(secs)
        if grain == "day":
            per_day[start] = per_day.get(start, 0.0) + secs
        else:
            per_period[(grain, start)] = per_period.get((grain, start), 0.0) + secs
    day_times = sorted(per_day.values())
    out: dict[str, Any] = {
        "registered": [f"{r.name} ({r.grain})" for r in registered], "result": result, "total_s": round(total, 1),
        "days": len(day_times),
        "day_median_s": round(statistics.median(day_times), 3) if day_times else None,
        "day_max_s": round(day_times[-1], 3) if day_times else None,
        "per_rollup_median_s": {k: round(statistics.median(v), 4) for k, v in per_rollup.items()},
        "per_grain": {},
    }
    for grain in ("week", "month"):
        xs = sorted(v for (g, _s), v in per_period.items() if g == grain)
        if xs:
            out["per_grain"][grain] = {"periods": len(xs), "median_s": round(statistics.median(xs), 3),
                                       "max_s": round(xs[-1], 3)}
    out["finishers_s"] = {k: round(v, 3) for k, v in finish_s.items()}
    out["day_target_met"] = bool(day_times) and day_times[-1] <= DAY_TARGET_S
    log(f"roll-ups: {out['days']} days + {result.get('periods')} periods in {out['total_s']} s; a day: median "
        f"{out['day_median_s']} s, max {out['day_max_s']} s (target ≤ {DAY_TARGET_S:g} s "
        f"{'OK' if out['day_target_met'] else 'MISS'}); " + ", ".join(
            f"{g}: median {v['median_s']} s, max {v['max_s']} s" for g, v in out["per_grain"].items())
        + "".join(f"; {k}: {v} s" for k, v in out["finishers_s"].items()))
    log("roll-ups per day, median s: " + ", ".join(f"{k} {v}" for k, v in out["per_rollup_median_s"].items()))
    return out


# --------------------------------------------------------------------------- queries


def ranges(today: date, first: date) -> list[tuple[str, date | None, date | None, bool]]:
    """(label, start, end, whole weeks / months) of the ranges every view is timed over."""
    month_end = today.replace(day=1) - timedelta(days=1)
    month = (month_end.replace(day=1), month_end)
    sunday = today - timedelta(days=today.weekday() + 1)
    weeks = (sunday - timedelta(days=27), sunday)
    y = month_end.replace(day=1)
    y = y.replace(year=y.year - 1, month=y.month % 12 + 1) if y.month < 12 else y.replace(month=1)
    year = (y, month_end)
    return [
        ("default (30 d)", None, None, False),
        (f"month {month[0]:%Y-%m}", *month, True),
        ("4 weeks", *weeks, True),
        ("12 months", *year, True),
        ("90 days", today - timedelta(days=100), today - timedelta(days=11), False),
        ("2 years", first, today - timedelta(days=1), False),
    ]


def param_sets(params: Sequence[str], found: dict[str, list[str]]) -> list[dict[str, str]] | str:
    """Every combination of the values the generated data offers for a view's own parameters
    (a parameter without values is left to the view's default), or why the view is skipped."""
    combos: list[dict[str, str]] = [{}]
    for p in params:
        values = found.get(p)
        if values:
            combos = [{**c, p: v} for c in combos for v in values]
    if "experiment_id" in params and not found.get("experiment_id"):
        return "no experiment in the bench database"
    return combos


def time_views(now: datetime, runs: int, first: date, params_found: dict[str, list[str]],
               only: set[str] | None = None) -> list[dict[str, Any]]:
    from carepoints.analytics import live, views
    from carepoints.config import get_settings
    from carepoints.kit.db import read_tx
    from carepoints.kit.errors import AppError
    from carepoints.kit.time import local_date

    today = local_date(now, get_settings().tz)
    out: list[dict[str, Any]] = []
    from carepoints.analytics import points

    # (name shown, view, report function or None for the view's own): `points (additive)` is the
    # points view without its distinct count, timed apart (the additive target covers any range)
    entries: list[tuple[str, Any, Any]] = [(v.name, v, None) for v in views.all_views()]
    entries += [(f"{v.name} (additive)", v, points.additive_report) for v in views.all_views() if v.name == "points"]
    registered = [(name, v, fn) for name, v, fn in entries if only is None or v.name in only or name in only]
    log(f"queries: {len(registered)} views: {', '.join(name for name, _v, _fn in registered)}")
    for name, v, fn in registered:
        combos = param_sets(v.params, params_found)
        if isinstance(combos, str):
            out.append({"view": name, "range": "—", "by": "—", "whole": False, "skipped": combos})
            continue
        cases = [(by, params) for params in combos for by in (None, *v.breakdowns)]
        for label, start, end, whole in ranges(today, first):
            for by, params in cases:
                shown = by or (",".join(f"{k}={val}" for k, val in params.items() if k != "experiment_id") or "—")
                row: dict[str, Any] = {"view": name, "range": label, "by": shown, "whole": whole,
                                       "start": start.isoformat() if start else None,
                                       "end": end.isoformat() if end else None, "params": params}

                def once(v: Any = v, fn: Any = fn, start: date | None = start, end: date | None = end,
                         by: str | None = by, params: dict[str, str] = params, cold: bool = False) -> Any:
                    if cold:
                        live.forget()  # today computed anew, as by the first request of a minute
                    with read_tx() as session:
                        if fn is None:
                            return views.run(session, v.name, now, start=start, end=end, by=by, params=params or None)
                        report = fn(session, views.query(v, now, start=start, end=end, by=by), now)
                        at = live.computed_at(session)
                        if at is not None:
                            report.extra["live_at"] = at.isoformat()
                        return report

                try:
                    report = once()
                    times = []
                    for _ in range(runs):
                        t = time.perf_counter()
                        once()
                        times.append((time.perf_counter() - t) * 1000)
                    colds = []
                    if "live_at" in report.extra:
                        for _ in range(runs):
                            t = time.perf_counter()
                            once(cold=True)
                            colds.append((time.perf_counter() - t) * 1000)
                except AppError as exc:
                    row["error"] = f"{exc.status_code} {exc.code}"
                    out.append(row)
                    continue
                except Exception as exc:  # a view's bug: report it, time the others
                    row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                    row["traceback"] = traceback.format_exc(limit=4)
                    out.append(row)
                    continue
                row["median_ms"] = round(statistics.median(times), 1)
                row["max_ms"] = round(max(times), 1)
                if colds:
                    row["cold_ms"] = round(statistics.median(colds), 1)
                row["rows"] = len(report.rows)
                row["ok"] = row["median_ms"] <= QUERY_TARGET_MS
                out.append(row)
        done = [r for r in out if r["view"] == name and "median_ms" in r]
        if done:
            medians = [r["median_ms"] for r in done]
            log(f"  {name}: {len(done)} queries, median of medians {statistics.median(medians):.1f} ms, "
                f"max {max(medians):.1f} ms")
    return out


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'view':<28} {'range':<16} {'by':<30} {'median ms':>10} {'max ms':>8} {'rows':>6}  target  "
          f"      {'cold ms':>8}")
    for r in rows:
        head = f"{r['view']:<28} {r['range']:<16} {r['by']:<30}"
        if "median_ms" in r:
            target = f"≤{QUERY_TARGET_MS:g}" + ("" if r["whole"] else "*")
            cold = f"{r['cold_ms']:>8.1f}" if "cold_ms" in r else ""
            print(f"{head} {r['median_ms']:>10.1f} {r['max_ms']:>8.1f} {r['rows']:>6}  {target:<7} "
                  f"{'OK' if r['ok'] else 'MISS':<4}  {cold}")
        else:
            print(f"{head} {'—':>10} {'':>8} {'':>6}  {r.get('error') or 'skipped: ' + r.get('skipped', '')}")
    print("  * an arbitrary range: the target covers its additive figures; distinct-patient figures are "
          "rolled up for whole weeks and months")
    print("  cold ms: a range with today, its live figures computed anew (the first request of each "
          "analytics_live_seconds); median ms shares them (analytics/live.py)")


# --------------------------------------------------------------------------- rolled-up vs live


def ratios(now: datetime, runs: int, first: date, query_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issued points of a view against the same sum straight from the ledger, and the day
    roll-ups' own compute run live over every day of the 4 weeks."""
    from sqlalchemy import text

    from carepoints.analytics import rollup, views
    from carepoints.config import get_settings
    from carepoints.kit.db import read_tx
    from carepoints.kit.time import day_start_utc, local_date

    tz = get_settings().tz
    today = local_date(now, tz)
    out: list[dict[str, Any]] = []
    rs = {label: (s, e) for label, s, e, _w in ranges(today, first)}
    issued_view = None
    for v in views.all_views():
        if v.params:
            continue
        with read_tx() as session:
            try:
                report = views.run(session, v.name, now, start=rs["4 weeks"][0], end=rs["4 weeks"][1])
            except Exception:  # noqa: S112 - a failing view is reported by the query table
                continue
        hit = next((c.key for c in report.columns if c.key in ("issued", "value_issued")), None)
        if hit is not None and len(report.rows) == 1:  # a total, not a series
            issued_view = (v.name, hit)
            break
    for label in ("4 weeks", "2 years"):
        start, end = rs[label]
        assert start is not None
        assert end is not None
        lo, hi = day_start_utc(start, tz), day_start_utc(end + timedelta(days=1), tz)
        sql = text("SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE kind = 'earn' AND at >= :lo AND at < :hi")
        times, live_value = [], None
        for i in range(runs + 1):
            t = time.perf_counter()
            with read_tx() as session:
                live_value = session.execute(sql, {"lo": lo, "hi": hi}).scalar()
            if i:
                times.append((time.perf_counter() - t) * 1000)
        live_ms = statistics.median(times)
        entry: dict[str, Any] = {"figure": "points issued (earn)", "range": label, "live_sql_ms": round(live_ms, 1),
                                 "live_value": int(live_value or 0)}
        if issued_view is not None:
            name, key = issued_view
            row = next((r for r in query_rows if r["view"] == name and r["range"] == label and r["by"] == "—"
                        and "median_ms" in r), None)
            with read_tx() as session:
                report = views.run(session, name, now, start=start, end=end)
            value = int(report.rows[0].get(key) or 0)
            entry.update(view=name, column=key, view_value=value, same=value == int(live_value or 0))
            if row:
                entry["view_ms"] = row["median_ms"]
                entry["ratio"] = round(live_ms / row["median_ms"], 1) if row["median_ms"] else None
        out.append(entry)
    day_rollups = [r for r in rollup.registered() if r.grain == "day"]
    if day_rollups:
        start, end = rs["4 weeks"]
        assert start is not None
        assert end is not None
        t = time.perf_counter()
        with read_tx() as session:
            for i in range((end - start).days + 1):
                for r in day_rollups:
                    r.compute(session, start + timedelta(days=i), tz)
        live_ms = (time.perf_counter() - t) * 1000
        # the dashboard's views over the same 4 weeks, without breakdown (each one's median)
        views_4w = {r["view"]: r["median_ms"] for r in query_rows if r["range"] == "4 weeks" and r["by"] == "—"
                    and "median_ms" in r and not r.get("params")}
        entry = {"figure": "every day roll-up computed live", "range": "4 weeks", "live_compute_ms": round(live_ms, 1),
                 "views": sorted(views_4w)}
        if views_4w:
            entry["views_total_ms"] = round(sum(views_4w.values()), 1)
            entry["ratio"] = round(live_ms / entry["views_total_ms"], 1) if entry["views_total_ms"] else None
        out.append(entry)
    for e in out:
        if "view_ms" in e:
            log(f"ratio: {e['figure']} over {e['range']}: rolled-up {e['view_ms']} ms ({e['view']}) vs live "
                f"{e['live_sql_ms']} ms ({e['ratio']}×); same figure: {'yes' if e['same'] else 'NO'} "
                f"({e['view_value']} / {e['live_value']})")
        elif "live_compute_ms" in e:
            log(f"ratio: the dashboard over 4 weeks ({', '.join(e['views'])}): rolled-up {e.get('views_total_ms')} ms "
                f"vs the day roll-ups' compute over the 28 days live {e['live_compute_ms']} ms ({e.get('ratio')}×)")
        else:
            log(f"ratio: {e['figure']} over {e['range']}: live {e['live_sql_ms']} ms (no view shows it)")
    return out


# --------------------------------------------------------------------------- main


def summary(doc: dict[str, Any]) -> list[str]:
    g, r, q = doc.get("generation") or {}, doc.get("rollups") or {}, doc.get("queries") or []
    timed = [x for x in q if "median_ms" in x]
    whole = [x for x in timed if x["whole"]]
    arbitrary = [x for x in timed if not x["whole"]]
    lines = [f"Analytics benchmark ({doc['host']['cpus']} CPUs, PostgreSQL {doc.get('server_version', '?')})"]
    if g:
        lines.append(f"  data: {g.get('patients', 0):,} patients, {g.get('entries', 0):,} ledger entries, "
                     f"{g.get('events', 0):,} events, {g.get('rows', {}).get('appointments', 0):,} appointments, "
                     f"{g.get('first_day')} .. {g.get('last_day')} (+ today); {g.get('database_gb')} GB")
        if "generate_s" in g:
            lines.append(f"  load: generate + COPY {g['generate_s']:,} s, indexes {g.get('indexes_s')} s, "
                         f"VACUUM ANALYZE {g.get('vacuum_analyze_s')} s")
    if r.get("days"):
        lines.append(f"  roll-ups: {r['days']} days in {r['total_s']:,} s; a day median {r['day_median_s']} s, "
                     f"max {r['day_max_s']} s (target ≤ {DAY_TARGET_S:g} s: {'OK' if r['day_target_met'] else 'MISS'})"
                     + "".join(f"; {k} median {v['median_s']} s" for k, v in r.get("per_grain", {}).items())
                     + "".join(f"; {k} {v} s" for k, v in r.get("finishers_s", {}).items()))
    if timed:
        lines.append(f"  queries: {len(timed)} timed, median of medians "
                     f"{statistics.median(x['median_ms'] for x in timed):.1f} ms, slowest "
                     f"{max(x['median_ms'] for x in timed):.1f} ms")
        lines.append(f"    whole weeks / months: {sum(x['ok'] for x in whole)}/{len(whole)} ≤ {QUERY_TARGET_MS:g} ms; "
                     f"arbitrary ranges: {sum(x['ok'] for x in arbitrary)}/{len(arbitrary)} ≤ {QUERY_TARGET_MS:g} ms")
        additive = [x for x in arbitrary if x["view"].endswith("(additive)")]
        if additive:
            lines.append(f"    additive figures alone (points without the distinct count) over arbitrary ranges: "
                         f"{sum(x['ok'] for x in additive)}/{len(additive)} ≤ {QUERY_TARGET_MS:g} ms, slowest "
                         f"{max(x['median_ms'] for x in additive):.1f} ms")
        defaults = [x for x in timed if x["view"] == "points" and x["range"].startswith("default")]
        if defaults:
            lines.append(f"    points over the default 30 days (active patients included): "
                         f"{sum(x['ok'] for x in defaults)}/{len(defaults)} ≤ {QUERY_TARGET_MS:g} ms, slowest "
                         f"{max(x['median_ms'] for x in defaults):.1f} ms")
        exps = [x for x in timed if x["view"] == "experiment_results"]
        if exps:
            slowest = max(x["median_ms"] for x in exps)
            lines.append(f"    experiment results: {len(exps)} queries, slowest {slowest:.1f} ms")
        colds = [x["cold_ms"] for x in timed if "cold_ms" in x]
        if colds:
            lines.append(f"    with today: {len(colds)} queries, today computed anew median "
                         f"{statistics.median(colds):.1f} "
                         f"ms, slowest {max(colds):.1f} ms (shared within analytics_live_seconds: the medians above)")
        lines.extend(f"    MISS {x['view']} {x['range']} by {x['by']}: {x['median_ms']} ms"
                     for x in sorted((x for x in timed if not x["ok"]), key=lambda x: -x["median_ms"])[:10])
    failed = [x for x in q if "error" in x]
    if failed:
        lines.append(f"  errors: {len(failed)} queries failed, e.g. {failed[0]['view']}: {failed[0]['error']}")
    for e in doc.get("ratios") or []:
        if "view_ms" in e:
            lines.append(f"  {e['figure']}, {e['range']}: rolled-up {e['view_ms']} ms vs live {e['live_sql_ms']} ms "
                         f"({e['ratio']}×), same figure {'yes' if e['same'] else 'NO'}")
        elif "live_compute_ms" in e:
            lines.append(f"  dashboard over 4 weeks ({len(e.get('views', []))} views): rolled-up "
                         f"{e.get('views_total_ms')} ms vs the day roll-ups computed live {e['live_compute_ms']:,} ms "
                         f"({e.get('ratio')}×)")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--patients", type=int, default=FULL[0])
    ap.add_argument("--entries", type=int, default=FULL[1], help="ledger entries to aim for")
    ap.add_argument("--small", action="store_true", help=f"{SMALL[0]:,} patients, {SMALL[1]:,} entries")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--now", help="ISO 8601 instant the data ends at (default: now)")
    ap.add_argument("--admin-url", default=os.environ.get("CAREPOINTS_BENCH_PG_ADMIN", ADMIN_DEFAULT))
    ap.add_argument("--db", help=f"the bench database, dropped and created (default {DB_DEFAULT}, "
                                 f"{DB_DEFAULT}_small with --small)")
    ap.add_argument("--reuse", action="store_true", help="keep the existing bench database (no generation)")
    ap.add_argument("--skip-rollups", action="store_true", help="keep the roll-ups of an earlier run (with --reuse)")
    ap.add_argument("--keep-rollups", action="store_true",
                    help="keep the roll-ups of an earlier run and roll up (again) the days of --rollup-days")
    ap.add_argument("--rollup-days", type=int, help="roll up only the last N closed days (older ones read as zero)")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per query (after one warm-up)")
    ap.add_argument("--views", help="time only these views (comma-separated names; default: all)")
    ap.add_argument("--drop", action="store_true", help="drop the bench database at the end")
    ap.add_argument("--out", type=Path, help=f"JSON figures (default {OUT}, analytics_small.json with --small)")
    args = ap.parse_args(argv)
    if args.small:
        args.patients, args.entries = SMALL
    args.db = args.db or (f"{DB_DEFAULT}_small" if args.small else DB_DEFAULT)
    args.out = args.out or (OUT.with_name("analytics_small.json") if args.small else OUT)
    if args.patients < 100 or args.entries < args.patients * 2:
        ap.error("--patients must be at least 100 and --entries at least twice --patients")
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    url = db_url(args.admin_url, args.db)
    meta = args.out.with_name(f"{args.db}.json")  # what was generated, for --reuse
    doc: dict[str, Any] = {"generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                           "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                    "platform": platform.platform(), "loadavg_before": list(os.getloadavg())},
                           "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                           "targets": {"query_ms_le": QUERY_TARGET_MS, "day_rollup_s_le": DAY_TARGET_S}}
    failed = False
    try:
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            doc["server_version"] = row[0] if row else "?"
        if args.reuse:
            use_database(url)
            doc["generation"] = json.loads(meta.read_text()) if meta.exists() else {}
            log(f"reusing {args.db} ({doc['generation'].get('patients', '?')} patients)")
            now0 = datetime.fromisoformat(doc["generation"].get("now") or datetime.now(UTC).isoformat())
            added = catch_up(url, now0, keep_rollups=args.skip_rollups or args.keep_rollups)
            if added:
                log(f"caught up with the current models: {', '.join(added)}")
        else:
            doc["generation"] = generate(args, url)
            meta.parent.mkdir(parents=True, exist_ok=True)
            meta.write_text(json.dumps(doc["generation"], indent=2) + "\n")
        now = datetime.fromisoformat(doc["generation"].get("now") or datetime.now(UTC).isoformat())
        first = date.fromisoformat(doc["generation"].get("first_day") or (now.date() - timedelta(days=730)).isoformat())
        if not args.generate_only:
            if not args.skip_rollups:
                doc["rollups"] = run_rollups(now, args.rollup_days)
            only = {v.strip() for v in args.views.split(",")} if args.views else None
            doc["queries"] = time_views(now, args.runs, first, view_params(), only)
            print_table(doc["queries"])
            doc["ratios"] = ratios(now, args.runs, first, doc["queries"])
    except Exception:
        failed = True
        traceback.print_exc()
    finally:
        if args.drop:
            with psycopg.connect(args.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
    doc["host"]["loadavg_after"] = list(os.getloadavg())
    lines = summary(doc)
    print("\n" + "\n".join(lines))
    doc["summary"] = lines
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nwrote {args.out}")
    return 1 if failed else 0


def view_params() -> dict[str, list[str]]:
    """Values for the views' own parameters from the bench database: the experiment the
    generator runs, and each outcome its results view offers."""
    from sqlalchemy import text

    from carepoints.kit.db import read_tx

    found: dict[str, list[str]] = {}
    with read_tx() as session:
        if session.execute(text("SELECT to_regclass('experiments') IS NOT NULL")).scalar():
            found["experiment_id"] = list(session.execute(text("SELECT id FROM experiments ORDER BY id")).scalars())
    try:
        from carepoints.experiments.schemas import OUTCOMES
    except ImportError:
        return found
    found["outcome"] = list(OUTCOMES)
    return found


if __name__ == "__main__":
    sys.exit(main())
