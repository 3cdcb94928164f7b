"""First use: a workspace that has no project yet gets a "Default" one the first time
someone composes, so `/social` works before anybody has visited the web settings.

The Default project asks for one approval in the channel where Herald was first used, and
keeps time in the first composer's zone. Owners change all of it on the web (/projects).
"""
from __future__ import annotations

from peewee import IntegrityError

from core import audit
from core.permissions import require
from core.workspaces import valid_timezone
from db import database
from db.models import Project, User

DEFAULT_NAME = "Default"


def approval_channel(channel_id: str | None) -> str | None:
    """Only a channel can hold approval messages: public (C…) or private (G…) ones, not a
    DM (D…) with Herald, where nobody else would see them."""
    channel_id = (channel_id or "").strip()
    return channel_id if channel_id[:1] in ("C", "G") and len(channel_id) <= 32 else None


def ensure_default_project(user: User, *, channel_id: str | None = None,
                           timezone: str | None = None) -> Project | None:
    """Create the Default project when the user's workspace has no project at all; return it
    (or None when the workspace already has projects). Anyone who may compose triggers it —
    the project is the workspace's starting point, not a setting changed by that person;
    the audit log records who was composing when it appeared."""
    require(user, "compose")
    if Project.select().where(Project.workspace == user.workspace_id).exists():
        return None
    values = {"name": DEFAULT_NAME, "approval_channel_id": approval_channel(channel_id),
              "approval_policy": "required", "approvals_required": 1,
              "timezone": valid_timezone(timezone) or "UTC"}
    try:
        with database.atomic():
            project = Project.create(workspace=user.workspace_id, **values)
            audit.record(user, "project.created", project, dict(values, onboarding=True))
    except IntegrityError:
        # Two first composers at once: the unique (workspace, name) index let one in.
        return (Project.select()
                .where((Project.workspace == user.workspace_id) & (Project.name == DEFAULT_NAME))
                .first())
    return project
