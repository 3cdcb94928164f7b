"""Soft delete scope and the automatic created/updated stamps."""
from __future__ import annotations

from datetime import timedelta

from db.models import Post, Project, Workspace


def test_soft_deleted_rows_are_hidden_unless_asked_for(db, make):
    ws = make.workspace()
    author = make.user(ws)
    keep = make.project(ws, name="Keep")
    gone = make.project(ws, name="Gone")
    post = make.post(ws, keep, author)
    gone.soft_delete()
    post.soft_delete()
    assert [p.name for p in Project.select()] == ["Keep"]
    assert sorted(p.name for p in Project.with_deleted()) == ["Gone", "Keep"]
    assert Post.select().count() == 0 and Post.with_deleted().count() == 1
    assert Project.get_or_none(Project.id == gone.id) is None
    gone.restore()
    assert Project.select().where(Project.id == gone.id).exists()


def test_a_deleted_project_frees_its_name(db, make):
    ws = make.workspace()
    make.project(ws, name="Launch").soft_delete()
    assert make.project(ws, name="Launch").name == "Launch"


def test_updated_at_moves_on_save_and_on_bulk_update(db, make):
    ws = make.workspace()
    created = ws.created_at
    ws.name = "Renamed"
    ws.save()
    first = Workspace.get_by_id(ws.id).updated_at
    assert first >= created and Workspace.get_by_id(ws.id).created_at == created
    Workspace.update(name="Again").where(Workspace.id == ws.id).execute()
    second = Workspace.get_by_id(ws.id).updated_at
    assert second >= first
    assert second - created < timedelta(minutes=1)
