"""`python -m bot`: Herald's Slack surface over Socket Mode, for local use without a public URL.

Needs SLACK_APP_TOKEN (an app-level `xapp-` token with connections:write) and the app created
from manifest.socket.yml. With SLACK_BOT_TOKEN it serves that one workspace; in installable mode
(SLACK_CLIENT_ID/SECRET) workspaces install through the web process's /slack/install and this
process answers them from the same database. Production uses HTTP (the Procfile's web).
"""
from __future__ import annotations

import sys

NO_APP_TOKEN = (
    "Socket Mode needs SLACK_APP_TOKEN, an app-level token (it starts with xapp-). Create one "
    "in your Slack app's settings under Basic Information → App-Level Tokens with the scope "
    "connections:write, and create the app from manifest.socket.yml. Without it, serve Slack "
    "over HTTP instead: `make run` and a manifest.yml whose URLs point at PUBLIC_URL."
)
NOT_AN_APP_TOKEN = (
    "SLACK_APP_TOKEN must be an app-level token starting with xapp- (not a bot or user token). "
    "Find it under Basic Information → App-Level Tokens in your Slack app's settings."
)
NO_BOT = (
    "Socket Mode has no workspace to answer: set SLACK_BOT_TOKEN (install the app to your "
    "workspace from its settings page, then copy the Bot User OAuth Token), or "
    "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to let workspaces install Herald."
)


def main() -> int:
    from core.settings import ConfigError, Settings

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return 2
    if not settings.slack_app_token:
        print(f"herald: {NO_APP_TOKEN}", file=sys.stderr)
        return 2
    if not settings.slack_app_token.startswith("xapp-"):
        print(f"herald: {NOT_AN_APP_TOKEN}", file=sys.stderr)
        return 2
    if settings.slack_mode == "unconfigured":
        print(f"herald: {NO_BOT}", file=sys.stderr)
        return 2

    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.app import build_app
    from core.bootstrap import start

    settings = start(settings)
    handler = SocketModeHandler(build_app(settings), settings.slack_app_token)
    try:
        handler.start()          # blocks; Ctrl-C stops it
    except KeyboardInterrupt:
        handler.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
