"""Roles and what each may do. Every check takes the acting User; its workspace is the scope."""
from __future__ import annotations

from core.errors import PermissionDenied
from db.models import Membership, User

ACTIONS = {
    "view": "see posts and the queue",
    "view_admin": "see the admin pages (members, projects, accounts)",
    "compose": "draft and submit posts",
    "approve": "approve or reject posts",
    "connect_accounts": "connect or disconnect social accounts",
    "manage_projects": "change projects",
    "manage_members": "change people's roles",
    "view_reports": "see reports",
    "view_audit": "see the audit log",
}

ROLE_ACTIONS = {
    "owner": frozenset(ACTIONS),
    "approver": frozenset({"view", "view_admin", "compose", "approve", "connect_accounts",
                           "view_reports"}),
    "editor": frozenset({"view", "view_admin", "compose", "view_reports"}),
    "analyst": frozenset({"view", "view_reports"}),
}


def role_of(user: User) -> str | None:
    membership = (Membership
                  .select(Membership.role)
                  .where((Membership.user == user) & (Membership.workspace == user.workspace_id))
                  .first())
    return membership.role if membership else None


def can(user: User, action: str) -> bool:
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    role = role_of(user)
    return role is not None and action in ROLE_ACTIONS[role]


def require(user: User, action: str) -> None:
    if not can(user, action):
        allowed = [role for role, actions in ROLE_ACTIONS.items() if action in actions]
        raise PermissionDenied(f"Only {_join(allowed)} can {ACTIONS[action]}.")


def _join(roles: list[str]) -> str:
    names = [f"{r}s" for r in roles]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
