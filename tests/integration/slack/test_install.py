"""Installing Herald into a workspace through Slack's OAuth flow, over real HTTP to a fake Slack
Web API: /slack/install → Slack → /slack/oauth_redirect, then requests from that team are
authorized with the stored bot token; uninstalling and revoking forget the tokens."""
from __future__ import annotations

import base64
import html
import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from core import workspaces
from core.settings import Settings
from db import database
from db.fields import utcnow
from db.models import AuditLog, SlackBot, SlackInstallation, SlackOAuthState, User, Workspace
from tests.conftest import SIGNING_SECRET, TEST_TOKEN_KEYS
from tests.fakes.slack import load_vector
from tests.slack_requests import SlackRequests, wait_for

COOKIE = "slack-app-oauth-state"
ANSWER = json.loads(load_vector("oauth_v2_access.response.json"))
TEAM, ENTERPRISE, INSTALLER = ANSWER["team"]["id"], ANSWER["enterprise"]["id"], ANSWER["authed_user"]["id"]
BOT_TOKEN = ANSWER["access_token"]
POLITE = "installation with this app is no longer available"


@pytest.fixture
def installable(db, backend, fake_slack, tmp_path):
    """Herald in installable (OAuth) mode, talking to the fake Slack."""
    from web import create_app
    settings = Settings.from_env({
        "DATABASE_URL": backend.url, "TOKEN_KEYS": ",".join(TEST_TOKEN_KEYS), "SECRET_KEY": "test",
        "HERALD_INSTANCE_PATH": str(tmp_path), "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_CLIENT_ID": "111.222", "SLACK_CLIENT_SECRET": "client-secret-shh",
        "SLACK_API_URL": fake_slack.api_url, "PUBLIC_URL": "http://herald.test", "QUEUE_URL": "memory://",
    })
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def browser(installable):
    # Cookies are sent by hand, so each test says which browser it is.
    return installable.test_client(use_cookies=False)


@pytest.fixture
def slack(installable, fake_slack):
    return SlackRequests(installable.test_client(), SIGNING_SECRET, fake_slack)


def start_install(browser) -> str:
    response = browser.get("/slack/install")
    assert response.status_code == 200
    cookie = response.headers["Set-Cookie"]
    state = re.match(rf"{COOKIE}=([^;]+);", cookie).group(1)
    assert "HttpOnly" in cookie and "Secure" in cookie
    return state


def finish_install(browser, state: str, code: str = "code-1", cookie: str | None = None, **query):
    params = {"code": code, "state": state, **query}
    return browser.get("/slack/oauth_redirect", query_string=params,
                       headers={"Cookie": f"{COOKIE}={cookie or state}"})


def install(browser, fake_slack, answer: dict = ANSWER, code: str = "code-1"):
    fake_slack.add_oauth_code(code, answer)
    fake_slack.add_bot(answer["access_token"], team_id=answer["team"]["id"], team=answer["team"]["name"],
                       bot_user_id=answer["bot_user_id"], enterprise_id=ENTERPRISE)
    # The vector carries an installer's user token too; Bolt checks it when the installer acts.
    fake_slack.add_bot(answer["authed_user"]["access_token"], team_id=answer["team"]["id"],
                       bot_user_id=answer["authed_user"]["id"], enterprise_id=ENTERPRISE)
    return finish_install(browser, start_install(browser), code=code)


def command_from(slack, team_id: str, text: str = "help", enterprise_id: str = ENTERPRISE, user_id=INSTALLER):
    return slack.command(text, team_id=team_id, enterprise_id=enterprise_id, user_id=user_id)


def probe_from(slack, team_id: str = TEAM, user_id: str = INSTALLER):
    """A signed button click no listener handles: it goes through authorization and nothing else
    (so no listener thread outlives the test). Authorized → 404 "unhandled"; refused → 200 and
    Bolt's polite message."""
    return slack.block_action("herald_install_probe", team_id=team_id, user_id=user_id,
                              enterprise={"id": ENTERPRISE, "name": "slack-sports"})


def event_from(slack, event: dict, team_id: str = TEAM, enterprise_id: str | None = ENTERPRISE):
    envelope = json.loads(load_vector("app_home_opened_home_tab.event.json"))
    envelope.update(team_id=team_id, enterprise_id=enterprise_id, event=event, event_id=f"Ev{event['type']}")
    envelope["authorizations"] = [{"enterprise_id": enterprise_id, "team_id": team_id, "user_id": "UB0T",
                                   "is_bot": True, "is_enterprise_install": False}]
    return slack.post(json.dumps(envelope), "application/json")


# -- the round trip ---------------------------------------------------------------------------

def test_the_install_page_sends_people_to_slack_with_a_fresh_state(browser):
    response = browser.get("/slack/install")
    state = re.match(rf"{COOKIE}=([^;]+);", response.headers["Set-Cookie"]).group(1)
    link = html.unescape(re.search(r'href="(https://slack\.com/oauth/v2/authorize[^"]+)"',
                                   response.get_data(as_text=True)).group(1))
    query = parse_qs(urlparse(link).query)
    assert query["state"] == [state]
    assert query["client_id"] == ["111.222"]
    assert query["redirect_uri"] == ["http://herald.test/slack/oauth_redirect"]
    assert set(query["scope"][0].split(",")) >= {"commands", "chat:write", "users:read"}
    assert "client-secret-shh" not in response.get_data(as_text=True)
    assert SlackOAuthState.select().where(SlackOAuthState.state == state).exists()


def test_installing_stores_encrypted_tokens_and_makes_the_installer_owner(browser, fake_slack):
    response = install(browser, fake_slack)

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Herald is installed" in page and ANSWER["team"]["name"] in page
    assert "xox" not in page and "Traceback" not in page
    assert f"{COOKIE}=deleted" in response.headers["Set-Cookie"]

    # Slack was asked with the code and our credentials, then auth.test learned the bot id.
    call = fake_slack.calls_for("oauth.v2.access")[0]
    exchange = fake_slack.params(call)
    assert exchange["code"] == "code-1"
    assert call.header("Authorization") == "Basic " + base64.b64encode(b"111.222:client-secret-shh").decode()
    assert exchange["redirect_uri"] == "http://herald.test/slack/oauth_redirect"
    assert [c.header("Authorization") for c in fake_slack.calls_for("auth.test")] == [f"Bearer {BOT_TOKEN}"]

    row = SlackInstallation.get()
    assert (row.team_id, row.enterprise_id, row.user_id, row.bot_id) == (TEAM, ENTERPRISE, INSTALLER, "B111")
    assert row.bot_token.reveal() == BOT_TOKEN and row.user_token.reveal() == "xoxp-1234"
    assert SlackBot.get().bot_token.reveal() == BOT_TOKEN
    raw = database.execute_sql("SELECT i.bot_token, i.user_token, b.bot_token FROM slack_installations i, "
                               "slack_bots b").fetchone()
    assert all(value.startswith("gAAAAA") and "xox" not in value for value in raw)

    workspace = Workspace.get(Workspace.team_id == TEAM)
    assert workspace.name == ANSWER["team"]["name"] and workspace.enterprise_id == ENTERPRISE
    installer = User.get((User.workspace == workspace) & (User.slack_user_id == INSTALLER))
    assert workspaces.role_of(installer) == "owner"
    assert row.workspace_id == workspace.id
    assert AuditLog.get(AuditLog.action == "slack.installed").actor_id == installer.id


def test_the_installer_profile_is_read_once_installed(browser, fake_slack):
    fake_slack.add_user(INSTALLER, name="Ada Lovelace", tz="Europe/London", team_id=TEAM)
    install(browser, fake_slack)
    installer = User.get(User.slack_user_id == INSTALLER)
    assert (installer.real_name, installer.tz) == ("Ada Lovelace", "Europe/London")
    lookup = fake_slack.calls_for("users.info")[0]
    assert lookup.header("Authorization") == f"Bearer {BOT_TOKEN}"


def test_a_replayed_state_is_refused_with_a_friendly_page(browser, fake_slack):
    fake_slack.add_oauth_code("code-1", ANSWER)
    fake_slack.add_bot(BOT_TOKEN, team_id=TEAM)
    state = start_install(browser)
    assert finish_install(browser, state).status_code == 200

    fake_slack.add_oauth_code("code-2", ANSWER)
    replay = finish_install(browser, state, code="code-2")
    assert replay.status_code == 401
    page = replay.get_data(as_text=True)
    assert "This link has expired" in page and 'href="/slack/install"' in page
    assert "Traceback" not in page and "invalid_state" not in page
    assert len(fake_slack.calls_for("oauth.v2.access")) == 1        # the code was never exchanged
    assert SlackInstallation.select().count() == 1


def test_an_expired_state_is_refused(browser, fake_slack):
    fake_slack.add_oauth_code("code-1", ANSWER)
    state = start_install(browser)
    SlackOAuthState.update(expire_at=utcnow() - timedelta(seconds=1)).execute()
    response = finish_install(browser, state)
    assert response.status_code == 401
    assert "This link has expired" in response.get_data(as_text=True)
    assert fake_slack.calls_for("oauth.v2.access") == []
    assert SlackInstallation.select().count() == 0 and Workspace.select().count() == 0


def test_a_state_from_another_browser_is_refused(browser, fake_slack):
    fake_slack.add_oauth_code("code-1", ANSWER)
    fake_slack.add_bot(BOT_TOKEN, team_id=TEAM)
    state = start_install(browser)
    other = start_install(browser)
    response = finish_install(browser, state, cookie=other)
    assert response.status_code == 400
    assert "different browser" in response.get_data(as_text=True)
    assert fake_slack.calls_for("oauth.v2.access") == []
    # The refused attempt did not use the state up: the right browser can still finish.
    assert finish_install(browser, state).status_code == 200


def test_cancelling_on_slack_says_nothing_was_installed(browser):
    state = start_install(browser)
    response = browser.get("/slack/oauth_redirect", query_string={"error": "access_denied", "state": state},
                           headers={"Cookie": f"{COOKIE}={state}"})
    assert response.status_code == 200
    assert "Installation cancelled" in response.get_data(as_text=True)
    assert SlackInstallation.select().count() == 0


def test_a_code_slack_does_not_know_is_refused(browser, fake_slack):
    response = finish_install(browser, start_install(browser), code="made-up")
    assert response.status_code == 401
    assert "didn't confirm" in html.unescape(response.get_data(as_text=True))
    assert SlackInstallation.select().count() == 0


# -- after the install: authorization per request ----------------------------------------------

def test_requests_from_the_installed_team_use_its_stored_bot_token(browser, slack, fake_slack):
    install(browser, fake_slack)
    before = len(fake_slack.calls_for("auth.test"))
    response = probe_from(slack)
    assert response.status_code == 404          # authorized, and no listener for the probe
    checks = [c.header("Authorization") for c in fake_slack.calls_for("auth.test")[before:]]
    assert checks[0] == f"Bearer {BOT_TOKEN}"
    assert set(checks) <= {f"Bearer {BOT_TOKEN}", "Bearer xoxp-1234"}   # the installer's own token
    assert not any(POLITE in (r.get("text") or "") for r in fake_slack.responses)


def test_an_unknown_team_gets_the_polite_answer(browser, slack, fake_slack):
    install(browser, fake_slack)
    calls_before = len(fake_slack.calls_for("auth.test"))
    response = command_from(slack, "T404", enterprise_id=None)
    assert response.status_code == 200
    assert any(POLITE in (r.get("text") or "") for r in fake_slack.responses)
    assert len(fake_slack.calls_for("auth.test")) == calls_before      # no token to try


def test_an_expiring_bot_token_is_rotated_through_slack_api_url(browser, slack, fake_slack):
    rotating = dict(ANSWER, access_token="xoxe.xoxb-1-first", refresh_token="xoxe-1-first", expires_in=60)
    install(browser, fake_slack, rotating)
    installed_at = SlackInstallation.get().installed_at
    fake_slack.add_bot("xoxe.xoxb-1-second", team_id=TEAM)
    fake_slack.fail("/api/oauth.v2.access", status=200, json={
        "ok": True, "token_type": "bot", "access_token": "xoxe.xoxb-1-second",
        "refresh_token": "xoxe-1-second", "expires_in": 43200})

    response = probe_from(slack, user_id="U777")     # someone else: only the bot token is checked

    assert response.status_code == 404
    refresh = fake_slack.params(fake_slack.calls_for("oauth.v2.access")[-1])
    assert (refresh["grant_type"], refresh["refresh_token"]) == ("refresh_token", "xoxe-1-first")
    assert fake_slack.calls_for("auth.test")[-1].header("Authorization") == "Bearer xoxe.xoxb-1-second"
    row = SlackInstallation.get()                      # re-saved in place, still encrypted
    assert SlackInstallation.select().count() == 1 and row.installed_at == installed_at
    assert row.bot_token.reveal() == "xoxe.xoxb-1-second"
    assert row.bot_refresh_token.reveal() == "xoxe-1-second"
    assert SlackBot.get(SlackBot.bot_token.is_null(False)).bot_token.reveal() == "xoxe.xoxb-1-second"


# -- uninstall and revocation ------------------------------------------------------------------

def test_uninstalling_forgets_the_tokens_and_soft_deletes_the_workspace(browser, slack, fake_slack):
    install(browser, fake_slack)
    response = event_from(slack, {"type": "app_uninstalled", "event_ts": "1.1"})
    assert response.status_code == 200

    # Events are acknowledged first and handled on Bolt's listener thread.
    wait_for(lambda: AuditLog.select().where(AuditLog.action == "slack.uninstalled").exists(),
             what="the uninstall to be recorded")
    assert SlackInstallation.select().count() == 0 and SlackBot.select().count() == 0
    workspace = Workspace.with_deleted().where(Workspace.team_id == TEAM).get()
    assert workspace.deleted_at is not None
    assert AuditLog.get(AuditLog.action == "slack.uninstalled").workspace_id == workspace.id

    assert probe_from(slack).status_code == 200
    assert any(POLITE in (r.get("text") or "") for r in fake_slack.responses)

    # Installing again brings the workspace (and its history) back.
    install(browser, fake_slack, code="code-again")
    assert Workspace.get(Workspace.team_id == TEAM).id == workspace.id


def test_a_revoked_bot_token_is_forgotten(browser, slack, fake_slack):
    install(browser, fake_slack)
    response = event_from(slack, {"type": "tokens_revoked", "event_ts": "1.2",
                                  "tokens": {"oauth": [], "bot": [ANSWER["bot_user_id"]]}})
    assert response.status_code == 200
    wait_for(lambda: AuditLog.select().where(AuditLog.action == "slack.tokens_revoked").exists(),
             what="the revocation to be recorded")
    assert SlackInstallation.select().count() == 0 and SlackBot.select().count() == 0
    assert Workspace.get(Workspace.team_id == TEAM).deleted_at is None     # still installed, just no token
    entry = AuditLog.get(AuditLog.action == "slack.tokens_revoked")
    assert entry.changes["bot"] is True and "xox" not in json.dumps(entry.changes)


def test_a_revoked_user_token_leaves_the_bot_working(browser, slack, fake_slack):
    install(browser, fake_slack)
    event_from(slack, {"type": "tokens_revoked", "event_ts": "1.3", "tokens": {"oauth": [INSTALLER], "bot": []}})
    wait_for(lambda: AuditLog.select().where(AuditLog.action == "slack.tokens_revoked").exists(),
             what="the revocation to be recorded")
    assert SlackInstallation.select().count() == 0
    before = len(fake_slack.calls_for("auth.test"))
    assert probe_from(slack).status_code == 404
    assert fake_slack.calls_for("auth.test")[before:][0].header("Authorization") == f"Bearer {BOT_TOKEN}"
