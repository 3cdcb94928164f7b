"""What listeners share: a database connection per listener call, who is acting, and
turning core's errors into a short message where the person is."""
from __future__ import annotations

import logging

from core import workspaces
from core.errors import HeraldError
from db import per_call_connection

log = logging.getLogger(__name__)
GENERIC_ERROR = "Something went wrong on Herald's side; nothing was changed. Please try again."


# Bolt runs listeners on its own threads: each call hands its connection back.
connected = per_call_connection


def team_of(body: dict, context=None) -> tuple[str, str | None, str]:
    """(team_id, enterprise_id, team name) of a request, whatever its shape."""
    team = body.get("team") or {}
    team_id = (getattr(context, "team_id", None) if context is not None else None) \
        or body.get("team_id") or (team.get("id") if isinstance(team, dict) else None) \
        or (body.get("user") or {}).get("team_id")
    enterprise = body.get("enterprise") or {}
    enterprise_id = body.get("enterprise_id") or (enterprise.get("id") if isinstance(enterprise, dict) else None)
    name = body.get("team_domain") or (team.get("domain") if isinstance(team, dict) else "") or ""
    return team_id, enterprise_id, name


def user_id_of(body: dict) -> str:
    user = body.get("user")
    if isinstance(user, dict):
        return user.get("id")
    return body.get("user_id") or user


def acting_user(body: dict, context=None, client=None):
    """The Workspace and User behind a request, created on first sight. The first person to
    use Herald in a fresh workspace becomes its owner (the installer, in OAuth mode)."""
    team_id, enterprise_id, name = team_of(body, context)
    workspace = workspaces.ensure_workspace(team_id, name, enterprise_id)
    slack_user_id = user_id_of(body)
    profile = {}
    existing = workspaces.find_user(workspace, slack_user_id)
    if existing is None and client is not None:
        profile = _profile(client, slack_user_id)
    role = "owner" if workspaces.has_no_members(workspace) else "editor"
    user = existing or workspaces.ensure_user(workspace, slack_user_id, role=role, **profile)
    return workspace, user


def _profile(client, slack_user_id: str) -> dict:
    try:
        user = client.users_info(user=slack_user_id)["user"]
    except Exception:  # a profile is nice to have; never block the request on it
        log.warning("users.info failed for %s", slack_user_id)
        return {}
    return {"real_name": user.get("real_name") or user.get("name") or "",
            "email": (user.get("profile") or {}).get("email"), "tz": user.get("tz")}


def message_for(exc: Exception) -> str:
    if isinstance(exc, HeraldError):
        return exc.message
    log.exception("listener failed")
    return GENERIC_ERROR
