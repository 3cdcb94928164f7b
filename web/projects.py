"""/projects: list, create and edit projects (brands) and choose which accounts belong."""
from __future__ import annotations

import re

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from core import projects
from core.errors import ValidationError
from db import database
from db.models import SocialAccount
from web.security import client_ip, signed_in, user_agent

bp = Blueprint("projects", __name__)

POLICIES = (("none", "No approval needed"), ("required", "Approval required"))
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,31}$")


@bp.get("/projects")
@signed_in("view_admin")
def index():
    rows = projects.list_projects(g.workspace)
    counts = {}
    for account in SocialAccount.select(SocialAccount.project).where(
            (SocialAccount.workspace == g.workspace) & SocialAccount.project.is_null(False)):
        counts[account.project_id] = counts.get(account.project_id, 0) + 1
    return render_template("projects/list.html", projects=rows, counts=counts)


@bp.route("/projects/new", methods=["GET", "POST"])
@signed_in("manage_projects")
def create():
    form, errors = _form_values(None), {}
    if request.method == "POST":
        form = _submitted()
        try:
            _check_channel(form)
            with database.atomic():
                project = projects.create_project(
                    g.user, form["name"], approval_channel_id=form["approval_channel_id"],
                    approval_policy=form["approval_policy"],
                    approvals_required=form["approvals_required"], timezone=form["timezone"],
                    ip=client_ip(), user_agent=user_agent())
                projects.set_project_accounts(g.user, project, form["accounts"], ip=client_ip(),
                                              user_agent=user_agent())
        except ValidationError as error:
            errors = error.errors
        else:
            flash(f"Project “{project.name}” created.", "success")
            return redirect(url_for("projects.index"), code=303)
    return _render(form, errors, project=None, status=400 if errors else 200)


@bp.route("/projects/<project_id>", methods=["GET", "POST"])
@signed_in("view_admin")
def edit(project_id: str):
    project = projects.get_project(g.workspace, project_id)     # NotFound -> 404 across workspaces
    form, errors = _form_values(project), {}
    if request.method == "POST":
        from core.permissions import require
        require(g.user, "manage_projects")                      # PermissionDenied -> 403 page
        form = _submitted()
        try:
            _check_channel(form)
            with database.atomic():
                projects.update_project(
                    g.user, project, name=form["name"],
                    approval_channel_id=form["approval_channel_id"],
                    approval_policy=form["approval_policy"],
                    approvals_required=form["approvals_required"], timezone=form["timezone"],
                    ip=client_ip(), user_agent=user_agent())
                projects.set_project_accounts(g.user, project, form["accounts"], ip=client_ip(),
                                              user_agent=user_agent())
        except ValidationError as error:
            errors = error.errors
        else:
            flash(f"Project “{project.name}” saved.", "success")
            return redirect(url_for("projects.index"), code=303)
    return _render(form, errors, project=project, status=400 if errors else 200)


def _render(form, errors, project, status):
    return render_template("projects/form.html", form=form, errors=errors, project=project,
                           policies=POLICIES, accounts=projects.workspace_accounts(g.workspace),
                           zones=_common_zones()), status


def _form_values(project) -> dict:
    if project is None:
        return {"name": "", "approval_channel_id": "", "approval_policy": "required",
                "approvals_required": "1", "timezone": g.workspace.timezone or "UTC",
                "accounts": []}
    return {"name": project.name, "approval_channel_id": project.approval_channel_id or "",
            "approval_policy": project.approval_policy,
            "approvals_required": str(project.approvals_required), "timezone": project.timezone,
            "accounts": [str(a.id) for a in SocialAccount.select(SocialAccount.id).where(
                (SocialAccount.workspace == g.workspace) & (SocialAccount.project == project))]}


def _submitted() -> dict:
    f = request.form
    policy = f.get("approval_policy", "")
    return {"name": f.get("name", "").strip(),
            "approval_channel_id": f.get("approval_channel_id", "").strip(),
            "approval_policy": policy,
            # "No approval" still stores a valid count (the column is >= 1).
            "approvals_required": f.get("approvals_required", "1").strip() if policy != "none" else "1",
            "timezone": f.get("timezone", "").strip(),
            "accounts": f.getlist("accounts")}


def _check_channel(form) -> None:
    channel = form["approval_channel_id"]
    if channel and not _CHANNEL.match(channel):
        raise ValidationError({"approval_channel_id": "A Slack channel id looks like C0123ABCD "
                               "(in Slack: channel details → bottom of the About tab)."})


def _common_zones() -> list[str]:
    import zoneinfo
    return sorted(z for z in zoneinfo.available_timezones()
                  if "/" in z and not z.startswith(("Etc/", "SystemV/", "US/", "posix/", "right/")))
