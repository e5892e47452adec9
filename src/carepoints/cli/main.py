"""The `carepoints` command line (API.md)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from carepoints import bootstrap
from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.kit.time import parse_now, utc_now

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False,
                  help="carepoints: patient points programme")
db_app = typer.Typer(no_args_is_help=True, help="Database")
key_app = typer.Typer(no_args_is_help=True, help="API keys for hospital systems")
staff_app = typer.Typer(no_args_is_help=True, help="Staff users")
program_app = typer.Typer(no_args_is_help=True, help="The points programme")
ledger_app = typer.Typer(no_args_is_help=True, help="The ledger")
jobs_app = typer.Typer(no_args_is_help=True, help="Periodic jobs")
for sub, name in ((db_app, "db"), (key_app, "api-key"), (staff_app, "staff"), (program_app, "program"),
                  (ledger_app, "ledger"), (jobs_app, "jobs")):
    app.add_typer(sub, name=name)


def _fail(err: AppError) -> None:
    typer.echo(f"error: {err.code}: {err.detail}", err=True)
    if err.fields:
        for f in err.fields[:20]:
            typer.echo(f"  {'.'.join(str(x) for x in f['loc'])}: {f['msg']}", err=True)
    raise typer.Exit(2)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          workers: Annotated[int, typer.Option(min=1, max=64)] = 1) -> None:
    """Migrate the database if needed, then serve the API."""
    import uvicorn

    bootstrap.prepare()
    uvicorn.run("carepoints.app:create_asgi", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_level="warning", timeout_keep_alive=30)


@app.command()
def worker(tick: Annotated[float, typer.Option(min=0.5, max=600)] = 5.0) -> None:
    """Run the periodic jobs at their fixed local times and send notifications every few
    seconds (production); several workers may run at once."""
    import signal

    from carepoints.jobs.scheduler import Scheduler

    def _terminate(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (process managers) stops as cleanly as Ctrl-C

    bootstrap.prepare()
    signal.signal(signal.SIGTERM, _terminate)
    scheduler = Scheduler(tick)
    scheduler.start()
    typer.echo(f"carepoints worker running (tick {tick:g}s); Ctrl-C stops it")
    try:
        while scheduler.running:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.stop()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations (and seed system accounts and the default programme)."""
    bootstrap.prepare()
    typer.echo("database is up to date")


@key_app.command("create")
def api_key_create(name: Annotated[str, typer.Option()], role: Annotated[str, typer.Option()] = "integration",
                   require_signature: bool = False) -> None:
    """Create an API client; the secret key is printed alone on the last line."""
    from carepoints.security import service

    bootstrap.prepare()
    try:
        with write_tx() as session:
            kid, secret = service.create_api_key(session, name, role, utc_now(), require_signature=require_signature)
    except AppError as err:
        _fail(err)
    typer.echo(f"api key {kid} ({role}) created; store the secret now, it is not shown again:")
    typer.echo(secret)


@staff_app.command("create")
def staff_create(username: Annotated[str, typer.Option()], role: Annotated[str, typer.Option()],
                 password: Annotated[str | None, typer.Option()] = None) -> None:
    """Create a staff user (password from --password or a prompt)."""
    from carepoints.security import service

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        typer.echo("error: the password needs at least 8 characters", err=True)
        raise typer.Exit(2)
    bootstrap.prepare()
    try:
        with write_tx() as session:
            sid = service.create_staff(session, username, password, role, utc_now())
    except AppError as err:
        _fail(err)
    typer.echo(f"staff user {username} ({role}) created: {sid}")


@program_app.command("load")
def program_load(file: Path) -> None:
    """Load a programme file (rules, rewards, tiers, settings) as a new version."""
    from carepoints.rewards import service as rewards
    from carepoints.rules import service

    if not file.is_file():
        typer.echo(f"error: no such file: {file}", err=True)
        raise typer.Exit(2)
    bootstrap.prepare()
    try:
        with write_tx() as session:
            version = service.load_file(session, file)
            rewards.sync_catalogue(session, service.parse_programme(file.read_bytes()), utc_now())
    except AppError as err:
        _fail(err)
    typer.echo(f"programme version {version} loaded")


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Check every hash chain, checkpoint and invariant; exit 1 naming the first broken entry."""
    from carepoints.kit import migrate
    from carepoints.kit.db import get_engine
    from carepoints.ledger import integrity

    if not migrate.is_current(get_engine()):
        typer.echo("error: the database is not migrated; run `carepoints db upgrade` first", err=True)
        raise typer.Exit(2)
    with read_tx() as session:
        report = integrity.verify(session, get_settings().checkpoint_key)
    if not report.ok:
        typer.echo(f"LEDGER BROKEN: {report.problem}")
        raise typer.Exit(1)
    typer.echo(f"ledger intact: {report.wallets} wallets, {report.entries} entries, "
               f"{report.checkpoints} checkpoints verified")


@jobs_app.command("run")
def jobs_run(name: str, now: Annotated[str | None, typer.Option(help="ISO 8601 instant")] = None) -> None:
    """Run one periodic job now (expire-points, expire-holds, seal-checkpoint)."""
    from carepoints.jobs import registry

    if name not in registry.JOBS:
        typer.echo(f"error: unknown job {name}; known: {', '.join(sorted(registry.JOBS))}", err=True)
        raise typer.Exit(2)
    try:
        instant = parse_now(now)
    except ValueError:
        typer.echo("error: --now must be an ISO 8601 instant", err=True)
        raise typer.Exit(2) from None
    bootstrap.prepare()
    result = registry.run(name, instant)
    typer.echo(json.dumps(result, ensure_ascii=False, default=str))


@app.command()
def demo() -> None:
    """Load a demo hospital (patients with months of history); idempotent."""
    from carepoints.cli import demo as demo_data

    bootstrap.prepare()
    typer.echo(demo_data.load(utc_now()))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
