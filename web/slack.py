"""Bolt mounted in Flask: events, commands, interactivity and options on one URL, plus the
OAuth install routes in installable mode."""
from __future__ import annotations

from flask import Blueprint, current_app, request
from slack_bolt.adapter.flask import SlackRequestHandler

bp = Blueprint("slack", __name__)


def init_app(app, settings, client=None) -> None:
    from bot.app import build_app
    bolt = build_app(settings, client=client)
    app.extensions["bolt"] = bolt
    app.extensions["bolt_handler"] = SlackRequestHandler(bolt)
    app.register_blueprint(bp)


def _handle():
    # Read the raw body first: Bolt verifies the signature over the exact bytes.
    request.get_data(cache=True)
    return current_app.extensions["bolt_handler"].handle(request)


@bp.post("/slack/events")
def events():
    return _handle()


@bp.get("/slack/install")
def install():
    return _handle()


@bp.get("/slack/oauth_redirect")
def oauth_redirect():
    return _handle()
