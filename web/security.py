"""What every page of the admin site relies on: security headers, CSRF, the signed-in person
(always scoped to the session's workspace), role checks, safe redirects, and keeping sign-in
tokens out of access logs."""
from __future__ import annotations

import functools
import logging
import re
import secrets
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from flask import current_app, g, request, session
from flask_wtf.csrf import CSRFProtect

from core.permissions import can, require, role_of

csrf = CSRFProtect()

SESSION_LIFETIME = timedelta(hours=8)

# No inline script or style anywhere: everything comes from /static.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


def init_app(app, settings) -> None:
    app.config.update(
        SESSION_COOKIE_NAME="herald_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        WTF_CSRF_TIME_LIMIT=None,           # the token lives as long as the session
        WTF_CSRF_SSL_STRICT=True,
    )
    csrf.init_app(app)
    app.before_request(_load_user)
    app.after_request(_headers)
    app.context_processor(_template_globals)
    _mask_signin_tokens_in_logs()


# --------------------------------------------------------------------------------------
# Headers

def _headers(response):
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("X-Content-Type-Options", "nosniff")
    # same-origin, not no-referrer: CSRF's strict check over https wants our own Referer,
    # and no other site ever gets one (a sign-in URL never leaks through a link).
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    settings = current_app.config["HERALD"]
    if request.is_secure or (settings.production and settings.public_url.startswith("https://")):
        h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if getattr(g, "user", None) is not None or request.path.startswith("/signin"):
        h.setdefault("Cache-Control", "no-store")
    return response


# --------------------------------------------------------------------------------------
# The signed-in person

def start_session(user) -> None:
    """A fresh session for `user`: whatever the browser had before (including its CSRF
    token) is thrown away, so a session planted before sign-in is worthless after it."""
    carry_next = session.get("next")
    session.clear()
    session.permanent = True
    session["sid"] = secrets.token_urlsafe(16)
    session["workspace_id"] = str(user.workspace_id)
    session["user_id"] = str(user.id)
    session["signed_in_at"] = datetime.now(timezone.utc).isoformat()
    if carry_next:
        session["next"] = carry_next


def end_session() -> None:
    session.clear()


def _load_user():
    g.user = g.workspace = g.role = None
    if request.blueprint == "slack" or request.path.startswith("/static/"):
        return
    user_id, workspace_id = session.get("user_id"), session.get("workspace_id")
    if not user_id or not workspace_id:
        return
    try:
        signed_in = datetime.fromisoformat(session.get("signed_in_at", ""))
    except (TypeError, ValueError):
        session.clear()
        return
    if datetime.now(timezone.utc) - signed_in > SESSION_LIFETIME:
        session.clear()
        return
    from core.ids import parse_id
    from db.models import User, Workspace
    user = (User.select(User, Workspace).join(Workspace)
            .where((User.id == parse_id(user_id)) & (User.workspace == parse_id(workspace_id))
                   & Workspace.deleted_at.is_null())
            .first()) if parse_id(user_id) and parse_id(workspace_id) else None
    role = user and role_of(user)
    if not role:          # removed from Herald since signing in
        session.clear()
        return
    g.user, g.workspace, g.role = user, user.workspace, role


def signed_in(action: str | None = None):
    """View decorator: a signed-in person (else the sign-in page), allowed `action` (else 403)."""
    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            if g.get("user") is None:
                from web.auth import sign_in_needed
                return sign_in_needed()
            if action:
                require(g.user, action)        # PermissionDenied -> the 403 page, saying who may
            return view(*args, **kwargs)
        return inner
    return wrap


def client_ip() -> str | None:
    # Behind a proxy, wrap the app in werkzeug's ProxyFix so remote_addr is the client's.
    return request.remote_addr


def user_agent() -> str | None:
    return request.headers.get("User-Agent")


# --------------------------------------------------------------------------------------
# Redirects

def safe_next(target: str | None) -> str | None:
    """`target` when it is a path on this site ("/projects?x=1"), else None. Absolute URLs,
    scheme-relative ones (//evil.example), backslash tricks and control characters are refused."""
    if not target or not isinstance(target, str) or len(target) > 2000:
        return None
    if any(ord(c) < 32 or c == "\\" for c in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    if parts.path.startswith(("/signin", "/signout", "/slack/")):
        return None
    return target


# --------------------------------------------------------------------------------------
# Templates

def _template_globals():
    user = g.get("user")
    return {"current_user": user, "current_role": g.get("role"),
            "may": (lambda action: user is not None and can(user, action)),
            "nav": _nav(user)}


def _nav(user) -> list[tuple[str, str, str]]:
    """(href, label, endpoint prefix): only pages that exist and that this role may open."""
    app = current_app
    settings = app.config["HERALD"]
    items = []
    if user is not None:
        items.append(("/", "Home", "auth.index"))
        if can(user, "view_admin"):
            items.append(("/members", "Members", "members."))
            items.append(("/projects", "Projects", "projects."))
        if "accounts" in app.blueprints and can(user, "view_admin"):
            items.append(("/accounts", "Accounts", "accounts."))
        if "reports" in app.blueprints and can(user, "view_reports"):
            items.append(("/reports", "Reports", "reports."))
        if can(user, "view_audit"):
            items.append(("/audit", "Audit log", "audit."))
        if can(user, "manage_members"):
            items.append(("/setup", "Setup", "setup."))
    elif settings.slack_mode == "unconfigured":
        items.append(("/setup", "Setup", "setup."))
    return items


# --------------------------------------------------------------------------------------
# Logs: a sign-in URL is a credential for ten minutes; access logs get the path without it.

_SIGNIN_PATH = re.compile(r"(/signin/)[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)?")


class SigninTokenFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to break
            return True
        cleaned = _SIGNIN_PATH.sub(r"\1[redacted]", message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def _mask_signin_tokens_in_logs() -> None:
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, SigninTokenFilter) for f in logger.filters):
            logger.addFilter(SigninTokenFilter())
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SigninTokenFilter) for f in handler.filters):
            handler.addFilter(SigninTokenFilter())
