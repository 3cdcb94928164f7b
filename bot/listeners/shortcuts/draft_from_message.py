"""Message shortcut "Draft a post from this message": the compose modal with the message's
text (links and mentions turned back into plain text) as the post's text."""
from __future__ import annotations

from bot.blocks import ids
from bot.blocks.compose import plain_text_of
from bot.context import connected, user_id_of
from bot.listeners.views.compose import open_compose


def register(app, settings) -> None:
    @app.message_shortcut(ids.SHORTCUT_DRAFT_FROM_MESSAGE)
    @connected
    def draft_from_message(ack, body, client, context, respond):
        ack()

        def reply(text: str) -> None:
            if body.get("response_url"):
                respond(text=text, response_type="ephemeral", replace_original=False)
            else:
                client.chat_postMessage(channel=user_id_of(body), text=text)

        message = body.get("message") or {}
        open_compose(client, body, context, settings, trigger_id=body.get("trigger_id"),
                     text=plain_text_of(message.get("text") or ""),
                     channel_id=(body.get("channel") or {}).get("id"), reply=reply)
