"""Workspaces, their people and roles. Every lookup takes the workspace it is scoped to."""
from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core import audit
from core.errors import NotFound, PermissionDenied, ValidationError
from core.ids import parse_id
from core.permissions import require, role_of
from db import database, for_update, write_transaction
from db.models import ROLES, Membership, User, Workspace


def ensure_workspace(team_id: str, name: str = "", enterprise_id: str | None = None,
                     *, rename: bool = False) -> Workspace:
    """The workspace for a Slack team, created on first sight (or restored if it was removed).

    `name` names a new workspace; an existing one is renamed only with rename=True (the
    install flow knows the real team name; a request only knows the domain)."""
    with write_transaction():
        workspace = Workspace.with_deleted().where(Workspace.team_id == team_id).first()
        if workspace is None:
            workspace = Workspace.create(team_id=team_id, name=name, enterprise_id=enterprise_id)
            audit.record("system", "workspace.created", workspace, {"team_id": team_id})
            return workspace
        changed = {}
        if workspace.deleted_at is not None:
            workspace.deleted_at = None
            changed["restored"] = True
        if name and workspace.name != name and (rename or not workspace.name):
            changed["name"] = [workspace.name, name]
            workspace.name = name
        if changed:
            workspace.save()
            audit.record("system", "workspace.updated", workspace, changed)
        return workspace


def get_workspace(team_id: str) -> Workspace:
    workspace = Workspace.select().where(Workspace.team_id == team_id).first()
    if workspace is None:
        raise NotFound("Herald isn't set up for this Slack workspace yet.")
    return workspace


def ensure_user(workspace: Workspace, slack_user_id: str, *, real_name: str = "",
                email: str | None = None, tz: str | None = None, role: str = "editor") -> User:
    """The User for a Slack user, created with `role` on first sight; profile kept fresh."""
    if role not in ROLES:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    with write_transaction():
        user = (User.select()
                .where((User.workspace == workspace) & (User.slack_user_id == slack_user_id))
                .first())
        if user is None:
            user = User.create(workspace=workspace, slack_user_id=slack_user_id,
                               real_name=real_name, email=email, tz=valid_timezone(tz))
            Membership.create(workspace=workspace, user=user, role=role)
            audit.record("system", "member.added", user, {"role": role}, workspace=workspace)
            return user
        fresh = {"real_name": real_name or user.real_name, "email": email or user.email,
                 "tz": valid_timezone(tz) or user.tz}
        if any(getattr(user, k) != v for k, v in fresh.items()):
            for key, value in fresh.items():
                setattr(user, key, value)
            user.save()
        return user


def find_user(workspace: Workspace, slack_user_id: str) -> User | None:
    return (User.select()
            .where((User.workspace == workspace) & (User.slack_user_id == slack_user_id))
            .first())


def has_no_members(workspace: Workspace) -> bool:
    return not Membership.select().where(Membership.workspace == workspace).exists()


def get_user(workspace: Workspace, user_id) -> User:
    user_id = parse_id(user_id)
    user = user_id and User.select().where((User.workspace == workspace) & (User.id == user_id)).first()
    if user is None:
        raise NotFound("No such person in this workspace.")
    return user


def members(workspace: Workspace) -> list[tuple[User, str]]:
    rows = (User
            .select(User, Membership.role)
            .join(Membership, on=(Membership.user == User.id))
            .where(User.workspace == workspace)
            .order_by(User.real_name, User.slack_user_id)
            .objects())
    return [(row, row.role) for row in rows]


def set_role(actor: User, user: User, role: str, *, ip: str | None = None,
             user_agent: str | None = None) -> None:
    require(actor, "manage_members")
    if user.workspace_id != actor.workspace_id:
        raise NotFound("No such person in this workspace.")
    if role not in ROLES:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    with write_transaction():
        # Lock the workspace's owner rows too, so two owners demoting each other at once
        # can't leave the workspace with none.
        owners = for_update(Membership.select().where((Membership.workspace == actor.workspace_id)
                                                      & (Membership.role == "owner")))
        owner_count = len(list(owners))
        membership = for_update(Membership.select().where(
            (Membership.workspace == actor.workspace_id) & (Membership.user == user))).get()
        old = membership.role
        if old == role:
            return
        if old == "owner" and owner_count <= 1:
            raise PermissionDenied("A workspace needs at least one owner; make someone else "
                                   "owner first.")
        membership.role = role
        membership.save()
        audit.record(actor, "member.role_changed", user, {"role": [old, role]}, ip=ip,
                     user_agent=user_agent)


def make_owner(workspace: Workspace, user: User, reason: str) -> None:
    """Promote `user` to owner without a human actor (the person who installs Herald)."""
    with write_transaction():
        membership = for_update(Membership.select().where(
            (Membership.workspace == workspace) & (Membership.user == user))).get()
        if membership.role == "owner":
            return
        old, membership.role = membership.role, "owner"
        membership.save()
        audit.record("system", "member.role_changed", user, {"role": [old, "owner"], "reason": reason},
                     workspace=workspace)


def valid_timezone(name: str | None) -> str | None:
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


__all__ = ["ensure_workspace", "get_workspace", "ensure_user", "find_user", "has_no_members", "get_user", "members", "set_role", "make_owner",
           "role_of", "valid_timezone"]
