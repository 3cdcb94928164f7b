"""Sign-in by a one-time link from Slack (`/social admin`), sign-out, and the home page.

Opening a link (GET) only shows a confirmation page with a "Sign in" button; the POST from
that button uses the link up. Slack unfurls links and mail/chat security scanners pre-fetch
them: a GET that signed in would burn the link (and sign the scanner in). The GET checks the
link without using it, so a dead link says so straight away.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for

from core import signin
from web.security import end_session, safe_next, signed_in, start_session

bp = Blueprint("auth", __name__)


def sign_in_needed():
    """The page anyone not signed in gets (status 401); remembers where they were going."""
    wanted = safe_next(request.full_path.rstrip("?")) if request.method == "GET" else None
    if wanted and wanted != "/":
        session["next"] = wanted
    return render_template("auth/signin_needed.html"), 401


@bp.get("/")
def index():
    settings = current_app.config["HERALD"]
    if settings.slack_mode == "unconfigured" and g.user is None:
        return redirect(url_for("setup.index"))
    if g.user is None:
        return render_template("auth/signin_needed.html"), 200
    return render_template("index.html", workspace=g.workspace)


@bp.get("/signin")
def how_to_sign_in():
    wanted = safe_next(request.args.get("next"))
    if wanted:
        session["next"] = wanted
    return render_template("auth/signin_needed.html")


@bp.get("/signin/<token>")
def confirm(token: str):
    settings = current_app.config["HERALD"]
    try:
        signin.check(token, settings)
    except signin.SigninError as error:
        return _failed(error)
    wanted = safe_next(request.args.get("next"))
    return render_template("auth/signin_confirm.html", next=wanted or "")


@bp.post("/signin/<token>")
def sign_in(token: str):
    settings = current_app.config["HERALD"]
    try:
        user = signin.consume(token, settings)
    except signin.SigninError as error:
        return _failed(error)
    wanted = safe_next(request.form.get("next")) or safe_next(session.get("next"))
    start_session(user)
    session.pop("next", None)
    from core import audit
    from web.security import client_ip, user_agent
    audit.record(user, "member.signed_in", user, ip=client_ip(), user_agent=user_agent())
    return redirect(wanted or url_for("auth.index"))


@bp.post("/signout")
def sign_out():
    end_session()
    return redirect(url_for("auth.signed_out"))


@bp.get("/signed-out")
def signed_out():
    return render_template("auth/signed_out.html")


def _failed(error: signin.SigninError):
    status = 400 if error.reason == "invalid" else 410
    return render_template("auth/signin_failed.html", error=error), status


__all__ = ["bp", "sign_in_needed", "signed_in"]
