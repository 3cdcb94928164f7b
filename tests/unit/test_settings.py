"""Settings: documented defaults, generated development secrets, strict production."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet

from core.settings import ConfigError, Settings, parse_duration


def test_development_generates_secrets_once_and_reuses_them(tmp_path, caplog):
    env = {"HERALD_INSTANCE_PATH": str(tmp_path)}
    with caplog.at_level(logging.WARNING):
        first = Settings.from_env(env)
    assert "generated secret key" in caplog.text and "generated token key" in caplog.text
    Fernet(first.token_keys[0])
    assert len(first.secret_key) > 40
    caplog.clear()
    again = Settings.from_env(env)
    assert (again.secret_key, again.token_keys) == (first.secret_key, first.token_keys)
    assert "generated" not in caplog.text
    assert oct((tmp_path / "token_key").stat().st_mode)[-3:] == "600"


def test_defaults(tmp_path):
    s = Settings.from_env({"HERALD_INSTANCE_PATH": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path / 'herald.db'}"
    assert s.queue_url == f"sqlite:///{tmp_path / 'queue.db'}"
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.public_url == "http://localhost:5000"
    assert s.missed_after == timedelta(hours=24)
    assert s.slack_mode == "unconfigured" and not s.production


def test_production_names_what_is_missing(tmp_path):
    env = {"HERALD_ENV": "production", "HERALD_INSTANCE_PATH": str(tmp_path),
           "SECRET_KEY": "s", "DATABASE_URL": "postgresql://db/herald"}
    with pytest.raises(ConfigError) as missing:
        Settings.from_env(env)
    assert "TOKEN_KEYS, PUBLIC_URL are not set" in str(missing.value)
    assert not (tmp_path / "token_key").exists()
    env.update(TOKEN_KEYS=Fernet.generate_key().decode(), PUBLIC_URL="https://herald.example.com/")
    s = Settings.from_env(env)
    assert s.production and s.public_url == "https://herald.example.com"


def test_token_keys_are_checked(tmp_path):
    good = Fernet.generate_key().decode()
    s = Settings.from_env({"TOKEN_KEYS": f" {good} , {Fernet.generate_key().decode()}",
                           "HERALD_INSTANCE_PATH": str(tmp_path)})
    assert s.token_keys[0] == good and len(s.token_keys) == 2
    with pytest.raises(ConfigError, match="TOKEN_KEYS entry 2"):
        Settings.from_env({"TOKEN_KEYS": f"{good},not-a-key", "HERALD_INSTANCE_PATH": str(tmp_path)})


def test_platform_and_slack_settings(tmp_path):
    s = Settings.from_env({"HERALD_INSTANCE_PATH": str(tmp_path), "X_CLIENT_ID": "cid",
                           "X_CLIENT_SECRET": "shh", "X_API_URL": "http://127.0.0.1:9/",
                           "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_API_URL": "http://127.0.0.1:8/api/"})
    assert s.platform("x").client_id == "cid" and s.platform("x").api_url == "http://127.0.0.1:9/"
    assert s.platform("bluesky").api_url == ""
    assert s.slack_mode == "single" and s.slack_api_url == "http://127.0.0.1:8/api/"
    assert "shh" not in repr(s) and "xoxb-1" not in repr(s)


@pytest.mark.parametrize("raw, seconds", [("90", 90), ("90s", 90), ("15m", 900), ("24h", 86400),
                                           ("2d", 172800), ("1.5h", 5400)])
def test_durations(raw, seconds):
    assert parse_duration(raw, "MISSED_AFTER") == timedelta(seconds=seconds)


def test_a_bad_duration_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="MISSED_AFTER"):
        Settings.from_env({"MISSED_AFTER": "a day", "HERALD_INSTANCE_PATH": str(tmp_path)})
    with pytest.raises(ConfigError, match="HERALD_ENV"):
        Settings.from_env({"HERALD_ENV": "staging", "HERALD_INSTANCE_PATH": str(tmp_path)})
