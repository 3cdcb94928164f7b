"""Projects (brands): a group of accounts with an approval channel and policy."""
from __future__ import annotations

from core import audit
from core.errors import NotFound, ValidationError
from core.ids import parse_id
from core.permissions import require
from core.workspaces import valid_timezone
from db import database
from db.models import APPROVAL_POLICIES, Project, SocialAccount, User, Workspace


def list_projects(workspace: Workspace) -> list[Project]:
    return list(Project.select().where(Project.workspace == workspace).order_by(Project.name))


def get_project(workspace: Workspace, project_id) -> Project:
    """A project of this workspace; another workspace's id is simply not found."""
    project_id = parse_id(project_id)
    project = project_id and (Project.select()
                              .where((Project.workspace == workspace) & (Project.id == project_id))
                              .first())
    if project is None:
        raise NotFound("No such project in this workspace.")
    return project


def create_project(actor: User, name: str, *, approval_channel_id: str | None = None,
                   approval_policy: str = "required", approvals_required: int = 1,
                   timezone: str | None = None, ip: str | None = None,
                   user_agent: str | None = None) -> Project:
    require(actor, "manage_projects")
    values = _validated(actor.workspace_id, name, approval_policy, approvals_required, timezone)
    with database.atomic():
        project = Project.create(workspace=actor.workspace_id,
                                 approval_channel_id=approval_channel_id or None, **values)
        audit.record(actor, "project.created", project,
                     dict(values, approval_channel_id=approval_channel_id), ip=ip,
                     user_agent=user_agent)
    return project


def update_project(actor: User, project: Project, *, name: str, approval_channel_id: str | None,
                   approval_policy: str, approvals_required: int, timezone: str | None,
                   ip: str | None = None, user_agent: str | None = None) -> Project:
    require(actor, "manage_projects")
    if project.workspace_id != actor.workspace_id:
        raise NotFound("No such project in this workspace.")
    values = _validated(actor.workspace_id, name, approval_policy, approvals_required, timezone,
                        exclude=project.id)
    values["approval_channel_id"] = approval_channel_id or None
    changes = {k: [getattr(project, k), v] for k, v in values.items() if getattr(project, k) != v}
    if not changes:
        return project
    with database.atomic():
        for key, value in values.items():
            setattr(project, key, value)
        project.save()
        audit.record(actor, "project.updated", project, changes, ip=ip, user_agent=user_agent)
    return project


def _validated(workspace_id, name, policy, required, timezone, exclude=None) -> dict:
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Give the project a name."
    elif len(name) > 120:
        errors["name"] = "Keep the name under 120 characters."
    else:
        clash = Project.select().where((Project.workspace == workspace_id) & (Project.name == name))
        if exclude is not None:
            clash = clash.where(Project.id != exclude)
        if clash.exists():
            errors["name"] = f"There is already a project called “{name}”."
    if policy not in APPROVAL_POLICIES:
        errors["approval_policy"] = f"Approval policy must be one of {', '.join(APPROVAL_POLICIES)}."
    try:
        required = int(required)
        if required < 1 or required > 10:
            raise ValueError
    except (TypeError, ValueError):
        errors["approvals_required"] = "Approvals needed must be a number from 1 to 10."
    zone = valid_timezone(timezone) if timezone else "UTC"
    if zone is None:
        errors["timezone"] = f"“{timezone}” isn't a time zone Herald knows (try Europe/Berlin)."
    if errors:
        raise ValidationError(errors)
    return {"name": name, "approval_policy": policy, "approvals_required": required,
            "timezone": zone}


# --------------------------------------------------------------------------------------
# Which accounts belong to a project (SocialAccount.project)

def workspace_accounts(workspace: Workspace) -> list:
    """Every social account of the workspace (any status), for choosing a project's accounts."""
    return list(SocialAccount.select().where(SocialAccount.workspace == workspace)
                .order_by(SocialAccount.platform, SocialAccount.handle))


def set_project_accounts(actor: User, project: Project, account_ids, *, ip: str | None = None,
                         user_agent: str | None = None) -> dict:
    """Make exactly `account_ids` (of the actor's workspace) the project's accounts. An account
    moved here leaves its previous project. Returns {"added": [...], "removed": [...]} (ids)."""
    require(actor, "manage_projects")
    if project.workspace_id != actor.workspace_id:
        raise NotFound("No such project in this workspace.")
    wanted = set()
    for raw in account_ids or []:
        account_id = parse_id(raw)
        if account_id is None:
            raise ValidationError({"accounts": "Pick accounts from the list."})
        wanted.add(account_id)
    if wanted:
        found = {a.id for a in SocialAccount.select(SocialAccount.id).where(
            (SocialAccount.workspace == actor.workspace_id) & SocialAccount.id.in_(list(wanted)))}
        if found != wanted:      # another workspace's account is simply unknown here
            raise ValidationError({"accounts": "Pick accounts from the list."})
    current = {a.id for a in SocialAccount.select(SocialAccount.id).where(
        (SocialAccount.workspace == actor.workspace_id) & (SocialAccount.project == project))}
    added, removed = sorted(wanted - current, key=str), sorted(current - wanted, key=str)
    if not added and not removed:
        return {"added": [], "removed": []}
    with database.atomic():
        if added:
            SocialAccount.update(project=project).where(
                (SocialAccount.workspace == actor.workspace_id) & SocialAccount.id.in_(added)).execute()
        if removed:
            SocialAccount.update(project=None).where(
                (SocialAccount.workspace == actor.workspace_id) & SocialAccount.id.in_(removed)).execute()
        changes = {"accounts": {"added": [str(a) for a in added],
                                "removed": [str(a) for a in removed]}}
        audit.record(actor, "project.accounts_changed", project, changes, ip=ip,
                     user_agent=user_agent)
    return {"added": added, "removed": removed}
