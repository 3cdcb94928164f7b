"""Options for the compose modal's accounts select when a workspace has more than 100
accounts (a static select holds at most 100): up to 100 matches for what the person typed,
limited to the project chosen in the modal (and accounts in no project)."""
from __future__ import annotations

import logging

from bot.blocks import ids
from bot.blocks.compose import MAX_STATIC_OPTIONS, account_label, read_form
from bot.context import acting_user, connected
from core import compose, networks
from core.permissions import can

log = logging.getLogger(__name__)


def register(app, settings) -> None:
    @app.options(ids.COMPOSE_ACCOUNTS)
    @connected
    def account_options(ack, body, context):
        try:
            workspace, user = acting_user(body, context)
            if not can(user, "compose"):
                ack(options=[])
                return
            project_id = read_form(body.get("view") or {}).project_id
            found = compose.accounts_of(workspace, query=str(body.get("value") or "")[:100],
                                        project_id=project_id, usable_only=True,
                                        limit=MAX_STATIC_OPTIONS)
        except Exception:  # noqa: BLE001 — an empty list beats a Slack error in the menu
            log.exception("account options failed")
            ack(options=[])
            return
        ack(options=[option_of(a) for a in found])


def option_of(account) -> dict:
    text = account_label(networks.adapter(account.platform).label, account.handle, account.status)
    return {"text": {"type": "plain_text", "text": text}, "value": str(account.id)}
