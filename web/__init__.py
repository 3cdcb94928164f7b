"""The Flask site: app factory.

Areas are blueprints: health (/healthz), slack (Bolt at /slack/*, exempt from CSRF), auth
(one-time sign-in links from `/social admin`), members, projects, accounts, audit, setup.
Every response gets security headers (web/security.py); errors are friendly pages without
traces (web/errors.py).
"""
from __future__ import annotations

from flask import Flask

from core.settings import Settings


def create_app(settings: Settings | None = None, *, slack_client=None) -> Flask:
    from core.bootstrap import start
    from db import database

    settings = start(settings)
    import tasks  # noqa: F401  the publishing engine's doorbells (core.scheduling, core.notify)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        HERALD=settings,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )

    from web import errors, security
    security.init_app(app, settings)      # session cookie flags, CSRF, headers, current user
    errors.init_app(app)

    # Peewee connects on a request's first query (from the pool); hand it back at the end
    # (reference/engine.md §3.7). Connecting lazily lets /healthz report a down database.
    @app.teardown_request
    def _close(exc):
        if not database.is_closed():
            database.close()

    from web import accounts, audit, auth, cli, health, media, members, projects, setup, slack
    app.register_blueprint(health.bp)
    slack.init_app(app, settings, client=slack_client)
    security.csrf.exempt(slack.bp)        # Slack signs its requests; Bolt reads the raw body
    for area in (auth, members, projects, accounts, audit, setup, media):
        app.register_blueprint(area.bp)
    cli.init_app(app)
    return app

