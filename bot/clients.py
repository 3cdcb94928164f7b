"""Slack clients for work outside a Bolt request (the worker, the web's media route): the
workspace's bot token, in either mode."""
from __future__ import annotations

from core.settings import Settings
from db.models import SlackBot, Workspace


def bot_token_for(settings: Settings, workspace_id) -> str | None:
    """One workspace: SLACK_BOT_TOKEN. Installable: the workspace's newest SlackBot row.
    None while Slack isn't configured or the workspace has no bot."""
    if settings.slack_mode == "single":
        return settings.slack_bot_token or None
    if settings.slack_mode != "oauth":
        return None
    workspace = Workspace.with_deleted().where(Workspace.id == workspace_id).first()
    bot = workspace and (SlackBot.select()
                         .where((SlackBot.team_id == workspace.team_id)
                                & SlackBot.bot_token.is_null(False))
                         .order_by(SlackBot.installed_at.desc()).first())
    return bot.bot_token.reveal() if bot else None
