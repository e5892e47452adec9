"""`carepoints analytics …`: re-roll the analytics roll-ups of past days (after a correction,
a late import or a job that did not run)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Annotated

import typer

analytics_app = typer.Typer(no_args_is_help=True, help="Analytics roll-ups")


def _day(raw: str, option: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        typer.echo(f"error: {option} must be a local date YYYY-MM-DD", err=True)
        raise typer.Exit(2) from None


@analytics_app.command("rollup")
def rollup_cmd(day: Annotated[str, typer.Option("--day", help="the first local day to re-roll (YYYY-MM-DD)")],
               to: Annotated[str | None, typer.Option("--to", help="the last local day (default: --day)")] = None,
               now: Annotated[str | None, typer.Option(help="ISO 8601 instant (default: now)")] = None) -> None:
    """Re-roll every closed day from --day to --to, then the weeks and months holding them
    (idempotent: a day's rows are replaced). Today and later days are live, never rolled up."""
    from carepoints import bootstrap
    from carepoints.analytics import rollup
    from carepoints.config import get_settings
    from carepoints.kit.time import local_date, parse_now

    first, last = _day(day, "--day"), _day(to, "--to") if to else None
    last = last or first
    settings = get_settings()
    if last < first or (last - first).days >= settings.analytics_max_range_days:
        typer.echo(f"error: --to must be on or after --day, at most {settings.analytics_max_range_days} days", err=True)
        raise typer.Exit(2)
    try:
        instant = parse_now(now)
    except ValueError:
        typer.echo("error: --now must be an ISO 8601 instant", err=True)
        raise typer.Exit(2) from None
    bootstrap.prepare()
    today = local_date(instant, settings.tz)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    result = rollup.rollup_days(days, today, settings.tz)
    skipped = sum(1 for d in days if d >= today)
    typer.echo(json.dumps({**result, "skipped_live_days": skipped}, ensure_ascii=False))
