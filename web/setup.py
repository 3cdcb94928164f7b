"""/setup: first-run page. Explains the two ways to connect Slack, shows manifest.yml filled in
with this instance's PUBLIC_URL, and checks what it can — never showing a secret's value.

Open to anyone while Slack is unconfigured (there is nobody to sign in yet); afterwards only
to owners.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

from flask import Blueprint, current_app, g, render_template

from core.settings import ROOT
from web.security import signed_in

bp = Blueprint("setup", __name__)

MANIFEST = ROOT / "manifest.yml"
# Placeholders manifest.yml may use for the public address.
_PLACEHOLDER = re.compile(r"\$\{PUBLIC_URL\}|\{\{\s*PUBLIC_URL\s*\}\}|\$PUBLIC_URL\b"
                          r"|https?://PUBLIC_URL|https://herald\.example\.com")


@bp.get("/setup")
def index():
    settings = current_app.config["HERALD"]
    if settings.slack_mode != "unconfigured":
        return _owners_only()
    return _page(settings)


@signed_in("manage_members")
def _owners_only():
    return _page(current_app.config["HERALD"])


def _page(settings):
    manifest, manifest_error = read_manifest(settings.public_url)
    return render_template("setup.html", mode=settings.slack_mode, checks=checks(settings),
                           manifest=manifest, manifest_error=manifest_error,
                           public_url=settings.public_url)


def read_manifest(public_url: str, path: Path | None = None) -> tuple[str | None, str | None]:
    path = path or MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, (f"manifest.yml isn't in this copy of Herald yet (looked for {path.name} at "
                      "the top of the repository). It arrives with the Slack workflow.")
    except OSError:
        return None, "manifest.yml couldn't be read; check its permissions."
    return _PLACEHOLDER.sub(public_url.rstrip("/"), text), None


def checks(settings) -> list[dict]:
    """[{name, ok (True/False/None = not applicable), detail}] — values are never included."""
    out = []

    def add(name, ok, detail):
        out.append({"name": name, "ok": ok, "detail": detail})

    add("Signing secret (SLACK_SIGNING_SECRET)", bool(settings.slack_signing_secret),
        "set" if settings.slack_signing_secret else
        "not set: copy it from your Slack app's Basic Information page")
    mode = settings.slack_mode
    if mode == "single":
        ok = settings.slack_bot_token.startswith("xoxb-")
        add("Bot token (SLACK_BOT_TOKEN)", ok,
            "set, looks like a bot token" if ok else "set, but a bot token starts with xoxb-")
    elif mode == "oauth":
        ok = bool(re.fullmatch(r"\d+\.\d+", settings.slack_client_id))
        add("Client id (SLACK_CLIENT_ID)", ok,
            "set, looks like a Slack client id" if ok else "set, but a Slack client id looks like 1234.5678")
        add("Client secret (SLACK_CLIENT_SECRET)", bool(settings.slack_client_secret), "set")
    else:
        add("Slack credentials", False, "neither SLACK_BOT_TOKEN nor SLACK_CLIENT_ID and "
            "SLACK_CLIENT_SECRET is set")
    if settings.slack_app_token:
        ok = settings.slack_app_token.startswith("xapp-")
        add("App token (SLACK_APP_TOKEN)", ok,
            "set, looks like an app-level token" if ok else "set, but an app-level token starts with xapp-")
    url = urlparse(settings.public_url)
    if not url.scheme or not url.netloc:
        add("PUBLIC_URL", False, "not an absolute address like https://herald.example.com")
    elif url.scheme != "https":
        add("PUBLIC_URL", False if settings.production else None,
            "must be https in production" if settings.production else
            "plain http: fine for development, Slack needs https in production")
    else:
        add("PUBLIC_URL", True, "https")
    add("Database", _database_ok(), "reachable" if _database_ok() else
        "not reachable: check DATABASE_URL (details are in the log)")
    queue = urlparse(settings.queue_url or "")
    queue_ok = queue.scheme in ("redis", "rediss", "sqlite", "memory")
    add("Queue (QUEUE_URL)", queue_ok,
        f"{queue.scheme}://" + (" (use redis:// in production)" if settings.production
                                and queue.scheme != "redis" and queue.scheme != "rediss" else "")
        if queue_ok else "must start with redis://, sqlite:/// or memory://")
    return out


def _database_ok() -> bool:
    cached = g.get("_setup_db_ok")
    if cached is not None:
        return cached
    from db import database
    try:
        database.execute_sql("SELECT 1").fetchone()
        ok = True
    except Exception:
        import logging
        logging.getLogger(__name__).exception("setup check: database unreachable")
        ok = False
    g._setup_db_ok = ok
    return ok
