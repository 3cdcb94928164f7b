"""Core services: workspaces, people, roles and projects — always inside one workspace."""
from __future__ import annotations

import pytest

from core import projects, workspaces
from core.errors import NotFound, PermissionDenied, ValidationError
from core.permissions import ROLE_ACTIONS, can, require, role_of
from db.models import AuditLog, Membership, User


def test_ensure_workspace_is_idempotent_and_restores(db):
    first = workspaces.ensure_workspace("T1", "Acme")
    # A request only knows the team's domain: it never renames an installed workspace.
    assert workspaces.ensure_workspace("T1", "acme").name == "Acme"
    again = workspaces.ensure_workspace("T1", "Acme Inc", rename=True)
    assert again.id == first.id and again.name == "Acme Inc"
    first.soft_delete()
    with pytest.raises(NotFound):
        workspaces.get_workspace("T1")
    restored = workspaces.ensure_workspace("T1")
    assert restored.id == first.id and workspaces.get_workspace("T1").id == first.id


def test_ensure_user_creates_one_membership_and_refreshes_profile(db, make):
    ws = make.workspace()
    user = workspaces.ensure_user(ws, "U1", real_name="Ada", tz="Europe/Paris", role="owner")
    same = workspaces.ensure_user(ws, "U1", real_name="Ada L.", tz="Not/AZone")
    assert same.id == user.id and same.real_name == "Ada L." and same.tz == "Europe/Paris"
    assert role_of(same) == "owner"
    assert Membership.select().where(Membership.user == user).count() == 1


@pytest.mark.parametrize("role, allowed, refused", [
    ("owner", ["approve", "manage_members", "connect_accounts", "view_audit"], []),
    ("approver", ["approve", "compose", "connect_accounts"], ["manage_members", "manage_projects"]),
    ("editor", ["compose", "view"], ["approve", "connect_accounts", "manage_members"]),
    ("analyst", ["view_reports", "view"], ["compose", "approve", "connect_accounts", "manage_members"]),
])
def test_roles(db, make, role, allowed, refused):
    user = make.user(make.workspace(), role=role)
    assert all(can(user, a) for a in allowed)
    assert not any(can(user, a) for a in refused)
    for action in refused:
        with pytest.raises(PermissionDenied) as denied:
            require(user, action)
        assert "Only" in denied.value.message


def test_every_role_has_a_known_action_set(db):
    assert set(ROLE_ACTIONS) == {"owner", "approver", "editor", "analyst"}


def test_owner_changes_roles_and_it_is_audited(db, make):
    ws = make.workspace()
    owner = make.user(ws, role="owner")
    editor = make.user(ws, role="editor")
    workspaces.set_role(owner, editor, "approver", ip="198.51.100.1")
    assert role_of(editor) == "approver"
    entry = AuditLog.get(AuditLog.action == "member.role_changed")
    assert entry.changes == {"role": ["editor", "approver"]} and entry.actor_id == owner.id
    assert entry.ip == "198.51.100.1"


def test_only_owners_change_roles(db, make):
    ws = make.workspace()
    approver = make.user(ws, role="approver")
    editor = make.user(ws, role="editor")
    with pytest.raises(PermissionDenied):
        workspaces.set_role(approver, editor, "owner")
    assert role_of(editor) == "editor"


def test_the_last_owner_stays(db, make):
    ws = make.workspace()
    owner = make.user(ws, role="owner")
    with pytest.raises(PermissionDenied, match="at least one owner"):
        workspaces.set_role(owner, owner, "editor")
    second = make.user(ws, role="editor")
    workspaces.set_role(owner, second, "owner")
    workspaces.set_role(second, owner, "editor")
    assert role_of(owner) == "editor"


def test_people_and_projects_of_another_workspace_are_not_found(db, make):
    a, b = make.workspace(), make.workspace()
    owner_a = make.user(a, role="owner")
    person_b = make.user(b, role="editor")
    project_b = make.project(b)
    with pytest.raises(NotFound):
        projects.get_project(a, project_b.id)
    with pytest.raises(NotFound):
        projects.get_project(a, "not-a-uuid")
    with pytest.raises(NotFound):
        workspaces.get_user(a, "1; DROP TABLE users")
    with pytest.raises(NotFound):
        workspaces.get_user(a, person_b.id)
    with pytest.raises(NotFound):
        workspaces.set_role(owner_a, person_b, "owner")
    assert role_of(person_b) == "editor"
    with pytest.raises(NotFound):
        projects.update_project(owner_a, project_b, name="Mine now", approval_channel_id=None,
                                approval_policy="none", approvals_required=1, timezone="UTC")
    assert [m.id for m, _ in workspaces.members(a)] == [owner_a.id]


def test_create_project_validates_and_audits(db, make):
    ws = make.workspace()
    owner = make.user(ws, role="owner")
    with pytest.raises(ValidationError) as bad:
        projects.create_project(owner, " ", approval_policy="maybe", approvals_required=0,
                                timezone="Mars/Olympus")
    assert set(bad.value.errors) == {"name", "approval_policy", "approvals_required", "timezone"}
    assert projects.list_projects(ws) == []
    made = projects.create_project(owner, "Spring launch", approval_channel_id="C123",
                                   approval_policy="required", approvals_required=2,
                                   timezone="America/New_York")
    assert (made.approvals_required, made.timezone) == (2, "America/New_York")
    with pytest.raises(ValidationError, match="already a project"):
        projects.create_project(owner, "Spring launch")
    assert AuditLog.select().where(AuditLog.action == "project.created").count() == 1


def test_editors_cant_create_projects(db, make):
    ws = make.workspace()
    with pytest.raises(PermissionDenied):
        projects.create_project(make.user(ws, role="editor"), "Nope")
    assert User.select().count() == 1 and projects.list_projects(ws) == []
