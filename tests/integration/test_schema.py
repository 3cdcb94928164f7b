"""The schema a fresh database gets from the migrations is the one the models declare, and
instants survive a round trip as the same aware UTC instant on both databases."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from playhouse.schema_diff import diff_models

from db import connect, database
from db.migrate import migrate, pending
from db.models import ALL_MODELS, Post
from tests.conftest import drop_postgres_schema, new_postgres_schema


def _introspect_postgres(db, schema: str) -> dict:
    def rows(sql):
        return sorted(tuple(r) for r in db.execute_sql(sql, (schema,)).fetchall())
    columns = rows("""SELECT table_name, column_name, data_type, is_nullable, character_maximum_length
                      FROM information_schema.columns WHERE table_schema = %s
                      AND table_name <> 'schema_migration'""")
    constraints = rows("""SELECT c.conrelid::regclass::text, c.contype, pg_get_constraintdef(c.oid)
                          FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                          WHERE n.nspname = %s AND c.conrelid::regclass::text <> 'schema_migration'""")
    indexes = rows("""SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %s
                      AND tablename <> 'schema_migration'""")
    # Names the two schemas can't share: strip the schema prefix from definitions.
    indexes = [(t, i, d.replace(f"{schema}.", "")) for t, i, d in indexes]
    return {"columns": columns, "constraints": constraints, "indexes": indexes}


def _introspect_sqlite(db) -> dict:
    rows = db.execute_sql("SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'index') "
                          "AND name NOT LIKE 'sqlite_%' AND tbl_name <> 'schema_migration'").fetchall()
    normal = lambda sql: re.sub(r"\s+", " ", (sql or "").replace("IF NOT EXISTS ", "")).strip()
    return {"objects": sorted((t, n, normal(s)) for t, n, s in rows)}


@pytest.fixture
def two_fresh_databases(backend, tmp_path):
    """(migrated from zero, created from the models)."""
    made = []
    if backend.name == "postgres":
        for _ in range(2):
            schema, url = new_postgres_schema("herald_schema")
            made.append((schema, connect(url)))
    else:
        for name in ("migrated", "models"):
            made.append((None, connect(f"sqlite:///{tmp_path / name}.db")))
    yield made
    for schema, db in made:
        db.close_all() if hasattr(db, "close_all") else db.close()
        if schema:
            drop_postgres_schema(schema)


def test_fresh_database_migrated_from_zero_matches_the_models(backend, two_fresh_databases):
    (schema_a, migrated), (schema_b, declared) = two_fresh_databases
    applied = migrate(migrated)
    assert applied[0] == "0001_initial" and applied == sorted(applied)
    assert pending(migrated) == []
    with declared.bind_ctx(ALL_MODELS):
        declared.create_tables(ALL_MODELS)
    with migrated.bind_ctx(ALL_MODELS):
        assert not diff_models(migrated, ALL_MODELS)
    if backend.name == "postgres":
        a = _introspect_postgres(migrated, schema_a)
        b = _introspect_postgres(declared, schema_b)
    else:
        a, b = _introspect_sqlite(migrated), _introspect_sqlite(declared)
    assert a == b
    # And it really is a full schema, with the constraints the acceptance names.
    text = repr(a)
    assert "post_targets_due" in text and "scheduled" in text
    assert "ON DELETE CASCADE" in text and "ON DELETE RESTRICT" in text and "ON DELETE SET NULL" in text


def test_due_targets_index_is_partial(db, backend):
    if backend.name == "postgres":
        (definition,) = db.execute_sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'post_targets_due'").fetchone()
    else:
        (definition,) = db.execute_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'post_targets_due'").fetchone()
    assert "WHERE" in definition and "scheduled" in definition


def test_timestamps_are_timestamptz_on_postgres(db, backend):
    if backend.name != "postgres":
        pytest.skip("TIMESTAMPTZ is a Postgres type")
    types = dict(db.execute_sql(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'post_targets'").fetchall())
    assert types["next_attempt_at"] == "timestamp with time zone"
    assert types["created_at"] == "timestamp with time zone"


def test_an_aware_instant_comes_back_as_the_same_instant(db, make):
    ws = make.workspace()
    author = make.user(ws)
    project = make.project(ws)
    kolkata = timezone(timedelta(hours=5, minutes=30))
    written = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=kolkata)
    post = make.post(ws, project, author, scheduled_at=written)
    read = Post.get_by_id(post.id).scheduled_at
    assert read == written
    assert read.utcoffset() == timedelta(0)
    assert read.tzinfo is not None
    assert read.isoformat() == "2026-03-28T20:00:15.123456+00:00"


def test_instants_compare_as_instants_not_as_text(db, make):
    ws = make.workspace()
    author = make.user(ws)
    project = make.project(ws)
    base = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
    # Written with different offsets and precisions; ordering must follow time.
    make.post(ws, project, author, body="a", scheduled_at=base.astimezone(timezone(timedelta(hours=-7))))
    make.post(ws, project, author, body="b", scheduled_at=base + timedelta(microseconds=500))
    make.post(ws, project, author, body="c", scheduled_at=base + timedelta(seconds=1))
    cut = (base + timedelta(milliseconds=1)).astimezone(timezone(timedelta(hours=9)))
    due = [p.body for p in Post.select().where(Post.scheduled_at <= cut).order_by(Post.scheduled_at)]
    assert due == ["a", "b"]


def test_a_naive_datetime_is_refused(db, make):
    ws = make.workspace()
    author = make.user(ws)
    project = make.project(ws)
    with pytest.raises(ValueError, match="naive"):
        make.post(ws, project, author, scheduled_at=datetime(2026, 1, 1, 12, 0))
    assert Post.select().count() == 0
