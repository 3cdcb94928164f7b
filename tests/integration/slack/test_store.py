"""The Peewee installation and state stores behave like slack-sdk's own SQLAlchemy stores.

The first cases re-create python-slack-sdk's conformance tests
(tests/slack_sdk/oauth/installation_store/test_sqlalchemy.py: save and find, org-wide install,
token rotation, issue 1441; tests/slack_sdk/oauth/state_store/test_sqlalchemy.py) step by step,
on PostgreSQL and on SQLite. The rest are Herald's own promises: tokens encrypted at rest, a
re-save keeps its row, installing creates the workspace with the installer as owner.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from slack_sdk.oauth.installation_store import Installation

from bot.store import PeeweeInstallationStore, PeeweeOAuthStateStore
from core import workspaces
from db import database
from db.fields import Secret, utcnow
from db.models import AuditLog, Membership, SlackBot, SlackInstallation, SlackOAuthState, User, Workspace


@pytest.fixture(params=[0, 10], ids=["uncached", "cached"])
def store(request, db):
    """Every case runs on the plain store and on the one Herald uses (cache_seconds=10)."""
    return PeeweeInstallationStore(client_id="111.222", cache_seconds=request.param)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _installation(**kw) -> Installation:
    values = dict(app_id="A111", enterprise_id="E111", team_id="T111", user_id="U111", bot_id="B111",
                  bot_token="xoxb-111", bot_scopes=["chat:write"], bot_user_id="U222")
    values.update(kw)
    return Installation(**values)


# -- slack-sdk's installation store cases -----------------------------------------------------

def test_save_and_find(store):
    installation = _installation()
    store.save(installation)

    assert store.find_bot(enterprise_id="E111", team_id="T111") is not None
    assert store.find_bot(enterprise_id="E111", team_id="T222") is None
    assert store.find_bot(enterprise_id=None, team_id="T111") is None

    store.delete_bot(enterprise_id="E111", team_id="T222")
    assert store.find_bot(enterprise_id="E111", team_id="T222") is None

    assert store.find_installation(enterprise_id="E111", team_id="T111") is not None
    assert store.find_installation(enterprise_id="E111", team_id="T222") is None
    assert store.find_installation(enterprise_id=None, team_id="T111") is None

    assert store.find_installation(enterprise_id="E111", team_id="T111", user_id="U111") is not None
    assert store.find_installation(enterprise_id="E111", team_id="T111", user_id="U222") is None
    assert store.find_installation(enterprise_id="E111", team_id="T222", user_id="U111") is None

    store.delete_installation(enterprise_id="E111", team_id="T111", user_id="U111")
    assert store.find_installation(enterprise_id="E111", team_id="T111", user_id="U111") is None
    assert store.find_installation(enterprise_id="E111", team_id="T111") is None

    store.save(installation)
    store.delete_all(enterprise_id="E111", team_id="T111")
    assert store.find_installation(enterprise_id="E111", team_id="T111") is None
    assert store.find_installation(enterprise_id="E111", team_id="T111", user_id="U111") is None
    assert store.find_bot(enterprise_id="E111", team_id="T111") is None


def test_found_installation_carries_every_field_back(store):
    expires = int(utcnow().timestamp()) + 43200
    store.save(_installation(enterprise_name="Org", team_name="Acme", bot_refresh_token="xoxe-1-r",
                             bot_token_expires_at=expires, user_token="xoxp-1", user_scopes=["openid"],
                             incoming_webhook_url="https://hooks.slack.com/services/T/B/x",
                             incoming_webhook_channel="#news", token_type="bot",
                             custom_values={"plan": "pro"}))
    found = store.find_installation(enterprise_id="E111", team_id="T111")
    assert (found.app_id, found.enterprise_name, found.team_name) == ("A111", "Org", "Acme")
    assert (found.bot_token, found.bot_refresh_token, found.user_token) == ("xoxb-111", "xoxe-1-r", "xoxp-1")
    assert isinstance(found.bot_token, str)         # slack-sdk gets plain text, not Secret
    assert found.bot_token_expires_at == expires
    assert found.bot_scopes == ["chat:write"] and found.user_scopes == ["openid"]
    assert found.incoming_webhook_url == "https://hooks.slack.com/services/T/B/x"
    assert found.custom_values == {"plan": "pro"}
    bot = store.find_bot(enterprise_id="E111", team_id="T111")
    assert (bot.bot_id, bot.bot_user_id, bot.bot_token_expires_at) == ("B111", "U222", expires)


def test_org_installation(store):
    installation = _installation(app_id="AO111", enterprise_id="EO111", team_id=None, user_id="UO111",
                                 bot_id="BO111", bot_token="xoxb-O111", bot_user_id="UO222",
                                 is_enterprise_install=True)
    store.save(installation)

    assert store.find_bot(enterprise_id="EO111", team_id=None) is not None
    assert store.find_bot(enterprise_id="EO111", team_id="TO222", is_enterprise_install=True) is not None
    assert store.find_bot(enterprise_id="EO111", team_id="TO222") is None
    assert store.find_bot(enterprise_id=None, team_id="TO111") is None

    store.delete_bot(enterprise_id="EO111", team_id="TO222")
    assert store.find_bot(enterprise_id="EO111", team_id=None) is not None
    store.delete_bot(enterprise_id="EO111", team_id=None)
    assert store.find_bot(enterprise_id="EO111", team_id=None) is None

    assert store.find_installation(enterprise_id="EO111", team_id=None) is not None
    assert store.find_installation(enterprise_id="EO111", team_id="T111", is_enterprise_install=True) is not None
    assert store.find_installation(enterprise_id="EO111", team_id="T222") is None
    assert store.find_installation(enterprise_id=None, team_id="T111") is None

    assert store.find_installation(enterprise_id="EO111", team_id=None, user_id="UO111") is not None
    assert store.find_installation(enterprise_id="E111", team_id="T111", is_enterprise_install=True,
                                   user_id="U222") is None
    assert store.find_installation(enterprise_id=None, team_id="T222", user_id="U111") is None

    store.delete_installation(enterprise_id="EO111", team_id=None)
    assert store.find_installation(enterprise_id="EO111", team_id=None) is None

    store.save(installation)
    store.delete_all(enterprise_id="EO111", team_id=None)
    assert store.find_installation(enterprise_id="EO111", team_id=None) is None
    assert store.find_installation(enterprise_id="EO111", team_id=None, user_id="UO111") is None
    assert store.find_bot(enterprise_id="EO111", team_id=None) is None
    # An org-wide install has no team of its own: workspaces come when they are used.
    assert Workspace.with_deleted().count() == 0


def test_save_and_find_token_rotation(store):
    installation = _installation(bot_token="xoxe.xoxp-1-initial", bot_refresh_token="xoxe-1-initial",
                                 bot_token_expires_in=43200)
    store.save(installation)
    assert store.find_bot(enterprise_id="E111", team_id="T111").bot_refresh_token == "xoxe-1-initial"

    store.save(_installation(bot_token="xoxe.xoxp-1-refreshed", bot_refresh_token="xoxe-1-refreshed",
                             bot_token_expires_in=43200))
    bot = store.find_bot(enterprise_id="E111", team_id="T111")
    assert bot.bot_refresh_token == "xoxe-1-refreshed"
    assert store.find_bot(enterprise_id="E111", team_id="T222") is None
    assert store.find_bot(enterprise_id=None, team_id="T111") is None

    assert store.find_installation(enterprise_id="E111", team_id="T111") is not None
    assert store.find_installation(enterprise_id="E111", team_id="T111", user_id="U111") is not None
    assert store.find_installation(enterprise_id="E111", team_id="T111", user_id="U222") is None

    store.delete_installation(enterprise_id="E111", team_id="T111", user_id="U111")
    assert store.find_installation(enterprise_id="E111", team_id="T111") is None

    store.save(installation)
    store.delete_all(enterprise_id="E111", team_id="T111")
    assert store.find_installation(enterprise_id="E111", team_id="T111") is None
    assert store.find_bot(enterprise_id="E111", team_id="T111") is None


def test_issue_1441_mixing_user_and_bot_installations(store):
    store.save(_installation())
    assert store.find_installation(enterprise_id="E111", team_id="T111").bot_token == "xoxb-111"

    # A later user-only authorization (no bot token) must not hide the bot token.
    store.save(Installation(app_id="A111", enterprise_id="E111", team_id="T111", user_id="U111",
                            bot_scopes=["openid"], user_token="xoxp-111",
                            installed_at=utcnow() + timedelta(seconds=1)))

    assert store.find_bot(enterprise_id="E111", team_id="T111").bot_token == "xoxb-111"
    assert store.find_bot(enterprise_id="E111", team_id="T222") is None
    assert store.find_bot(enterprise_id=None, team_id="T111") is None
    installation = store.find_installation(enterprise_id="E111", team_id="T111")
    assert installation.user_token == "xoxp-111"
    assert installation.bot_token == "xoxb-111"
    assert store.find_installation(enterprise_id="E111", team_id="T222") is None
    assert store.find_installation(enterprise_id=None, team_id="T111") is None


def test_a_user_lookup_gets_the_newest_bot_token(store):
    first = utcnow() - timedelta(days=2)
    store.save(_installation(user_id="U111", bot_token="xoxb-old", installed_at=first))
    store.save(_installation(user_id="U999", bot_token="xoxb-new", installed_at=first + timedelta(days=1)))
    mine = store.find_installation(enterprise_id="E111", team_id="T111", user_id="U111")
    assert mine.user_id == "U111"
    assert mine.bot_token == "xoxb-new"


# -- Herald's own promises ----------------------------------------------------------------------

def test_tokens_are_ciphertext_at_rest(store):
    store.save(_installation(bot_token="xoxb-plain-111", bot_refresh_token="xoxe-1-plain",
                             user_token="xoxp-plain", incoming_webhook_url="https://hooks.slack.com/x"))
    raw = database.execute_sql("SELECT bot_token, bot_refresh_token, user_token, incoming_webhook_url "
                               "FROM slack_installations").fetchone()
    raw_bot = database.execute_sql("SELECT bot_token, bot_refresh_token FROM slack_bots").fetchone()
    for value in (*raw, *raw_bot):
        assert value.startswith("gAAAAA")
        assert "plain" not in value and "hooks.slack.com" not in value
    row = SlackInstallation.get()
    assert isinstance(row.bot_token, Secret) and "xoxb" not in repr(row.bot_token)


def test_a_rotation_re_save_updates_its_own_row(store):
    installation = _installation(bot_token="xoxe.xoxb-1-a", bot_refresh_token="xoxe-1-a",
                                 bot_token_expires_in=60)
    store.save(installation)
    found = store.find_installation(enterprise_id="E111", team_id="T111")
    found.bot_token, found.bot_refresh_token = "xoxe.xoxb-1-b", "xoxe-1-b"
    store.save(found)                 # what Bolt's token rotation does: same installed_at
    assert SlackInstallation.select().count() == 1
    assert SlackBot.select().count() == 1
    again = store.find_installation(enterprise_id="E111", team_id="T111")
    assert again.bot_token == "xoxe.xoxb-1-b"
    assert again.installed_at == installation.installed_at


def test_installing_creates_the_workspace_with_the_installer_as_owner(store):
    store.save(_installation(team_name="Acme"))
    workspace = Workspace.get(Workspace.team_id == "T111")
    assert (workspace.name, workspace.enterprise_id) == ("Acme", "E111")
    installer = User.get((User.workspace == workspace) & (User.slack_user_id == "U111"))
    assert workspaces.role_of(installer) == "owner"
    assert SlackInstallation.get().workspace_id == workspace.id
    assert SlackBot.get().workspace_id == workspace.id
    entry = AuditLog.get(AuditLog.action == "slack.installed")
    assert entry.workspace_id == workspace.id and entry.actor_id == installer.id
    assert entry.changes["team_id"] == "T111" and entry.changes["scopes"] == ["chat:write"]
    assert "xoxb" not in str(entry.changes)


def test_an_existing_member_who_installs_becomes_owner(store, make):
    workspace = make.workspace("T111")
    member = make.user(workspace, role="editor", slack_user_id="U111")
    store.save(_installation())
    assert Membership.get(Membership.user == member).role == "owner"
    change = AuditLog.get(AuditLog.action == "member.role_changed")
    assert change.changes["role"] == ["editor", "owner"]


def test_a_token_rotation_does_not_make_the_installer_owner_again(store):
    store.save(_installation(bot_token="xoxe.xoxb-1-a", bot_refresh_token="xoxe-1-a"))
    Membership.update(role="approver").execute()   # the owners changed their minds later
    rotated = store.find_installation(enterprise_id="E111", team_id="T111")
    rotated.bot_token = "xoxe.xoxb-1-b"
    store.save(rotated)
    assert Membership.get().role == "approver"
    assert AuditLog.select().where(AuditLog.action == "slack.installed").count() == 1


def test_reinstalling_restores_an_uninstalled_workspace(store):
    store.save(_installation())
    Workspace.get(Workspace.team_id == "T111").soft_delete()
    store.save(_installation(installed_at=utcnow() + timedelta(seconds=5)))
    assert Workspace.get(Workspace.team_id == "T111").deleted_at is None
    assert AuditLog.select().where(AuditLog.action == "slack.installed").count() == 2


# -- the per-process cache of found installations -------------------------------------------------

@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def cached(db, clock):
    return PeeweeInstallationStore(client_id="111.222", cache_seconds=10, clock=clock)


def test_a_found_installation_is_kept_for_cache_seconds(cached, clock):
    cached.save(_installation())
    assert cached.find_installation(enterprise_id="E111", team_id="T111") is not None
    SlackInstallation.delete().execute()          # another process uninstalls behind our back
    assert cached.find_installation(enterprise_id="E111", team_id="T111").bot_token == "xoxb-111"
    clock.now += 11
    assert cached.find_installation(enterprise_id="E111", team_id="T111") is None


def test_saves_and_deletes_through_the_store_take_effect_at_once(cached):
    cached.save(_installation())
    assert cached.find_installation(enterprise_id="E111", team_id="T111").bot_token == "xoxb-111"
    cached.save(_installation(bot_token="xoxb-222", installed_at=utcnow() + timedelta(seconds=1)))
    assert cached.find_installation(enterprise_id="E111", team_id="T111").bot_token == "xoxb-222"
    cached.delete_all(enterprise_id="E111", team_id="T111")
    assert cached.find_installation(enterprise_id="E111", team_id="T111") is None


def test_a_team_that_is_not_installed_is_asked_for_every_time(cached):
    assert cached.find_installation(enterprise_id="E111", team_id="T111") is None
    PeeweeInstallationStore(client_id="111.222").save(_installation())   # installed in another process
    assert cached.find_installation(enterprise_id="E111", team_id="T111") is not None


def test_installations_with_refresh_tokens_are_not_cached(cached):
    cached.save(_installation(bot_token="xoxe.xoxb-1-a", bot_refresh_token="xoxe-1-a", bot_token_expires_in=60))
    assert cached.find_installation(enterprise_id="E111", team_id="T111").bot_token == "xoxe.xoxb-1-a"
    SlackInstallation.update(bot_token="xoxe.xoxb-1-b").execute()   # rotated by another process
    assert cached.find_installation(enterprise_id="E111", team_id="T111").bot_token == "xoxe.xoxb-1-b"


def test_the_cache_hands_out_copies(cached):
    cached.save(_installation(user_token="xoxp-111"))
    first = cached.find_installation(enterprise_id="E111", team_id="T111")
    first.user_token = None                       # what Bolt does for a requester who isn't the installer
    assert cached.find_installation(enterprise_id="E111", team_id="T111").user_token == "xoxp-111"


# -- slack-sdk's state store cases (+ single use, expiry without waiting) -------------------------

def test_state_issue_and_consume(db):
    states = PeeweeOAuthStateStore(expiration_seconds=600)
    state = states.issue()
    assert states.consume(state) is True
    assert states.consume(state) is False


def test_states_are_random_and_unknown_ones_are_refused(db):
    states = PeeweeOAuthStateStore(expiration_seconds=600)
    issued = {states.issue() for _ in range(5)}
    assert len(issued) == 5 and all(len(s) >= 32 for s in issued)
    assert states.consume("not-a-state") is False
    assert states.consume("") is False
    assert SlackOAuthState.select().count() == 5


def test_an_expired_state_is_refused(db):
    states = PeeweeOAuthStateStore(expiration_seconds=600)
    state = states.issue()
    # Eleven minutes later, as far as the row is concerned.
    SlackOAuthState.update(expire_at=utcnow() - timedelta(minutes=1)).execute()
    assert states.consume(state) is False


def test_issuing_sweeps_expired_states(db):
    states = PeeweeOAuthStateStore(expiration_seconds=600)
    old = states.issue()
    SlackOAuthState.update(expire_at=utcnow() - timedelta(seconds=1)).execute()
    fresh = states.issue()
    assert [s.state for s in SlackOAuthState.select()] == [fresh]
    assert states.consume(old) is False and states.consume(fresh) is True
