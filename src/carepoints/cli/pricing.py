"""`carepoints pricing …`: load an institution's price catalogue (费用估算) from a CSV or Excel file,
as the admin page and `POST /api/v1/pricing/catalogue/import` do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

pricing_app = typer.Typer(no_args_is_help=True, help="The price catalogue (cost estimates)")


@pricing_app.command("import")
def import_cmd(file: Annotated[Path, typer.Argument(help="a .csv (UTF-8 or GB18030) or .xlsx file")],
               institution: Annotated[str, typer.Option("--institution", help="the institution's code")],
               dry_run: Annotated[bool, typer.Option("--dry-run", help="show the changes, store nothing")] = False,
               ) -> None:
    """Import items and / or packages: all or nothing (exit 2 with the row errors, nothing stored);
    the same file again changes nothing. Prints the counts and changes as JSON."""
    from carepoints import bootstrap
    from carepoints.audit.service import Actor
    from carepoints.kit.db import read_tx, write_tx
    from carepoints.kit.errors import AppError
    from carepoints.kit.time import utc_now
    from carepoints.services.pricing import parsing, service

    if not file.is_file():
        typer.echo(f"error: no such file: {file}", err=True)
        raise typer.Exit(2)
    if file.stat().st_size > parsing.MAX_BYTES:
        typer.echo(f"error: the file is larger than {parsing.MAX_BYTES // (1024 * 1024)} MB", err=True)
        raise typer.Exit(2)
    bootstrap.prepare()
    content, now, actor = file.read_bytes(), utc_now(), Actor.system("cli.pricing_import")
    try:
        with read_tx() if dry_run else write_tx() as session:
            institution_id = service.institution_id_of(session, institution)
            report = service.import_catalogue(session, institution_id, content, actor, now, dry_run=dry_run)
    except AppError as err:
        typer.echo(f"error: {err.code}: {err.detail}", err=True)
        for f in (err.fields or [])[:50]:
            typer.echo(f"  row {f.get('row')} {f.get('column') or ''} {f.get('code') or ''}: {f['msg']}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(report, ensure_ascii=False, default=str))
    if report["errors"]:  # a dry run with row errors: the real import would be refused
        for f in report["errors"][:50]:
            typer.echo(f"  row {f.get('row')} {f.get('column') or ''} {f.get('code') or ''}: {f['msg']}", err=True)
        raise typer.Exit(2)
