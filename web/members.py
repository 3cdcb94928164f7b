"""/members: the workspace's people and their roles; owners change roles."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from core import workspaces
from core.errors import PermissionDenied, ValidationError
from db.models import ROLES
from web.security import client_ip, signed_in, user_agent

bp = Blueprint("members", __name__)


@bp.get("/members")
@signed_in("view_admin")
def index():
    return render_template("members.html", members=workspaces.members(g.workspace), roles=ROLES)


@bp.post("/members/<user_id>/role")
@signed_in("manage_members")
def change_role(user_id: str):
    person = workspaces.get_user(g.workspace, user_id)       # NotFound -> 404 across workspaces
    role = request.form.get("role", "")
    try:
        workspaces.set_role(g.user, person, role, ip=client_ip(), user_agent=user_agent())
    except (PermissionDenied, ValidationError) as error:
        flash(error.message, "error")
        return redirect(url_for("members.index"), code=303)
    flash(f"{person.real_name or person.slack_user_id} is now {role}.", "success")
    return redirect(url_for("members.index"), code=303)
