"""Friendly error pages. Nothing about the code ever reaches the browser; details go to the log."""
from __future__ import annotations

import logging

from flask import render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from core.errors import NotFound, PermissionDenied, ValidationError

log = logging.getLogger(__name__)

PAGES = {
    400: ("Something was wrong with that request",
          "Herald couldn't understand what the browser sent. Go back and try again."),
    403: ("You can't do that",
          "Your role in this workspace doesn't allow it. An owner can change roles on the Members page."),
    404: ("Not found", "There is nothing here, or it belongs to another workspace."),
    405: ("Not allowed", "That page can't be used this way."),
    500: ("Something went wrong on our side",
          "Herald hit an error and has logged it. Try again in a moment."),
}


def page(status: int, message: str | None = None):
    title, text = PAGES.get(status, PAGES[500] if status >= 500 else PAGES[400])
    return render_template("error.html", status=status, title=title,
                           message=message or text), status


def init_app(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_failed(error):
        return page(400, "This form has expired or didn't come from Herald. Reload the page "
                         "and try again.")

    @app.errorhandler(HTTPException)
    def http_error(error):
        if error.code is None or error.code < 400:
            return error
        return page(error.code)

    @app.errorhandler(NotFound)
    def not_found(error):
        return page(404, error.message)

    @app.errorhandler(PermissionDenied)
    def denied(error):
        return page(403, error.message)

    @app.errorhandler(ValidationError)
    def invalid(error):
        return page(400, error.message)

    @app.errorhandler(Exception)
    def crashed(error):
        log.exception("unhandled error on a web request")
        return page(500)
