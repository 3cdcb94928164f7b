"""The Edit button next to each draft in `/social drafts`: reopens the compose modal on that
draft. The button's value is a post id, and like anything from outside it is checked:
core only finds posts of the clicker's workspace, and only their author or an approver may
edit one."""
from __future__ import annotations

from bot.blocks import ids
from bot.context import connected
from bot.listeners.views.compose import open_compose


def register(app, settings) -> None:
    @app.action(ids.DRAFT_EDIT)
    @connected
    def edit_draft(ack, body, client, context, respond, action):
        ack()

        def reply(text: str) -> None:
            respond(text=text, response_type="ephemeral", replace_original=False)

        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        open_compose(client, body, context, settings, trigger_id=body.get("trigger_id"),
                     post_id=str(action.get("value") or "")[:64] or "-", channel_id=channel,
                     reply=reply if body.get("response_url") else None)
