"""Settings from the environment (12-factor). Every variable is documented in README.md.

Development (the default) needs nothing configured: the secret key and a token key are
generated once into the instance folder and reused. Production (HERALD_ENV=production)
refuses to start while a required variable is missing, and says which.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = ("x", "linkedin", "instagram", "facebook", "threads", "tiktok", "pinterest",
             "bluesky", "mastodon")
PRODUCTION_REQUIRED = ("SECRET_KEY", "TOKEN_KEYS", "DATABASE_URL", "PUBLIC_URL")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class PlatformSettings:
    client_id: str = ""
    client_secret: str = ""
    api_url: str = ""            # empty: the network's real host
    auth_url: str = ""

    def __repr__(self) -> str:
        return f"PlatformSettings(client_id={self.client_id!r}, api_url={self.api_url!r})"


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    instance_path: Path = ROOT / "instance"
    database_url: str = ""
    queue_url: str = ""
    secret_key: str = field(default="", repr=False)
    token_keys: tuple[str, ...] = field(default=(), repr=False)
    public_url: str = "http://localhost:5000"
    slack_signing_secret: str = field(default="", repr=False)
    slack_bot_token: str = field(default="", repr=False)
    slack_client_id: str = ""
    slack_client_secret: str = field(default="", repr=False)
    slack_app_token: str = field(default="", repr=False)
    slack_api_url: str = "https://slack.com/api/"
    platforms: dict = field(default_factory=dict)
    missed_after: timedelta = timedelta(hours=24)
    log_level: str = "INFO"

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def slack_mode(self) -> str:
        """'single' (one bot token), 'oauth' (installable) or 'unconfigured' (show /setup)."""
        if self.slack_client_id and self.slack_client_secret:
            return "oauth"
        if self.slack_bot_token:
            return "single"
        return "unconfigured"

    def platform(self, name: str) -> PlatformSettings:
        return self.platforms.get(name, PlatformSettings())

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Settings":
        env = dict(os.environ if environ is None else environ)
        mode = env.get("HERALD_ENV", "development").strip() or "development"
        if mode not in ("development", "production"):
            raise ConfigError(f"HERALD_ENV must be 'development' or 'production', not {mode!r}.")
        instance = Path(env.get("HERALD_INSTANCE_PATH") or ROOT / "instance")
        if mode == "production":
            missing = [name for name in PRODUCTION_REQUIRED if not env.get(name, "").strip()]
            if missing:
                raise ConfigError("Herald is in production mode (HERALD_ENV=production) and "
                                  f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set.")
        secret_key = env.get("SECRET_KEY", "").strip() or _instance_secret(instance, "secret_key",
                                                                          _new_secret_key)
        token_keys = _token_keys(env.get("TOKEN_KEYS", "").strip()
                                 or _instance_secret(instance, "token_key", _new_token_key))
        return cls(
            env=mode,
            instance_path=instance,
            database_url=env.get("DATABASE_URL") or f"sqlite:///{instance / 'herald.db'}",
            queue_url=env.get("QUEUE_URL") or f"sqlite:///{instance / 'queue.db'}",
            secret_key=secret_key,
            token_keys=token_keys,
            public_url=(env.get("PUBLIC_URL") or f"http://localhost:{env.get('PORT', '5000')}").rstrip("/"),
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET", ""),
            slack_bot_token=env.get("SLACK_BOT_TOKEN", ""),
            slack_client_id=env.get("SLACK_CLIENT_ID", ""),
            slack_client_secret=env.get("SLACK_CLIENT_SECRET", ""),
            slack_app_token=env.get("SLACK_APP_TOKEN", ""),
            slack_api_url=env.get("SLACK_API_URL") or "https://slack.com/api/",
            platforms={**{name: _platform(env, name) for name in PLATFORMS},
                       "sandbox": PlatformSettings(api_url=env.get("SANDBOX_API_URL")
                                                   or f"file://{instance / 'sandbox.jsonl'}")},
            missed_after=parse_duration(env.get("MISSED_AFTER", "24h"), "MISSED_AFTER"),
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        )


def _platform(env: dict, name: str) -> PlatformSettings:
    prefix = name.upper()
    return PlatformSettings(
        client_id=env.get(f"{prefix}_CLIENT_ID", ""),
        client_secret=env.get(f"{prefix}_CLIENT_SECRET", ""),
        api_url=env.get(f"{prefix}_API_URL", ""),
        auth_url=env.get(f"{prefix}_AUTH_URL", ""),
    )


def _token_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for position, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(f"TOKEN_KEYS entry {position} is not a Fernet key "
                              "(32 url-safe base64-encoded bytes; make one with "
                              "`python -c 'from cryptography.fernet import Fernet; "
                              "print(Fernet.generate_key().decode())'`).") from None
    return keys


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(raw: str, name: str) -> timedelta:
    """'90' (seconds), '90s', '15m', '24h', '2d'."""
    match = _DURATION.match(raw or "")
    if not match:
        raise ConfigError(f"{name} must be a duration like 90s, 15m, 24h or 2d, not {raw!r}.")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return timedelta(seconds=number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])


def _new_secret_key() -> str:
    import secrets
    return secrets.token_urlsafe(48)


def _new_token_key() -> str:
    return Fernet.generate_key().decode("ascii")


def _instance_secret(instance: Path, name: str, make) -> str:
    """Read a development secret from the instance folder, creating it exactly once even when
    the web and worker processes start at the same moment (O_EXCL decides the race)."""
    path = instance / name
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_when_written(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(make() + "\n")
    log.warning("Development mode: generated %s and saved it in %s (keep this folder; "
                "set %s in production).", name.replace("_", " "), path,
                "SECRET_KEY" if name == "secret_key" else "TOKEN_KEYS")
    return path.read_text().strip()


def _read_when_written(path: Path) -> str:
    import time
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        value = path.read_text().strip()
        if value:
            return value
        time.sleep(0.01)  # another process created the file and is writing it
    raise ConfigError(f"{path} exists but is empty; delete it and start again.")
