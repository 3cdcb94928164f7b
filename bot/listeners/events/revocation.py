"""app_uninstalled and tokens_revoked: Herald forgets the tokens it can no longer use and keeps
the workspace's history (the workspace is soft-deleted on uninstall; installing again restores
it). Bolt skips auth.test for these two events, so they arrive even though the token is dead."""
from __future__ import annotations

from bot.context import connected
from bot.store import forget_installation, forget_tokens


def register(app, settings) -> None:
    @app.event("app_uninstalled")
    @connected
    def app_uninstalled(context):
        forget_installation(app.installation_store, enterprise_id=context.enterprise_id,
                            team_id=context.team_id,
                            is_enterprise_install=bool(context.is_enterprise_install))

    @app.event("tokens_revoked")
    @connected
    def tokens_revoked(event, context):
        tokens = event.get("tokens") or {}
        forget_tokens(app.installation_store, enterprise_id=context.enterprise_id,
                      team_id=context.team_id, user_ids=list(tokens.get("oauth") or []),
                      bot_revoked=bool(tokens.get("bot")),
                      is_enterprise_install=bool(context.is_enterprise_install))
