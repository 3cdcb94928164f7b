"""Migrations with peewee's own runner (playhouse.migrations, a.k.a. pwmigrate).

    python -m db.migrate up        apply pending migrations (make migrate, Procfile release)
    python -m db.migrate status    list them; exits 1 while any is pending (a deploy gate)
    python -m db.migrate diff      drift between the database and the models

Why pwmigrate: it is maintained with peewee itself, runs each migration and its history row
in one transaction, and its generator writes frozen model copies we review by hand.
peewee-migrate's autogenerator mis-typed JSONB and wanted the abstract base as a table
(reference/engine.md §3.8).
"""
from __future__ import annotations

import sys
from pathlib import Path

from playhouse.migrations import Runner
from playhouse.schema_diff import diff_models

DIRECTORY = Path(__file__).resolve().parent / "migrations"


def runner(db) -> Runner:
    return Runner(db, directory=str(DIRECTORY))


def migrate(db) -> list[str]:
    """Apply every pending migration; returns the names applied."""
    with db.connection_context():
        return runner(db).up()


def pending(db) -> list[str]:
    with db.connection_context():
        return [m.name for m in runner(db).status() if not m.applied]


def main(argv: list[str]) -> int:
    from core.bootstrap import start
    from db import database
    from db.models import ALL_MODELS

    command = argv[0] if argv else "up"
    start()
    db = database.obj
    if command == "up":
        applied = migrate(db)
        print("applied: " + ", ".join(applied) if applied else "database is up to date.")
        return 0
    if command == "status":
        waiting = pending(db)
        print("pending: " + ", ".join(waiting) if waiting else "database is up to date.")
        return 1 if waiting else 0
    if command == "diff":
        with db.connection_context():
            drift = diff_models(db, ALL_MODELS)
        print(drift if drift else "schema matches models.")
        return 1 if drift else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
