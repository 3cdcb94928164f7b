"""What every process (web, worker, CLI) does first: settings, logs, keys, database."""
from __future__ import annotations

from core import crypto, logs, networks
from core.settings import Settings
from db import init_database


def start(settings: Settings | None = None) -> Settings:
    settings = settings or Settings.from_env()
    logs.configure(settings.log_level)
    crypto.configure(settings.token_keys)
    networks.configure(settings)
    if settings.database_url.startswith("sqlite:///"):
        from pathlib import Path
        Path(settings.database_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    init_database(settings.database_url)
    return settings
