"""Operator commands: `flask --app web tokens rotate`, `flask --app web db migrate`."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup


def init_app(app) -> None:
    app.cli.add_command(tokens)
    app.cli.add_command(db_group)


@click.group(cls=AppGroup)
def tokens():
    """Stored secrets (OAuth and Slack tokens)."""


@tokens.command("rotate")
@click.option("--batch-size", default=500, show_default=True, help="Rows per transaction.")
def rotate(batch_size: int):
    """Re-encrypt every stored secret under the first key in TOKEN_KEYS."""
    from core.crypto import rotate_all
    settings = current_app.config["HERALD"]
    report = rotate_all(settings.token_keys, batch_size=batch_size)
    click.echo(f"tokens rotate: {report}.")
    if report.failed:
        raise SystemExit(1)


@click.group("db", cls=AppGroup)
def db_group():
    """The database schema."""


@db_group.command("migrate")
def migrate():
    """Apply pending migrations."""
    from db import database
    from db.migrate import migrate as run
    applied = run(database.obj)
    click.echo("applied: " + ", ".join(applied) if applied else "database is up to date.")
