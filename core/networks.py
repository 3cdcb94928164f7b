"""Adapters configured from settings: the one place core turns a platform name into a
ready client (base URLs, app credentials, the exact OAuth redirect URI)."""
from __future__ import annotations

from core.settings import Settings
from platforms.base import Adapter, PlatformConfig
from platforms.registry import get_adapter

_settings: Settings | None = None


def configure(settings: Settings) -> None:
    global _settings
    _settings = settings


def current_settings() -> Settings:
    """The settings the process started with (bootstrap calls configure)."""
    return _settings or Settings.from_env()


def redirect_uri(settings: Settings, platform: str) -> str:
    return f"{settings.public_url}/accounts/callback/{platform}"


_adapters: dict = {}


def adapter(platform: str, settings: Settings | None = None) -> Adapter:
    """A shared adapter per configuration: building one builds an HTTP client (TLS context
    included), and httpx clients are safe to share between threads."""
    settings = settings or _settings or Settings.from_env()
    conf = settings.platform(platform)
    config = PlatformConfig(client_id=conf.client_id, client_secret=conf.client_secret,
                            api_url=conf.api_url, auth_url=conf.auth_url,
                            redirect_uri=redirect_uri(settings, platform))
    key = (platform, config)
    if key not in _adapters:
        _adapters[key] = get_adapter(platform, config)
    return _adapters[key]
