"""build_app(settings, client=None) -> slack_bolt.App.

Modes (README "Creating the Slack app"): one workspace with SLACK_BOT_TOKEN, or installable
into many with SLACK_CLIENT_ID/SECRET through Bolt's OAuth flow and Herald's Peewee stores.
Requests are verified with SLACK_SIGNING_SECRET in both.
"""
from __future__ import annotations

import logging

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from core.settings import Settings

log = logging.getLogger(__name__)


def web_client(settings: Settings, token: str | None = None) -> WebClient:
    """Every WebClient Herald makes: SLACK_API_URL honoured, one retry on 429."""
    client = WebClient(token=token, base_url=settings.slack_api_url)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    return client


def build_app(settings: Settings, client: WebClient | None = None, **app_kwargs) -> App:
    from bot import listeners
    from bot.middleware import register_middleware

    options = dict(signing_secret=settings.slack_signing_secret or "unset",
                   token_verification_enabled=False,   # no auth.test at start-up; Slack may be away
                   raise_error_for_unhandled_request=False, **app_kwargs)
    if settings.slack_mode == "oauth":
        from bot.store import oauth_settings
        options["oauth_settings"] = oauth_settings(settings)
        options["client"] = client or web_client(settings)
    else:
        options["client"] = client or web_client(settings, settings.slack_bot_token or None)
        if not settings.slack_bot_token:
            # Unconfigured: answer Slack politely; /setup explains what to set.
            options["authorize"] = lambda **kw: None
    app = App(**options)
    register_middleware(app, settings)
    listeners.register(app, settings)
    return app
