"""Shared fixtures.

Database tests run twice: on PostgreSQL (TEST_DATABASE_URL, default the local `test`
database) and on the embedded SQLite. Each pytest session works in its own Postgres schema,
so parallel runs never see each other; every test starts from empty tables.

    HERALD_TEST_BACKENDS=postgres        run the database tests on one backend only
"""
from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet

from core import crypto
from db import connect, database, init_database
from db.migrate import migrate
from db.models import ALL_MODELS

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = [b.strip() for b in os.environ.get("HERALD_TEST_BACKENDS", "postgres,sqlite").split(",")
            if b.strip()]
TEST_TOKEN_KEYS = (Fernet.generate_key().decode(),)


@dataclass
class Backend:
    name: str
    url: str                   # what a subprocess would put in DATABASE_URL
    db: object                 # the peewee Database the proxy points at
    schema: str | None = None
    template: Path | None = None


def with_search_path(url: str, schema: str) -> str:
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-c search_path={schema}')}"


def new_postgres_schema(prefix: str = "herald_test") -> tuple[str, str]:
    schema = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = connect(TEST_DATABASE_URL)
    admin.execute_sql(f'CREATE SCHEMA "{schema}"')
    admin.close_all()
    return schema, with_search_path(TEST_DATABASE_URL, schema)


def drop_postgres_schema(schema: str) -> None:
    admin = connect(TEST_DATABASE_URL)
    admin.execute_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    admin.close_all()


@pytest.fixture(scope="session", autouse=True)
def token_keys():
    crypto.configure(TEST_TOKEN_KEYS)
    return TEST_TOKEN_KEYS


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request, tmp_path_factory):
    if request.param == "postgres":
        schema, url = new_postgres_schema()
        db = init_database(url)
        migrate(db)
        yield Backend("postgres", url, db, schema=schema)
        db.close_all()
        drop_postgres_schema(schema)
    else:
        folder = tmp_path_factory.mktemp("sqlite")
        template = folder / "template.db"
        seed = connect(f"sqlite:///{template}")
        migrate(seed)
        seed.close()
        path = folder / "herald.db"
        yield Backend("sqlite", f"sqlite:///{path}", init_database(f"sqlite:///{path}"), template=template)


@pytest.fixture
def db(backend):
    """An empty, migrated database behind the `database` proxy."""
    if backend.name == "postgres":
        database.initialize(backend.db)
        _truncate_all(backend.db)
        backend.db.close_idle()
    else:
        if not backend.db.is_closed():
            backend.db.close()
        path = Path(backend.url[len("sqlite:///"):])
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(backend.template, path)
        database.initialize(backend.db)
    database.connect(reuse_if_open=True)
    yield database
    if not database.is_closed():
        database.close()


def _truncate_all(db) -> None:
    tables = ", ".join(f'"{m._meta.table_name}"' for m in ALL_MODELS)
    with db.atomic():
        # TRUNCATE is refused on audit_log by design; tests lift the guard inside this
        # transaction only.
        db.execute_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate")
        db.execute_sql(f"TRUNCATE {tables} CASCADE")
        db.execute_sql("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_truncate")
    db.close()


@pytest.fixture
def rung():
    """What the engine's seam was asked to enqueue: a real registered ringer, not a patch."""
    from core import scheduling
    calls: list[list[str]] = []
    ringer = calls.append
    scheduling.register_ringer(ringer)
    yield calls
    scheduling._ringers.remove(ringer)


@pytest.fixture
def make(db):
    """Factories for the common rows: make.workspace(), make.user(ws, role=...), …"""
    from tests.factories import Factories
    return Factories()


# --------------------------------------------------------------------------------------
# Slack: a fake Web API, Herald's Flask app pointed at it, and a signed-request sender


@pytest.fixture
def fake_slack():
    from tests.fakes.slack import FakeSlack
    with FakeSlack() as fake:
        fake.add_bot("xoxb-herald-test", team_id="T111")
        yield fake


@pytest.fixture
def herald(db, backend, fake_slack, tmp_path):
    """Herald's Flask app in single-workspace mode, talking to the fake Slack."""
    from core.settings import Settings
    from web import create_app
    settings = Settings.from_env({
        "DATABASE_URL": backend.url, "TOKEN_KEYS": ",".join(TEST_TOKEN_KEYS), "SECRET_KEY": "test",
        "HERALD_INSTANCE_PATH": str(tmp_path), "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": "xoxb-herald-test", "SLACK_API_URL": fake_slack.api_url,
        "PUBLIC_URL": "http://herald.test", "QUEUE_URL": "memory://",
    })
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def slack(herald, fake_slack):
    from tests.slack_requests import SlackRequests
    return SlackRequests(herald.test_client(), SIGNING_SECRET, fake_slack)


SIGNING_SECRET = "test-signing-secret"
