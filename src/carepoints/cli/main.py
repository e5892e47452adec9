"""The `carepoints` command line (API.md)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from carepoints import bootstrap
from carepoints.cli.analytics import analytics_app
from carepoints.cli.pricing import pricing_app
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
audit_app = typer.Typer(no_args_is_help=True, help="The audit log")  # (trust.audit)
app.add_typer(audit_app, name="audit")
app.add_typer(analytics_app, name="analytics")
app.add_typer(pricing_app, name="pricing")  # (services.pricing) the price catalogue import
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
                access_log=False, log_level="warning", timeout_keep_alive=30,
                log_config=None)  # uvicorn's own lines go through our (JSON) handler: kit.logs


@app.command()
def worker(tick: Annotated[float, typer.Option(min=0.5, max=600)] = 5.0) -> None:
    """Run the periodic jobs at their fixed local times and send notifications every few
    seconds (production); several workers may run at once."""
    import signal

    from carepoints.jobs.scheduler import Scheduler
    from carepoints.kit import logs

    def _terminate(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (process managers) stops as cleanly as Ctrl-C

    bootstrap.prepare()
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)  # job lines as `serve` writes them (kit.logs)
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


def _institution_ids(session: object, codes: list[str]) -> list[str]:
    """(ops.alliance) Institution codes → ids; an unknown code fails the command."""
    from sqlalchemy.orm import Session

    from carepoints.patients import institutions
    from carepoints.scheduling.errors import InstitutionNotFoundError

    assert isinstance(session, Session)  # noqa: S101
    found = institutions.ids_by_code(session, codes)
    if set(codes) - set(found):
        raise InstitutionNotFoundError()
    return [found[c] for c in dict.fromkeys(codes)]


@key_app.command("create")
def api_key_create(name: Annotated[str, typer.Option()], role: Annotated[str, typer.Option()] = "integration",
                   require_signature: bool = False,
                   rate_limit: Annotated[int | None, typer.Option(
                       min=1, max=100_000, help="requests per minute for this key (default: no limit)")] = None,
                   expires_days: Annotated[int | None, typer.Option(
                       min=1, max=3650, help="the key stops working after this many days (default: never)")] = None,
                   institution: Annotated[list[str] | None, typer.Option(
                       help="(repeatable) bind the key to this institution code: it reaches only its patients")] = None,
                   ) -> None:
    """Create an API client; the secret key is printed alone on the last line. With
    --require-signature every request must be signed with it (HMAC-SHA256, see README)."""
    from carepoints.security import keys, service

    bootstrap.prepare()
    try:
        with write_tx() as session:
            bound = _institution_ids(session, institution or [])
            kid, secret = service.create_api_key(session, name, role, utc_now(), require_signature=require_signature,
                                                 rate_limit=rate_limit, institutions=bound)
            if expires_days is not None:  # (trust.auth)
                keys.expire_in(session, kid, utc_now(), expires_days)
    except AppError as err:
        _fail(err)
    typer.echo(f"api key {kid} ({role}) created; store the secret now, it is not shown again:")
    typer.echo(secret)


@key_app.command("rotate")
def api_key_rotate(key_id: Annotated[str, typer.Option("--id", help="the key to replace")],
                   grace_hours: Annotated[int, typer.Option(min=0, max=24 * 90)] = 24) -> None:
    """(trust.auth) Issue a new secret for a key; the old one keeps working for the grace period.
    The new secret is printed alone on the last line."""
    from datetime import timedelta

    from carepoints.security import keys

    bootstrap.prepare()
    try:
        with write_tx() as session:
            kid, secret = keys.rotate(session, key_id, utc_now(), grace=timedelta(hours=grace_hours))
    except AppError as err:
        _fail(err)
    typer.echo(f"api key {key_id} rotated to {kid}; the old secret works for {grace_hours} h more. "
               "Store the new secret now, it is not shown again:")
    typer.echo(secret)


@key_app.command("revoke")
def api_key_revoke(key_id: Annotated[str, typer.Option("--id", help="the key to revoke")]) -> None:
    """(trust.auth) Refuse the key from now on."""
    from carepoints.security import keys

    bootstrap.prepare()
    try:
        with write_tx() as session:
            keys.revoke(session, key_id, utc_now())
    except AppError as err:
        _fail(err)
    typer.echo(f"api key {key_id} revoked")


@staff_app.command("create")
def staff_create(username: Annotated[str, typer.Option()], role: Annotated[str, typer.Option()],
                 password: Annotated[str | None, typer.Option()] = None,
                 institution: Annotated[str | None, typer.Option(
                     help="the institution code the user works at: they see its patients only")] = None,
                 alliance: Annotated[bool, typer.Option(
                     "--alliance", help="with --institution: sees the whole alliance")] = False) -> None:
    """Create a staff user (password from --password or a prompt); an admin also gets a TOTP
    secret, whose provisioning URI is printed on stderr."""
    from carepoints.security import service, staff

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        typer.echo("error: the password needs at least 8 characters", err=True)
        raise typer.Exit(2)
    bootstrap.prepare()
    try:
        with write_tx() as session:
            at = _institution_ids(session, [institution]) if institution else []  # (ops.alliance)
            sid = service.create_staff(session, username, password, role, utc_now(),
                                       institution_id=at[0] if at else None, alliance_wide=alliance)
            uri = staff.enrol_totp(session, sid, username, get_settings().secret_key) \
                if staff.needs_totp(role) else None  # (trust.auth) administrators log in with TOTP
    except AppError as err:
        _fail(err)
    typer.echo(f"staff user {username} ({role}) created: {sid}")
    if uri is not None:
        typer.echo("add this to an authenticator app (TOTP); the login needs its code as otp:", err=True)
        typer.echo(uri, err=True)


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


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute every sealed audit block (rows, chain, signatures); exit 1 naming the first bad row or block."""
    from carepoints.audit import service as audit
    from carepoints.kit import migrate
    from carepoints.kit.db import get_engine

    if not migrate.is_current(get_engine()):
        typer.echo("error: the database is not migrated; run `carepoints db upgrade` first", err=True)
        raise typer.Exit(2)
    with read_tx() as session:
        report = audit.verify(session, get_settings().checkpoint_key)
    if not report.ok:
        typer.echo(f"AUDIT LOG BROKEN: {report.problem}")
        raise typer.Exit(1)
    typer.echo(f"audit log intact: {report.blocks} blocks, {report.rows} rows sealed, "
               f"{report.pending} rows pending sealing")


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


@app.command("backup")
def backup_cmd(out: Annotated[Path, typer.Option("--out", help="the backup file to write")],
               force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False) -> None:
    """Back up the database while the app runs (SQLite online backup; pg_dump -Fc for PostgreSQL)."""
    from carepoints.cli import backup as backups

    try:
        written = backups.backup(out, force=force)
    except AppError as err:
        _fail(err)
    typer.echo(backups.SECRETS_NOTE)
    typer.echo(f"backup written: {written.path} ({written.size} bytes)")


@app.command("restore")
def restore_cmd(source: Annotated[Path, typer.Option("--from", help="a file written by `carepoints backup`")],
                force: Annotated[bool, typer.Option(help="replace a database that is not empty")] = False) -> None:
    """Restore a backup into the configured database (refused when it is not empty, unless --force)."""
    from carepoints.cli import backup as backups

    try:
        target = backups.restore(source, force=force)
    except AppError as err:
        _fail(err)
    typer.echo(backups.SECRETS_NOTE)
    typer.echo(f"restored {source} into {target}; check it with `carepoints ledger verify`")


# (trust.pii) PII master keys
pii_keys_app = typer.Typer(no_args_is_help=True, help="PII encryption keys")
app.add_typer(pii_keys_app, name="keys")


@pii_keys_app.command("rotate")
def keys_rotate(batch: Annotated[int, typer.Option(min=1, max=100_000, help="rows per transaction")] = 500) -> None:
    """Re-encrypt every PII value not under the current key (CAREPOINTS_PII_KEY; the old ones in
    CAREPOINTS_PII_OLD_KEYS) and recompute blind indexes, one transaction per batch; re-runnable."""
    from carepoints.patients import keys

    bootstrap.prepare()
    rotated = unreadable = 0
    after = ""
    while True:
        with write_tx() as session:
            done = keys.rotate_batch(session, after=after, size=batch)
        rotated += done.rotated
        unreadable += done.unreadable
        if done.last_id is None:
            break
        after = done.last_id
        typer.echo(f"rotated {rotated} so far")
    with read_tx() as session:
        left = keys.pending(session)
    typer.echo(f"rotated {rotated} patients; {unreadable} unreadable (their key is not configured)")
    if left:
        typer.echo("still under old keys: " + ", ".join(f"{tag}: {n}" for tag, n in left.items()))
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
