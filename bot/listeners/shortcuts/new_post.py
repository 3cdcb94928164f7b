"""Global shortcut "New social post": the compose modal from anywhere in Slack.

A global shortcut carries no channel and no response_url, so if Slack can't open the
window in time the person hears about it in a DM from Herald."""
from __future__ import annotations

import logging

from bot.blocks import ids
from bot.context import connected, user_id_of
from bot.listeners.views.compose import open_compose

log = logging.getLogger(__name__)


def register(app, settings) -> None:
    @app.shortcut(ids.SHORTCUT_NEW_POST)
    @connected
    def new_post_shortcut(ack, body, client, context):
        ack()

        def reply(text: str) -> None:
            client.chat_postMessage(channel=user_id_of(body), text=text)

        open_compose(client, body, context, settings, trigger_id=body.get("trigger_id"),
                     reply=reply)
