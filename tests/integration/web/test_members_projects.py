"""/members and /projects: owners change roles (last owner kept, audited with ip and user
agent) and manage projects and which accounts belong to them."""
from __future__ import annotations

from db.models import AuditLog, Membership, Project, SocialAccount


def test_members_lists_people_with_name_slack_id_and_role(browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner", real_name="Olive Owner", slack_user_id="UOLIVE")
    make.user(home_workspace, role="analyst", real_name="Andy Analyst", slack_user_id="UANDY")
    make.user(make.workspace(), role="owner", real_name="Elsewhere Person")
    browser.sign_in(owner)
    html = browser.get("/members").get_data(as_text=True)
    for text in ("Olive Owner", "UOLIVE", "Andy Analyst", "UANDY", "analyst"):
        assert text in html
    assert "Elsewhere Person" not in html


def test_an_owner_changes_a_role_and_it_is_audited(browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    editor = make.user(home_workspace, role="editor", real_name="Eddie")
    browser.sign_in(owner)
    response = browser.post(f"/members/{editor.id}/role", {"role": "approver"},
                            csrf_from_page="/members", headers={"User-Agent": "TestBrowser/1.0"})
    assert response.status_code == 303
    page = browser.get("/members").get_data(as_text=True)
    assert "Eddie is now approver." in page
    assert Membership.get(Membership.user == editor).role == "approver"
    entry = AuditLog.get(AuditLog.action == "member.role_changed")
    assert entry.actor_id == owner.id and entry.entity_id == str(editor.id)
    assert entry.changes == {"role": ["editor", "approver"]}
    assert entry.ip == "127.0.0.1" and entry.user_agent == "TestBrowser/1.0"


def test_the_last_owner_cannot_be_demoted(browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    browser.sign_in(owner)
    response = browser.post(f"/members/{owner.id}/role", {"role": "editor"}, csrf_from_page="/members")
    assert response.status_code == 303
    assert "at least one owner" in browser.get("/members").get_data(as_text=True)
    assert Membership.get(Membership.user == owner).role == "owner"


def test_an_unknown_role_is_refused(browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    editor = make.user(home_workspace, role="editor")
    browser.sign_in(owner)
    browser.post(f"/members/{editor.id}/role", {"role": "admin"}, csrf_from_page="/members")
    assert "Unknown role" in browser.get("/members").get_data(as_text=True)
    assert Membership.get(Membership.user == editor).role == "editor"


def _project_form(**over):
    form = {"name": "Spring Launch", "approval_channel_id": "C0APPROVE", "approval_policy": "required",
            "approvals_required": "2", "timezone": "Europe/Berlin"}
    form.update(over)
    return form


def test_an_owner_creates_a_project_with_accounts(browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    a1 = make.account(home_workspace, handle="brand_a")
    a2 = make.account(home_workspace, handle="brand_b")
    make.account(home_workspace, handle="brand_c")
    browser.sign_in(owner)
    form = browser.get("/projects/new").get_data(as_text=True)
    assert "brand_a" in form and "brand_c" in form
    response = browser.post("/projects/new", _project_form(accounts=[str(a1.id), str(a2.id)]),
                            csrf_from_page="/projects/new")
    assert response.status_code == 303
    project = Project.get(Project.name == "Spring Launch")
    assert (project.approval_channel_id, project.approval_policy, project.approvals_required,
            project.timezone) == ("C0APPROVE", "required", 2, "Europe/Berlin")
    assert {a.handle for a in SocialAccount.select().where(SocialAccount.project == project)} == \
        {"brand_a", "brand_b"}
    listing = browser.get("/projects").get_data(as_text=True)
    assert "Spring Launch" in listing and "2 approvals" in listing
    actions = {e.action for e in AuditLog.select().where(AuditLog.entity_id == str(project.id))}
    assert {"project.created", "project.accounts_changed"} <= actions


def test_editing_a_project_moves_accounts_and_is_audited(browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    project = make.project(home_workspace, name="Old name")
    kept = make.account(home_workspace, project=project, handle="kept")
    dropped = make.account(home_workspace, project=project, handle="dropped")
    added = make.account(home_workspace, handle="added")
    browser.sign_in(owner)
    page = browser.get(f"/projects/{project.id}").get_data(as_text=True)
    assert 'value="Old name"' in page
    response = browser.post(f"/projects/{project.id}",
                            _project_form(name="New name", approval_policy="none",
                                          accounts=[str(kept.id), str(added.id)]),
                            csrf_from_page=f"/projects/{project.id}")
    assert response.status_code == 303
    project = Project.get_by_id(project.id)
    assert project.name == "New name" and project.approval_policy == "none"
    assert SocialAccount.get_by_id(dropped.id).project_id is None
    assert SocialAccount.get_by_id(added.id).project_id == project.id
    entry = AuditLog.get(AuditLog.action == "project.accounts_changed")
    assert entry.changes == {"accounts": {"added": [str(added.id)], "removed": [str(dropped.id)]}}
    updated = AuditLog.get(AuditLog.action == "project.updated")
    assert updated.changes["name"] == ["Old name", "New name"]


def test_invalid_project_input_is_shown_by_field_and_nothing_is_saved(browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    make.project(home_workspace, name="Taken")
    browser.sign_in(owner)
    response = browser.post("/projects/new", _project_form(name="Taken", timezone="Mars/Olympus",
                                                           approvals_required="0"),
                            csrf_from_page="/projects/new")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "already a project called" in html and "Mars/Olympus" in html
    assert "from 1 to 10" in html
    assert Project.select().count() == 1
    bad_channel = browser.post("/projects/new", _project_form(approval_channel_id="#general"),
                               csrf_from_page="/projects/new")
    assert bad_channel.status_code == 400 and "channel id looks like" in bad_channel.get_data(as_text=True)
    assert Project.select().count() == 1


def test_another_workspace_s_account_cannot_be_attached(browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    foreign = make.account(make.workspace(), handle="foreign")
    browser.sign_in(owner)
    response = browser.post("/projects/new", _project_form(accounts=[str(foreign.id)]),
                            csrf_from_page="/projects/new")
    assert response.status_code == 400
    assert not Project.select().exists()
    assert SocialAccount.get_by_id(foreign.id).project_id is None


def test_an_editor_sees_projects_read_only(browser, make, home_workspace):
    make.user(home_workspace, role="owner")
    editor = make.user(home_workspace, role="editor")
    project = make.project(home_workspace, name="Readable")
    browser.sign_in(editor)
    assert "Readable" in browser.get("/projects").get_data(as_text=True)
    page = browser.get(f"/projects/{project.id}").get_data(as_text=True)
    assert "<fieldset disabled>" in page and "save-project" not in page
    response = browser.post(f"/projects/{project.id}", _project_form(name="Hijacked"),
                            csrf_from_page=f"/projects/{project.id}")
    assert response.status_code == 403
    assert Project.get_by_id(project.id).name == "Readable"
    assert browser.get("/projects/new").status_code == 403
