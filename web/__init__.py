"""The Flask site: app factory. Bolt is mounted here too (at /slack/*) by the Slack issue."""
from __future__ import annotations

from flask import Flask

from core.settings import Settings


def create_app(settings: Settings | None = None, *, slack_client=None) -> Flask:
    from core.bootstrap import start
    from db import database

    settings = start(settings)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        HERALD=settings,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
    )

    # Peewee connects on a request's first query (from the pool); hand it back at the end
    # (reference/engine.md §3.7). Connecting lazily lets /healthz report a down database.
    @app.teardown_request
    def _close(exc):
        if not database.is_closed():
            database.close()

    from web import cli, health, slack
    app.register_blueprint(health.bp)
    slack.init_app(app, settings, client=slack_client)
    cli.init_app(app)
    return app
