"""/accounts: connected social accounts by project with their token health (never a token),
connecting (OAuth + state + PKCE, Bluesky app passwords, Mastodon instances), reconnecting and
disconnecting. The work is in core.accounts; this module turns forms into calls and errors
into pages.

Starting a connect answers with a short "Taking you to <network>…" page that moves on by
<meta http-equiv=refresh> rather than a redirect: the site's CSP has `form-action 'self'`, and
browsers apply form-action to the redirects that follow a form post, so a 303 from the
Connect form to the network would be blocked.
"""
from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, \
    url_for

from core import accounts
from core.accounts import ConnectError
from core.errors import NotFound, ValidationError
from core.permissions import require
from db.models import Project
from platforms.registry import NETWORKS
from web.security import client_ip, signed_in, user_agent

bp = Blueprint("accounts", __name__)

BINDING_KEY = "connect_binding"
ERROR_TITLES = {
    "cancelled": "Nothing was connected",
    "state": "This sign-in can't be matched",
    "replayed": "This sign-in was already used",
    "expired": "This sign-in expired",
    "mismatch": "That's a different account",
    "platform": "The network didn't connect the account",
}


def _binding(create: bool = False) -> str | None:
    """The random value that ties a pending connect to this browser session."""
    value = session.get(BINDING_KEY)
    if value is None and create:
        value = session[BINDING_KEY] = accounts.new_session_binding()
    return value


def _settings():
    return current_app.config["HERALD"]


def _networks() -> list[dict]:
    settings = _settings()
    rows = []
    for platform in NETWORKS:
        kind = accounts.connect_kind(platform)
        conf = settings.platform(platform)
        configured = kind != "oauth" or bool(conf.client_id and conf.client_secret)
        rows.append({"platform": platform, "label": accounts.label(platform), "kind": kind,
                     "configured": configured, "env": platform.upper()})
    return rows


def _projects():
    return list(Project.select().where(Project.workspace == g.user.workspace_id)
                .order_by(Project.name))


def _audit_origin() -> dict:
    return {"ip": client_ip(), "user_agent": user_agent()}


@bp.get("/accounts")
@signed_in("view_admin")
def index():
    return render_template("accounts/list.html", groups=accounts.list_accounts(g.user),
                           networks=_networks(), projects=_projects())


# -- connect --------------------------------------------------------------------------------

@bp.get("/accounts/connect/<platform>")
@signed_in("connect_accounts")
def connect_form(platform: str):
    if platform not in NETWORKS:
        raise NotFound("Herald doesn't connect to that network.")
    kind = accounts.connect_kind(platform)
    if kind == "oauth":
        return redirect(url_for("accounts.index"))
    account = _account_arg()
    form = {"instance_url": "", "handle": account.handle if account else "",
            "project": request.args.get("project", "")}
    return _form(platform, form, {}, account)


@bp.post("/accounts/connect/<platform>")
@signed_in("connect_accounts")
def connect(platform: str):
    if platform not in NETWORKS:
        raise NotFound("Herald doesn't connect to that network.")
    kind = accounts.connect_kind(platform)
    account = _account_arg(request.form.get("account"))
    project = request.form.get("project") or None
    form = {"instance_url": request.form.get("instance_url", ""),
            "handle": request.form.get("handle", ""), "project": project or ""}
    if kind == "app_password":
        try:
            connected = accounts.connect_app_password(
                g.user, form["handle"], request.form.get("app_password", ""), platform=platform,
                project=project, account=account, **_audit_origin())
        except ValidationError as error:
            return _form(platform, form, error.errors, account, status=400)
        except ConnectError as error:
            return _form(platform, form, {"__all__": error.message}, account, status=400)
        return _connected(connected)
    try:       # core validates the instance address (public https only in production)
        started = accounts.start_connect(g.user, platform, _binding(create=True),
                                         instance_url=form["instance_url"] or None,
                                         project=project, account=account)
    except (ConnectError, ValidationError) as error:
        if kind == "instance_oauth":
            errors = getattr(error, "errors", None) or {"__all__": error.message}
            return _form(platform, form, errors, account, status=400)
        flash(error.message, "error")
        return redirect(url_for("accounts.index"), code=303)
    return render_template("accounts/redirect.html", url=started.url,
                           label=accounts.label(platform))


@bp.post("/accounts/<account_id>/reconnect")
@signed_in("connect_accounts")
def reconnect(account_id: str):
    account = accounts.get_account(g.user, account_id)          # NotFound across workspaces
    if accounts.connect_kind(account.platform) == "app_password":
        return redirect(url_for("accounts.connect_form", platform=account.platform,
                                account=account.id), code=303)
    try:
        started = accounts.start_connect(g.user, account.platform, _binding(create=True),
                                         account=account)
    except (ConnectError, ValidationError) as error:
        flash(error.message, "error")
        return redirect(url_for("accounts.index"), code=303)
    return render_template("accounts/redirect.html", url=started.url,
                           label=accounts.label(account.platform))


@bp.get("/accounts/callback/<platform>")
@signed_in("connect_accounts")
def callback(platform: str):
    args = request.args
    try:
        account = accounts.finish_connect(
            g.user, platform, args.get("state"), args.get("code"), args.get("error"), _binding(),
            error_description=args.get("error_description"), **_audit_origin())
    except ConnectError as error:
        return render_template("accounts/callback_error.html", error=error,
                               title=ERROR_TITLES.get(error.kind, ERROR_TITLES["platform"]),
                               label=accounts.label(platform) if platform in NETWORKS
                               else "the network"), 400
    return _connected(account)


def _connected(account):
    name = account.handle or account.display_name or account.platform_user_id
    flash(f"Connected {accounts.label(account.platform)} account {name}.", "success")
    return redirect(url_for("accounts.index"), code=303)


# -- disconnect -----------------------------------------------------------------------------

@bp.get("/accounts/<account_id>/disconnect")
@signed_in("connect_accounts")
def confirm_disconnect(account_id: str):
    account = accounts.get_account(g.user, account_id)
    return render_template("accounts/disconnect.html", account=account,
                           label=accounts.label(account.platform))


@bp.post("/accounts/<account_id>/disconnect")
@signed_in("connect_accounts")
def disconnect(account_id: str):
    account = accounts.get_account(g.user, account_id)
    if request.form.get("confirm") != "yes":
        return redirect(url_for("accounts.confirm_disconnect", account_id=account.id), code=303)
    accounts.disconnect(g.user, account, **_audit_origin())
    flash(f"Disconnected {accounts.label(account.platform)} account "
          f"{account.handle or account.display_name}. Its posts and history are kept.", "success")
    return redirect(url_for("accounts.index"), code=303)


# -- helpers --------------------------------------------------------------------------------

def _account_arg(value: str | None = None):
    value = value if value is not None else request.args.get("account")
    if not value:
        return None
    return accounts.get_account(g.user, value)


def _form(platform: str, form: dict, errors: dict, account, status: int = 200):
    require(g.user, "connect_accounts")
    template = ("accounts/bluesky.html" if accounts.connect_kind(platform) == "app_password"
                else "accounts/mastodon.html")
    return render_template(template, platform=platform, label=accounts.label(platform),
                           form=form, errors=errors, account=account,
                           projects=_projects()), status
