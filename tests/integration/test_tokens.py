"""Tokens are ciphertext at rest, never printable, and survive a key rotation."""
from __future__ import annotations

import pickle
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet

from core import crypto
from core.settings import Settings
from db.fields import Secret, TokenKeyError, utcnow
from db.models import OAuthToken, SlackInstallation
from tests.conftest import TEST_TOKEN_KEYS

ACCESS = "ya29.a0-real-looking-access-token-1234567890"


def raw_column(db, table: str, column: str) -> list[str]:
    return [r[0] for r in db.execute_sql(f'SELECT "{column}" FROM "{table}"').fetchall()]


@pytest.fixture
def restore_keys():
    yield
    crypto.configure(TEST_TOKEN_KEYS)


def test_a_raw_select_shows_ciphertext_never_the_token(db, make):
    account = make.account(make.workspace())
    make.token(account, access=ACCESS, refresh="refresh-abc-123")
    stored = raw_column(db, "oauth_tokens", "access_token") + raw_column(db, "oauth_tokens", "refresh_token")
    for value in stored:
        assert value.startswith("gAAAAA")
        assert ACCESS not in value and "refresh-abc-123" not in value
    token = OAuthToken.get(OAuthToken.account == account)
    assert token.access_token.reveal() == ACCESS


def test_a_token_never_prints_and_cant_be_pickled(db, make):
    account = make.account(make.workspace())
    make.token(account, access=ACCESS)
    token = OAuthToken.get(OAuthToken.account == account)
    for text in (repr(token), str(token), repr(token.access_token), str(token.access_token),
                 f"{token.access_token}", repr(token.__data__)):
        assert ACCESS not in text
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(token.access_token)
    assert token.access_token == ACCESS and token.access_token == Secret(ACCESS)


def test_a_key_missing_from_token_keys_gives_a_clear_error(db, make, restore_keys):
    account = make.account(make.workspace())
    make.token(account)
    crypto.configure((Fernet.generate_key().decode(),))
    with pytest.raises(TokenKeyError, match="not in TOKEN_KEYS.*tokens rotate"):
        OAuthToken.get(OAuthToken.account == account).access_token


def test_rotation_re_encrypts_every_secret_under_the_new_key(db, make, restore_keys):
    old = TEST_TOKEN_KEYS[0]
    ws = make.workspace()
    for n in range(5):
        make.token(make.account(ws, platform_user_id=f"acct{n}"), access=f"access-{n}",
                   refresh=None if n == 0 else f"refresh-{n}")
    SlackInstallation.create(client_id="C1", app_id="A1", team_id=ws.team_id, user_id="U1",
                             bot_token="xoxb-bot-secret", installed_at=utcnow())
    new = Fernet.generate_key().decode()
    crypto.configure((new, old))
    first = crypto.rotate_all((new, old), batch_size=2)
    assert first.rotated == 9 + 1 and first.failed == []
    # Every ciphertext now opens with the new key alone …
    only_new = Fernet(new)
    for table, column in (("oauth_tokens", "access_token"), ("oauth_tokens", "refresh_token"),
                          ("slack_installations", "bot_token")):
        for value in raw_column(db, table, column):
            if value is not None:
                only_new.decrypt(value.encode())
    # … so the old key can go, and everything still reads.
    crypto.configure((new,))
    assert sorted(t.access_token.reveal() for t in OAuthToken.select()) == [f"access-{n}" for n in range(5)]
    assert SlackInstallation.get().bot_token.reveal() == "xoxb-bot-secret"
    # Re-running is safe and finds nothing left to do.
    again = crypto.rotate_all((new,), batch_size=2)
    assert (again.rotated, again.current, again.failed) == (0, 10, [])


def test_rotation_reports_rows_no_key_can_open(db, make, restore_keys):
    make.token(make.account(make.workspace()))
    stranger = Fernet.generate_key().decode()
    report = crypto.rotate_all((stranger,))
    assert report.rotated == 0 and len(report.failed) == 2
    assert "oauth_tokens.access_token" in report.failed[0]


def test_the_rotate_command(db, backend, make, tmp_path, restore_keys):
    from web import create_app
    make.token(make.account(make.workspace()), access=ACCESS)
    new = Fernet.generate_key().decode()
    settings = Settings.from_env({"DATABASE_URL": backend.url, "TOKEN_KEYS": f"{new},{TEST_TOKEN_KEYS[0]}",
                                  "SECRET_KEY": "k", "HERALD_INSTANCE_PATH": str(tmp_path)})
    app = create_app(settings)
    result = app.test_cli_runner().invoke(args=["tokens", "rotate"])
    assert result.exit_code == 0, result.output
    assert "2 re-encrypted" in result.output
    assert ACCESS not in result.output
    (value,) = raw_column(db, "oauth_tokens", "access_token")
    assert Fernet(new).decrypt(value.encode()).decode() == ACCESS
    assert OAuthToken.get().expires_at > utcnow() - timedelta(days=1)
