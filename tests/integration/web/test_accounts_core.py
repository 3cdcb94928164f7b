"""Connecting social accounts through core.accounts, against each network's fake, on Postgres and
SQLite: authorize URL → the fake's authorize endpoint (over HTTP) → its redirect's code/state →
finish_connect → SocialAccount + encrypted OAuthToken; reconnect, refusals, disconnect."""
from __future__ import annotations

import contextlib
import re
import socket
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from core import accounts
from core.accounts import ConnectError
from core.errors import NotFound, PermissionDenied, ValidationError
from core.settings import Settings
from db.fields import utcnow
from db.models import AuditLog, OAuthToken, Post, PostTarget, SocialAccount
from db.models.connect import ConnectState, MastodonApp
from platforms.meta import GRAPH_VERSION
from tests.conftest import TEST_TOKEN_KEYS

PUBLIC_URL = "http://herald.test"
OAUTH_NETWORKS = ["mastodon", "linkedin", "tiktok", "instagram", "threads", "facebook", "x",
                  "pinterest"]


# -- fakes and settings -------------------------------------------------------------------

def _start(platform: str, stack: contextlib.ExitStack):
    """Start the network's fake; returns (fake, env for Settings)."""
    if platform == "mastodon":
        from tests.fakes.platforms.mastodon import FakeMastodon
        fake = stack.enter_context(FakeMastodon())
        fake.add_account("brand", display_name="Brand <script>alert(1)</script>")
        return fake, {}
    if platform == "bluesky":
        from tests.fakes.platforms.bluesky import FakeBluesky
        fake = stack.enter_context(FakeBluesky())
        fake.add_account("brand.test", "app-pass-1234", display_name="Brand")
        return fake, {"BLUESKY_API_URL": fake.url}
    if platform == "linkedin":
        from tests.fakes.platforms.linkedin import FakeLinkedIn
        fake = stack.enter_context(FakeLinkedIn())
        return fake, {"LINKEDIN_CLIENT_ID": fake.client_id,
                      "LINKEDIN_CLIENT_SECRET": fake.client_secret,
                      "LINKEDIN_API_URL": fake.url, "LINKEDIN_AUTH_URL": fake.url + "/oauth/v2"}
    if platform == "tiktok":
        from tests.fakes.platforms.tiktok import FakeTikTok
        fake = stack.enter_context(FakeTikTok())
        return fake, {"TIKTOK_CLIENT_ID": fake.client_key, "TIKTOK_CLIENT_SECRET": fake.client_secret,
                      "TIKTOK_API_URL": fake.url, "TIKTOK_AUTH_URL": fake.url + "/v2/auth/authorize/"}
    if platform in ("instagram", "threads", "facebook"):
        from tests.fakes.platforms.facebook import FacebookFake
        from tests.fakes.platforms.instagram import InstagramFake
        from tests.fakes.platforms.threads import ThreadsFake
        cls = {"instagram": InstagramFake, "threads": ThreadsFake, "facebook": FacebookFake}[platform]
        fake = stack.enter_context(cls())
        auth = (f"{fake.url}/{GRAPH_VERSION}/dialog/oauth" if platform == "facebook"
                else fake.url + "/oauth/authorize")
        p = platform.upper()
        return fake, {f"{p}_CLIENT_ID": fake.client_id, f"{p}_CLIENT_SECRET": fake.client_secret,
                      f"{p}_API_URL": fake.url, f"{p}_AUTH_URL": auth}
    if platform == "x":
        from tests.fakes.platforms.x import FakeX
        fake = stack.enter_context(FakeX())
        return fake, {"X_CLIENT_ID": fake.client_id, "X_CLIENT_SECRET": fake.client_secret,
                      "X_API_URL": fake.url, "X_AUTH_URL": fake.url + "/i/oauth2/authorize"}
    if platform == "pinterest":
        from tests.fakes.platforms.pinterest import FakePinterest
        fake = stack.enter_context(FakePinterest())
        return fake, {"PINTEREST_CLIENT_ID": fake.client_id,
                      "PINTEREST_CLIENT_SECRET": fake.client_secret,
                      "PINTEREST_API_URL": fake.url, "PINTEREST_AUTH_URL": fake.url + "/oauth/"}
    raise KeyError(platform)


class Net:
    """Running fakes for the networks a test asks for, and Settings pointing at them."""

    def __init__(self, tmp_path):
        self.stack = contextlib.ExitStack()
        self.fakes: dict = {}
        self.env = {"TOKEN_KEYS": ",".join(TEST_TOKEN_KEYS), "SECRET_KEY": "test",
                    "HERALD_INSTANCE_PATH": str(tmp_path), "PUBLIC_URL": PUBLIC_URL}
        self.settings = None

    def __call__(self, *platforms: str) -> Settings:
        for platform in platforms:
            if platform not in self.fakes:
                self.fakes[platform], env = _start(platform, self.stack)
                self.env.update(env)
        self.settings = Settings.from_env(self.env)
        return self.settings

    def __getitem__(self, platform):
        return self.fakes[platform]


@pytest.fixture
def net(tmp_path):
    n = Net(tmp_path)
    yield n
    n.stack.close()


@pytest.fixture
def team(make):
    ws = make.workspace()
    return dict(ws=ws, owner=make.user(ws, role="owner"), approver=make.user(ws, role="approver"),
                editor=make.user(ws, role="editor"), analyst=make.user(ws, role="analyst"),
                project=make.project(ws, name="Acme Shoes"))


BINDING = "browser-session-1"


def authorize(url: str, fake, platform: str, decision: str = "approve") -> dict:
    """What the person's browser does on the network: open the authorize URL and follow the
    network back to Herald's callback. Returns the callback's query."""
    if platform == "mastodon":
        page = httpx.get(url)
        assert page.status_code == 200 and 'id="authorize"' in page.text and 'id="deny"' in page.text
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
        import html
        form = {k: html.unescape(v) for k, v in hidden.items()}
        answer = httpx.post(fake.url + "/oauth/authorize", data={**form, "decision": decision})
    else:
        answer = httpx.get(url)
    assert answer.status_code in (302, 303), answer.text[:300]
    location = answer.headers["location"]
    assert location.startswith(f"{PUBLIC_URL}/accounts/callback/{platform}"), location
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def connect(user, platform, net, settings, binding=BINDING, **kw):
    instance = net[platform].url if platform == "mastodon" else None
    started = accounts.start_connect(user, platform, binding, instance_url=instance,
                                     settings=settings, **kw)
    back = authorize(started.url, net[platform], platform)
    return accounts.finish_connect(user, platform, back.get("state"), back.get("code"),
                                   back.get("error"), binding, settings=settings), started, back


def raw_token_columns(db, account_id):
    p = db.param if hasattr(db, "param") else "?"
    return db.execute_sql(f"SELECT access_token, refresh_token FROM oauth_tokens "
                          f"WHERE account_id = {p}", (_db_id(db, account_id),)).fetchone()


def _db_id(db, value):
    from db import is_postgres
    return str(value) if is_postgres() else value.hex


# -- connect per network --------------------------------------------------------------------

@pytest.mark.parametrize("platform", OAUTH_NETWORKS)
def test_connect_through_the_networks_authorize_page(db, team, net, platform, caplog):
    caplog.set_level("DEBUG")
    settings = net(platform)
    owner = team["owner"]
    started = accounts.start_connect(owner, platform, BINDING, project=team["project"].id,
                                     instance_url=net[platform].url if platform == "mastodon" else None,
                                     settings=settings)
    query = parse_qs(urlparse(started.url).query)
    assert query["redirect_uri"] == [f"{PUBLIC_URL}/accounts/callback/{platform}"]
    state = query["state"][0]
    pending = ConnectState.get_by_id(started.pending_id)
    assert state not in pending.state_hash and BINDING not in pending.session_hash
    assert pending.expires_at - utcnow() <= timedelta(minutes=10)
    uses_pkce = "code_challenge" in query
    assert uses_pkce == (platform in ("mastodon", "x"))
    if uses_pkce:
        raw_verifier = db.execute_sql("SELECT pkce_verifier FROM connect_states").fetchone()[0]
        assert raw_verifier.startswith("gAAAAA")
        assert pending.pkce_verifier.reveal() not in raw_verifier

    back = authorize(started.url, net[platform], platform)
    assert back["state"] == state
    account = accounts.finish_connect(owner, platform, back["state"], back["code"], None, BINDING,
                                      settings=settings)

    account = SocialAccount.get_by_id(account.id)
    assert account.workspace_id == team["ws"].id and account.project_id == team["project"].id
    assert account.status == "active" and account.platform_user_id and account.handle
    assert account.connected_by_id == owner.id
    token = OAuthToken.get(OAuthToken.account == account.id)
    access = token.access_token.reveal()
    assert access and token.last_refreshed_at is not None
    raw_access, raw_refresh = raw_token_columns(db, account.id)
    assert raw_access.startswith("gAAAAA") and access not in raw_access
    if token.refresh_token:
        assert raw_refresh.startswith("gAAAAA") and token.refresh_token.reveal() not in raw_refresh
    # The identity the network reported, and nothing secret kept beside it.
    assert access not in repr(account.extra)
    assert not any(w in k.lower() for k in account.extra for w in ("token", "secret"))
    # The code went with the verifier of this very connect.
    if platform == "mastodon":
        assert net["mastodon"].calls_to("/oauth/token")[-1].form["code_verifier"]
    [entry] = AuditLog.select().where(AuditLog.action == "account.connected")
    assert entry.entity_id == str(account.id) and access not in repr(entry.changes)
    # The adapter can act for the account with what was stored.
    creds = accounts.credentials_for(account)
    assert creds.access_token == access
    # No log line carries the token: Herald's own never do; httpx logs request URLs and the
    # Graph API takes access_token in the query, which core.logs masks in every handler.
    from core.logs import redact
    for record in caplog.records:
        message = record.getMessage()
        assert access not in (redact(message) if record.name == "httpx" else message), record.name


def test_identity_lands_on_the_row(db, team, net):
    settings = net("mastodon", "linkedin", "tiktok", "facebook")
    owner = team["owner"]
    mastodon, *_ = connect(owner, "mastodon", net, settings)
    host = urlparse(net["mastodon"].url).netloc
    [raw_id] = net["mastodon"].accounts
    assert mastodon.platform_user_id == f"{raw_id}@{host}"
    assert mastodon.extra["account_id"] == raw_id and mastodon.extra["instance_url"] == net["mastodon"].url
    assert mastodon.handle == f"brand@{host}"
    assert mastodon.display_name == "Brand <script>alert(1)</script>"
    linkedin, *_ = connect(owner, "linkedin", net, settings)
    assert linkedin.platform_user_id == "urn:li:person:aBc123" and linkedin.display_name == "Ada Lovelace"
    tiktok, *_ = connect(owner, "tiktok", net, settings)
    assert tiktok.platform_user_id == net["tiktok"].open_id and tiktok.handle == "herald.demo"
    facebook, *_ = connect(owner, "facebook", net, settings)
    assert facebook.platform_user_id == net["facebook"].page_id
    assert facebook.extra["page_id"] == net["facebook"].page_id
    token = OAuthToken.get(OAuthToken.account == facebook.id)
    assert token.expires_at is None and token.refresh_token      # Page token; user token kept


def test_bluesky_connects_with_an_app_password_that_is_never_stored(db, team, net):
    settings = net("bluesky")
    account = accounts.connect_app_password(team["approver"], "@brand.test", "app-pass-1234",
                                            project=team["project"], settings=settings)
    assert account.platform == "bluesky" and account.handle == "brand.test"
    assert account.platform_user_id.startswith("did:plc:")
    assert account.extra["pds_url"] == net["bluesky"].url
    token = OAuthToken.get(OAuthToken.account == account.id)
    assert token.refresh_token and token.expires_at and token.refresh_expires_at
    dump = repr([list(db.execute_sql(f"SELECT * FROM {t}").fetchall())
                 for t in ("social_accounts", "oauth_tokens", "audit_log", "connect_states")])
    assert "app-pass-1234" not in dump
    assert token.access_token.reveal() not in dump

    with pytest.raises(ConnectError) as caught:
        accounts.connect_app_password(team["owner"], "brand.test", "wrong", settings=settings)
    assert "Bluesky" in caught.value.message and "wrong" not in caught.value.message
    with pytest.raises(ValidationError) as caught:
        accounts.connect_app_password(team["owner"], "brand.test", "", settings=settings)
    assert "app_password" in caught.value.errors


# -- reconnect --------------------------------------------------------------------------------

@pytest.mark.parametrize("platform", ["mastodon", "linkedin"])
def test_reconnect_keeps_the_row_and_its_history(db, team, net, make, platform):
    settings = net(platform)
    owner = team["owner"]
    first, *_ = connect(owner, platform, net, settings)
    old_access = OAuthToken.get(OAuthToken.account == first.id).access_token.reveal()
    post = make.post(team["ws"], team["project"], owner)
    make.target(post, first)
    SocialAccount.update(status="needs_reauth", status_detail="token revoked").where(
        SocialAccount.id == first.id).execute()

    again, *_ = connect(team["approver"], platform, net, settings, account=first.id)
    assert again.id == first.id
    assert SocialAccount.select().count() == 1 and OAuthToken.select().count() == 1
    row = SocialAccount.get_by_id(first.id)
    assert row.status == "active" and row.status_detail == ""
    assert OAuthToken.get(OAuthToken.account == first.id).access_token.reveal() != old_access
    assert PostTarget.select().where(PostTarget.account == first.id).count() == 1
    actions = [e.action for e in AuditLog.select().where(AuditLog.entity_id == str(first.id))
               .order_by(AuditLog.created_at)]
    assert actions == ["account.connected", "account.reconnected"]
    if platform == "mastodon":    # one app registration per instance, reused
        assert len(net["mastodon"].calls_to("/api/v1/apps")) == 1
        raw = db.execute_sql("SELECT client_secret FROM mastodon_apps").fetchone()[0]
        assert raw.startswith("gAAAAA") and MastodonApp.get().client_secret.reveal() not in raw


def test_reconnecting_as_another_account_is_refused(db, team, net):
    settings = net("mastodon")
    first, *_ = connect(team["owner"], "mastodon", net, settings)
    other = net["mastodon"].add_account("someone_else")
    net["mastodon"].signed_in = other
    with pytest.raises(ConnectError) as caught:
        connect(team["owner"], "mastodon", net, settings, account=first.id)
    assert caught.value.kind == "mismatch" and "someone_else" in caught.value.message
    assert SocialAccount.select().count() == 1


def test_two_mastodon_instances_with_the_same_account_id_do_not_collide(db, team, net, tmp_path):
    from tests.fakes.platforms.mastodon import FakeMastodon
    settings = net("mastodon")
    first, *_ = connect(team["owner"], "mastodon", net, settings)
    with FakeMastodon() as other:
        other.add_account("brand")
        assert list(other.accounts) == list(net["mastodon"].accounts)   # same raw id
        started = accounts.start_connect(team["owner"], "mastodon", BINDING,
                                         instance_url=other.url, settings=settings)
        back = authorize(started.url, other, "mastodon")
        second = accounts.finish_connect(team["owner"], "mastodon", back["state"], back["code"],
                                         None, BINDING, settings=settings)
        assert second.id != first.id and SocialAccount.select().count() == 2
        assert MastodonApp.select().count() == 2
        creds = accounts.credentials_for(second)
        assert creds.platform_user_id == first.extra["account_id"]       # the raw id for APIs
        assert creds.extra["instance_url"] == other.url
        # The engine can act for it with these Credentials.
        from core import networks
        metrics = networks.adapter("mastodon", settings).account_metrics(creds)
        assert "followers" in metrics.values


# -- refusals ----------------------------------------------------------------------------------

def _callback(team, net, settings, platform="mastodon"):
    started = accounts.start_connect(team["owner"], platform, BINDING,
                                     instance_url=net[platform].url if platform == "mastodon" else None,
                                     settings=settings)
    return started, authorize(started.url, net[platform], platform)


def test_wrong_state_is_refused(db, team, net):
    settings = net("mastodon")
    _, back = _callback(team, net, settings)
    with pytest.raises(ConnectError) as caught:
        accounts.finish_connect(team["owner"], "mastodon", back["state"] + "x", back["code"],
                                None, BINDING, settings=settings)
    assert caught.value.kind == "state"
    with pytest.raises(ConnectError) as caught:
        accounts.finish_connect(team["owner"], "mastodon", None, back["code"], None, BINDING,
                                settings=settings)
    assert caught.value.kind == "state"
    assert SocialAccount.select().count() == 0 and not net["mastodon"].calls_to("/oauth/token")


def test_a_state_is_single_use(db, team, net):
    settings = net("mastodon")
    _, back = _callback(team, net, settings)
    accounts.finish_connect(team["owner"], "mastodon", back["state"], back["code"], None, BINDING,
                            settings=settings)
    with pytest.raises(ConnectError) as caught:
        accounts.finish_connect(team["owner"], "mastodon", back["state"], back["code"], None,
                                BINDING, settings=settings)
    assert caught.value.kind == "replayed"
    assert len(net["mastodon"].calls_to("/oauth/token")) == 1


def test_an_expired_state_is_refused(db, team, net):
    settings = net("mastodon")
    started, back = _callback(team, net, settings)
    ConnectState.update(expires_at=utcnow() - timedelta(seconds=1)).where(
        ConnectState.id == started.pending_id).execute()
    with pytest.raises(ConnectError) as caught:
        accounts.finish_connect(team["owner"], "mastodon", back["state"], back["code"], None,
                                BINDING, settings=settings)
    assert caught.value.kind == "expired" and "10 minutes" in caught.value.message
    assert SocialAccount.select().count() == 0


def test_a_state_from_another_session_user_or_network_is_refused(db, team, net):
    settings = net("mastodon", "linkedin")
    _, back = _callback(team, net, settings)
    attempts = [
        (team["owner"], "mastodon", "another-browser-session"),      # another session
        (team["approver"], "mastodon", BINDING),                     # another user, same session value
        (team["owner"], "linkedin", BINDING),                        # another network
    ]
    for user, platform, binding in attempts:
        with pytest.raises(ConnectError) as caught:
            accounts.finish_connect(user, platform, back["state"], back["code"], None, binding,
                                    settings=settings)
        assert caught.value.kind == "state", (user, platform, binding)
    # None of that spent the state: the right browser can still finish.
    account = accounts.finish_connect(team["owner"], "mastodon", back["state"], back["code"], None,
                                      BINDING, settings=settings)
    assert account.status == "active"


@pytest.mark.parametrize("platform", ["mastodon", "linkedin", "tiktok"])
def test_cancelling_on_the_network_says_so(db, team, net, platform):
    settings = net(platform)
    started = accounts.start_connect(team["owner"], platform, BINDING,
                                     instance_url=net[platform].url if platform == "mastodon" else None,
                                     settings=settings)
    if platform == "mastodon":
        back = authorize(started.url, net[platform], platform, decision="deny")
    else:
        net[platform].deny_authorization = True
        back = authorize(started.url, net[platform], platform)
    assert "code" not in back and back["error"]
    with pytest.raises(ConnectError) as caught:
        accounts.finish_connect(team["owner"], platform, back.get("state"), None, back["error"],
                                BINDING, error_description=back.get("error_description"),
                                settings=settings)
    label = accounts.label(platform)
    assert caught.value.kind == "cancelled"
    assert caught.value.message.startswith(f"You cancelled on {label}")
    assert SocialAccount.select().count() == 0
    assert ConnectState.get_by_id(started.pending_id).used_at is not None


def test_a_platform_error_is_shown_in_plain_words(db, team, net):
    settings = net("mastodon")
    _, back = _callback(team, net, settings)
    with pytest.raises(ConnectError) as caught:
        accounts.finish_connect(team["owner"], "mastodon", back["state"], None, "invalid_scope",
                                BINDING, error_description="The requested scope is invalid.",
                                settings=settings)
    assert caught.value.kind == "platform"
    assert "Mastodon" in caught.value.message and "invalid_scope" in caught.value.message
    # A code the network refuses at the exchange.
    _, back = _callback(team, net, settings)
    with pytest.raises(ConnectError) as caught:
        accounts.finish_connect(team["owner"], "mastodon", back["state"], "not-the-code", None,
                                BINDING, settings=settings)
    assert caught.value.kind == "platform" and "Traceback" not in caught.value.message
    assert SocialAccount.select().count() == 0


# -- disconnect --------------------------------------------------------------------------------

@pytest.mark.parametrize("platform", ["mastodon", "linkedin", "x"])
def test_disconnect_revokes_deletes_tokens_and_keeps_posts(db, team, net, make, platform):
    settings = net(platform)
    account, *_ = connect(team["owner"], platform, net, settings)
    access = OAuthToken.get(OAuthToken.account == account.id).access_token.reveal()
    post = make.post(team["ws"], team["project"], team["owner"])
    make.target(post, account)

    accounts.disconnect(team["approver"], account.id, settings=settings)

    fake = net[platform]
    if platform == "mastodon":
        [call] = fake.calls_to("/oauth/revoke", "POST")
        assert call.form["token"] == access
        assert access not in fake.tokens
    elif platform == "linkedin":
        [call] = fake.calls_to("/oauth/v2/revoke", "POST")
        assert call.form["token"] == access
    else:
        assert access in fake.revoked
    row = SocialAccount.get_by_id(account.id)
    assert row.status == "disconnected"
    assert OAuthToken.select().where(OAuthToken.account == account.id).count() == 0
    assert Post.get_by_id(post.id) and PostTarget.select().where(PostTarget.account == account.id).count() == 1
    entry = AuditLog.get(AuditLog.action == "account.disconnected")
    assert entry.changes["revoked_at_network"] is True
    assert accounts.token_health(row).state == "disconnected"


def test_bluesky_disconnect_ends_the_session(db, team, net):
    settings = net("bluesky")
    account = accounts.connect_app_password(team["owner"], "brand.test", "app-pass-1234",
                                            settings=settings)
    accounts.disconnect(team["owner"], account, settings=settings)
    assert len(net["bluesky"].calls_to("/xrpc/com.atproto.server.deleteSession", "POST")) == 1
    assert SocialAccount.get_by_id(account.id).status == "disconnected"


def test_a_revoke_failure_does_not_block_the_disconnect(db, team, net, caplog):
    settings = net("mastodon")
    account, *_ = connect(team["owner"], "mastodon", net, settings)
    access = OAuthToken.get(OAuthToken.account == account.id).access_token.reveal()
    net["mastodon"].fail("/oauth/revoke", status=503, json={"error": "unavailable"})
    accounts.disconnect(team["owner"], account.id, settings=settings)
    assert SocialAccount.get_by_id(account.id).status == "disconnected"
    assert OAuthToken.select().count() == 0
    assert AuditLog.get(AuditLog.action == "account.disconnected").changes["revoked_at_network"] is False
    assert access not in caplog.text


# -- workspace scope and roles -------------------------------------------------------------

def test_another_workspace_cannot_see_or_touch_an_account(db, team, net, make):
    settings = net("mastodon")
    account, *_ = connect(team["owner"], "mastodon", net, settings)
    other_ws = make.workspace()
    intruder = make.user(other_ws, role="owner")
    with pytest.raises(NotFound):
        accounts.get_account(intruder, account.id)
    with pytest.raises(NotFound):
        accounts.disconnect(intruder, account.id, settings=settings)
    with pytest.raises(NotFound):
        accounts.start_connect(intruder, "mastodon", BINDING, account=account.id, settings=settings)
    with pytest.raises(NotFound):
        accounts.start_connect(intruder, "mastodon", BINDING, instance_url=net["mastodon"].url,
                               project=team["project"].id, settings=settings)
    assert accounts.list_accounts(intruder) == []
    # A callback carrying workspace A's state, finished by workspace B's user.
    _, back = _callback(team, net, settings)
    with pytest.raises(ConnectError) as caught:
        accounts.finish_connect(intruder, "mastodon", back["state"], back["code"], None, BINDING,
                                settings=settings)
    assert caught.value.kind == "state"
    assert SocialAccount.get_by_id(account.id).status == "active"
    assert SocialAccount.select().where(SocialAccount.workspace == other_ws.id).count() == 0


@pytest.mark.parametrize("role", ["editor", "analyst"])
def test_editors_and_analysts_cannot_connect_or_disconnect(db, team, net, role):
    settings = net("mastodon", "bluesky")
    account, *_ = connect(team["owner"], "mastodon", net, settings)
    someone = team[role]
    with pytest.raises(PermissionDenied) as caught:
        accounts.start_connect(someone, "mastodon", BINDING, instance_url=net["mastodon"].url,
                               settings=settings)
    assert "owners and approvers" in caught.value.message
    with pytest.raises(PermissionDenied):
        accounts.connect_app_password(someone, "brand.test", "app-pass-1234", settings=settings)
    with pytest.raises(PermissionDenied):
        accounts.disconnect(someone, account.id, settings=settings)
    with pytest.raises(PermissionDenied):
        accounts.finish_connect(someone, "mastodon", "s", "c", None, BINDING, settings=settings)
    assert ConnectState.select().count() == 0 or ConnectState.select().where(
        ConnectState.user == someone.id).count() == 0
    assert SocialAccount.get_by_id(account.id).status == "active"
    # They can still see the list (and its health), never a token.
    [group] = accounts.list_accounts(someone)
    assert [row.account.id for row in group.accounts] == [account.id]


# -- health and listing ------------------------------------------------------------------------

def test_token_health_says_when_to_reconnect(db, team, make):
    ws = team["ws"]
    now = utcnow()
    x = make.account(ws, platform="x")
    OAuthToken.create(account=x, access_token="a", refresh_token="r",
                      expires_at=now + timedelta(hours=2), refresh_expires_at=None,
                      last_refreshed_at=now - timedelta(hours=3))
    health = accounts.token_health(x, now=now)
    assert health.state == "ok" and health.summary == "Renews automatically"
    assert health.last_refresh == "3 hours ago" and not health.needs_reconnect

    li = make.account(ws, platform="linkedin")
    OAuthToken.create(account=li, access_token="a", expires_at=now + timedelta(days=3))
    health = accounts.token_health(li, now=now)
    assert health.state == "expiring" and health.summary == "Expires in 3 days"

    gone = make.account(ws, platform="linkedin")
    OAuthToken.create(account=gone, access_token="a", expires_at=now - timedelta(days=2))
    health = accounts.token_health(gone, now=now)
    assert health.needs_reconnect and "Expired 2 days ago" in health.summary

    masto = make.account(ws, platform="mastodon")
    OAuthToken.create(account=masto, access_token="a")
    assert accounts.token_health(masto, now=now).summary == "Doesn't expire"

    bsky = make.account(ws, platform="bluesky", status="needs_reauth",
                        status_detail="Bluesky ended this session")
    OAuthToken.create(account=bsky, access_token="a", refresh_token="r")
    health = accounts.token_health(bsky, now=now)
    assert health.needs_reconnect and "Bluesky ended this session" in health.summary


def test_list_groups_accounts_by_project(db, team, make):
    ws = team["ws"]
    other_project = make.project(ws, name="Beta Bikes")
    a = make.account(ws, platform="mastodon", project=team["project"], handle="acme")
    b = make.account(ws, platform="x", project=other_project, handle="beta")
    c = make.account(ws, platform="linkedin", handle="loose")
    make.account(make.workspace(), platform="x", handle="not-ours")
    groups = accounts.list_accounts(team["analyst"])
    assert [g.name for g in groups] == ["Acme Shoes", "Beta Bikes", "No project"]
    assert [[r.account.id for r in g.accounts] for g in groups] == [[a.id], [b.id], [c.id]]
    assert groups[0].accounts[0].label == "Mastodon"


# -- instance addresses --------------------------------------------------------------------

def _resolver(address):
    return lambda host, port, type=0: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


def test_instance_url_validation():
    public = _resolver("93.184.216.34")
    assert accounts.validate_instance_url("mastodon.social", resolve=public) == "https://mastodon.social"
    assert accounts.validate_instance_url("https://Mastodon.Social/", resolve=public) \
        == "https://mastodon.social"
    refused = ["", "http://mastodon.social", "https://user:pw@mastodon.social",
               "https://mastodon.social@evil.test", "https://mastodon.social/path",
               "ftp://mastodon.social", "javascript:alert(1)", "https://a b"]
    for raw in refused:
        with pytest.raises(ValidationError):
            accounts.validate_instance_url(raw, resolve=public)
    for address in ("127.0.0.1", "10.0.0.5", "192.168.1.2", "169.254.169.254", "::1", "fd00::1"):
        with pytest.raises(ValidationError, match="not a public address"):
            accounts.validate_instance_url("sneaky.example", resolve=_resolver(address))
    with pytest.raises(ValidationError):
        accounts.validate_instance_url("http://127.0.0.1:8080")           # production rules
    # Development: the local fakes.
    assert accounts.validate_instance_url("http://127.0.0.1:8080", allow_loopback=True) \
        == "http://127.0.0.1:8080"
    with pytest.raises(ValidationError):
        accounts.validate_instance_url("http://10.0.0.5:8080", allow_loopback=True)


def test_an_instance_that_forgot_herald_gets_a_new_registration(db, team, net):
    settings = net("mastodon")
    fake = net["mastodon"]
    _, back = _callback(team, net, settings)
    fake.apps.clear()                                   # the instance dropped Herald's app
    with pytest.raises(ConnectError) as caught:
        accounts.finish_connect(team["owner"], "mastodon", back["state"], back["code"], None,
                                BINDING, settings=settings)
    assert caught.value.kind == "platform" and "register" in caught.value.message
    assert MastodonApp.select().count() == 0
    account, *_ = connect(team["owner"], "mastodon", net, settings)
    assert account.status == "active" and len(fake.calls_to("/api/v1/apps")) == 2


def test_token_health_of_refresh_tokens_that_end(db, team, make):
    now = utcnow()
    tiktok = make.account(team["ws"], platform="tiktok")
    OAuthToken.create(account=tiktok, access_token="a", refresh_token="r",
                      expires_at=now + timedelta(hours=2), refresh_expires_at=now + timedelta(days=2))
    health = accounts.token_health(tiktok, now=now)
    assert health.state == "expiring" and health.summary == "Reconnect in 2 days"
    OAuthToken.update(refresh_expires_at=now + timedelta(days=100)).execute()
    health = accounts.token_health(tiktok, now=now)
    assert health.state == "ok" and health.summary == "Renews automatically (reconnect needed in 100 days)"
    insta = make.account(team["ws"], platform="instagram")
    OAuthToken.create(account=insta, access_token="a", expires_at=now + timedelta(days=50))
    assert accounts.token_health(insta, now=now).summary == "Renews automatically (expires in 50 days)"


def test_start_connect_checks_the_instance_address_itself(db, team, net, tmp_path):
    settings = net("mastodon")
    production = Settings.from_env({**net.env, "HERALD_ENV": "production",
                                    "DATABASE_URL": "sqlite:///unused.db"})
    with pytest.raises(ValidationError) as caught:      # loopback http: only in development
        accounts.start_connect(team["owner"], "mastodon", BINDING,
                               instance_url=net["mastodon"].url, settings=production)
    assert "instance_url" in caught.value.errors
    with pytest.raises(ValidationError):
        accounts.start_connect(team["owner"], "mastodon", BINDING,
                               instance_url="https://me:pw@mastodon.example", settings=settings)
    assert not net["mastodon"].calls and ConnectState.select().count() == 0
