"""The audit log records who did what, hides secrets, and can only grow."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from peewee import DatabaseError

from core import audit
from db.models import AuditLog
from tests.conftest import TEST_DATABASE_URL


def test_record_keeps_actor_entity_changes_and_origin(db, make):
    ws = make.workspace()
    owner = make.user(ws, role="owner", real_name="Ada")
    project = make.project(ws)
    entry = audit.record(owner, "project.updated", project,
                         {"name": ["Old", "New"], "access_token": "xoxb-1", "nested": {"client_secret": "s"}},
                         ip="203.0.113.9", user_agent="Mozilla/5.0")
    row = AuditLog.get_by_id(entry.id)
    assert row.workspace_id == ws.id
    assert row.actor_id == owner.id and row.actor_label == "Ada"
    assert (row.entity_type, row.entity_id) == ("projects", str(project.id))
    assert row.changes == {"name": ["Old", "New"], "access_token": "[redacted]",
                           "nested": {"client_secret": "[redacted]"}}
    assert (row.ip, row.user_agent) == ("203.0.113.9", "Mozilla/5.0")


def test_update_and_delete_are_refused_by_the_database(db, make):
    ws = make.workspace()
    audit.record("system", "test.event", ws)
    count = AuditLog.select().count()
    with pytest.raises(DatabaseError, match="append-only"), db.atomic():
        db.execute_sql("UPDATE audit_log SET action = 'tampered'")
    with pytest.raises(DatabaseError, match="append-only"), db.atomic():
        db.execute_sql("DELETE FROM audit_log")
    with pytest.raises(DatabaseError, match="append-only"), db.atomic():
        AuditLog.update(action="tampered").execute()
    assert AuditLog.select().count() == count
    assert not AuditLog.select().where(AuditLog.action == "tampered").exists()


def test_psql_cannot_update_delete_or_truncate_the_audit_log(db, backend, make):
    if backend.name != "postgres":
        pytest.skip("psql speaks to Postgres")
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    audit.record("system", "test.event", make.workspace())
    before = AuditLog.select().count()
    db.close()
    url = TEST_DATABASE_URL
    env = {"PGOPTIONS": f"-c search_path={backend.schema}", "PATH": "/usr/bin:/bin"}
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log",
                      "TRUNCATE audit_log"):
        done = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-c", statement],
                              capture_output=True, text=True, env=env, timeout=30)
        assert done.returncode != 0, statement
        assert "append-only" in done.stderr
    done = subprocess.run(["psql", url, "-At", "-c", "SELECT count(*) FROM audit_log"],
                          capture_output=True, text=True, env=env, timeout=30)
    assert done.stdout.strip() == str(before)
