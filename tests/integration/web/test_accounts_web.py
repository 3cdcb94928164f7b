"""/accounts in the admin site, with a signed-in test client and the networks' fakes: pages,
connect/reconnect/disconnect through the real forms (CSRF included), callback error pages,
workspace scoping, escaping, and no token on any page."""
from __future__ import annotations

import html
import re
from urllib.parse import urlencode

import pytest

from core.settings import Settings
from core.workspaces import ensure_workspace
from db.models import OAuthToken, SocialAccount
from tests.conftest import SIGNING_SECRET, TEST_TOKEN_KEYS
from tests.integration.web.conftest import Browser, csrf_from
from tests.integration.web.test_accounts_core import authorize

_META = re.compile(r'<meta http-equiv="refresh" content="0;url=([^"]+)">')


@pytest.fixture
def fakes():
    from tests.fakes.platforms.bluesky import FakeBluesky
    from tests.fakes.platforms.linkedin import FakeLinkedIn
    from tests.fakes.platforms.mastodon import FakeMastodon
    with FakeMastodon() as mastodon, FakeLinkedIn() as linkedin, FakeBluesky() as bluesky:
        mastodon.add_account("brand", display_name="<script>alert('m')</script>")
        bluesky.add_account("brand.test", "app-pass-1234", display_name="<b>Blue</b>")
        yield {"mastodon": mastodon, "linkedin": linkedin, "bluesky": bluesky}


@pytest.fixture
def site(db, backend, fake_slack, tmp_path, fakes):
    """The herald app, with LinkedIn and Bluesky pointed at their fakes."""
    from web import create_app
    li = fakes["linkedin"]
    settings = Settings.from_env({
        "DATABASE_URL": backend.url, "TOKEN_KEYS": ",".join(TEST_TOKEN_KEYS), "SECRET_KEY": "test",
        "HERALD_INSTANCE_PATH": str(tmp_path), "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": "xoxb-herald-test", "SLACK_API_URL": fake_slack.api_url,
        "PUBLIC_URL": "http://herald.test", "QUEUE_URL": "memory://",
        "LINKEDIN_CLIENT_ID": li.client_id, "LINKEDIN_CLIENT_SECRET": li.client_secret,
        "LINKEDIN_API_URL": li.url, "LINKEDIN_AUTH_URL": li.url + "/oauth/v2",
        "BLUESKY_API_URL": fakes["bluesky"].url,
    })
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def ws(db):
    return ensure_workspace("T111", "Acme")


@pytest.fixture
def owner(ws, make):
    return make.user(ws, role="owner")


def connect_via_site(browser: Browser, platform: str, fakes, data=None, *, decision="approve"):
    """Click Connect on /accounts, follow the hand-off page to the network, and come back."""
    page = browser.get("/accounts").get_data(as_text=True)
    form = {"csrf_token": csrf_from(page), **(data or {})}
    handoff = browser.post(f"/accounts/connect/{platform}", form)
    assert handoff.status_code == 200, handoff.get_data(as_text=True)
    url = html.unescape(_META.search(handoff.get_data(as_text=True)).group(1))
    back = authorize(url, fakes[platform], platform, decision=decision)
    return browser.get(f"/accounts/callback/{platform}?{urlencode(back)}")


def all_secrets(db) -> list[str]:
    return [t.access_token.reveal() for t in OAuthToken.select()] + \
        [t.refresh_token.reveal() for t in OAuthToken.select() if t.refresh_token]


def assert_no_secret_on_any_page(browser, db):
    secrets = all_secrets(db)
    assert secrets
    for page in browser.pages:
        for secret in secrets:
            assert secret not in page
        assert "gAAAAA" not in page and "Traceback" not in page


# -- pages and the happy paths ---------------------------------------------------------------

def test_connect_mastodon_then_see_it_on_the_page(site, browser, owner, fakes, db):
    browser.sign_in(owner)
    page = browser.get("/accounts")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "No social accounts are connected yet." in text
    assert 'id="connect-linkedin"' in text and 'id="connect-mastodon"' in text
    assert "X_CLIENT_ID" in text                      # X isn't configured here: says how
    form = browser.get("/accounts/connect/mastodon").get_data(as_text=True)
    assert 'name="instance_url"' in form

    done = connect_via_site(browser, "mastodon", fakes, {"instance_url": fakes["mastodon"].url})
    assert done.status_code == 303 and done.headers["Location"].endswith("/accounts")
    listing = browser.get("/accounts").get_data(as_text=True)
    [account] = SocialAccount.select()
    assert f'id="account-{account.id}"' in listing
    assert account.handle in listing and "Doesn&#39;t expire" in listing
    assert "Connected Mastodon account" in listing
    # The display name is escaped, never markup.
    assert "<script>alert" not in listing
    assert "&lt;script&gt;alert(&#39;m&#39;)&lt;/script&gt;" in listing
    assert_no_secret_on_any_page(browser, db)


def test_connect_linkedin_and_reconnect_keeps_the_row(site, browser, owner, fakes, db):
    browser.sign_in(owner)
    assert connect_via_site(browser, "linkedin", fakes).status_code == 303
    [account] = SocialAccount.select()
    assert account.platform_user_id == "urn:li:person:aBc123"
    SocialAccount.update(status="needs_reauth", status_detail="LinkedIn refused the token").where(
        SocialAccount.id == account.id).execute()
    listing = browser.get("/accounts").get_data(as_text=True)
    assert "Needs reconnecting: LinkedIn refused the token" in listing

    handoff = browser.post(f"/accounts/{account.id}/reconnect",
                           {"csrf_token": csrf_from(listing)})
    url = html.unescape(_META.search(handoff.get_data(as_text=True)).group(1))
    back = authorize(url, fakes["linkedin"], "linkedin")
    assert browser.get(f"/accounts/callback/linkedin?{urlencode(back)}").status_code == 303
    assert SocialAccount.select().count() == 1
    assert SocialAccount.get_by_id(account.id).status == "active"
    assert_no_secret_on_any_page(browser, db)


def test_bluesky_form_never_echoes_or_keeps_the_password(site, browser, owner, fakes, db):
    browser.sign_in(owner)
    form = browser.get("/accounts/connect/bluesky").get_data(as_text=True)
    wrong = browser.post("/accounts/connect/bluesky", {"csrf_token": csrf_from(form),
                                                       "handle": "<i>brand.test</i>",
                                                       "app_password": "not-the-password-99"})
    text = wrong.get_data(as_text=True)
    assert wrong.status_code == 400 and "not-the-password-99" not in text
    assert "&lt;i&gt;brand.test&lt;/i&gt;" in text and "<i>brand.test</i>" not in text
    assert SocialAccount.select().count() == 0

    done = browser.post("/accounts/connect/bluesky", {"csrf_token": csrf_from(form),
                                                      "handle": "brand.test",
                                                      "app_password": "app-pass-1234"})
    assert done.status_code == 303
    listing = browser.get("/accounts").get_data(as_text=True)
    assert "brand.test" in listing and "&lt;b&gt;Blue&lt;/b&gt;" in listing
    for page in browser.pages:
        assert "app-pass-1234" not in page
    dump = repr(db.execute_sql("SELECT * FROM audit_log").fetchall()) + \
        repr(db.execute_sql("SELECT * FROM social_accounts").fetchall())
    assert "app-pass-1234" not in dump
    assert_no_secret_on_any_page(browser, db)


def test_disconnect_asks_first_then_revokes(site, browser, owner, fakes, db, make, ws):
    browser.sign_in(owner)
    connect_via_site(browser, "mastodon", fakes, {"instance_url": fakes["mastodon"].url})
    [account] = SocialAccount.select()
    confirm = browser.get(f"/accounts/{account.id}/disconnect")
    assert confirm.status_code == 200 and 'id="confirm-disconnect"' in confirm.get_data(as_text=True)
    assert SocialAccount.get_by_id(account.id).status == "active"       # a GET changes nothing
    token = csrf_from(confirm.get_data(as_text=True))
    done = browser.post(f"/accounts/{account.id}/disconnect", {"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 303
    assert SocialAccount.get_by_id(account.id).status == "disconnected"
    assert OAuthToken.select().count() == 0
    assert len(fakes["mastodon"].calls_to("/oauth/revoke", "POST")) == 1
    listing = browser.get("/accounts").get_data(as_text=True)
    assert "Disconnected" in listing and f'id="disconnect-{account.id}"' not in listing


# -- CSRF -------------------------------------------------------------------------------------

def test_connect_and_disconnect_need_the_csrf_token(site, browser, owner, fakes, db, make, ws):
    browser.sign_in(owner)
    response = browser.client.post("/accounts/connect/linkedin", data={})
    assert response.status_code == 400 and b"expired or didn" in response.data
    response = browser.client.post("/accounts/connect/mastodon",
                                   data={"instance_url": fakes["mastodon"].url,
                                         "csrf_token": "forged"})
    assert response.status_code == 400
    from db.models.connect import ConnectState
    assert ConnectState.select().count() == 0 and not fakes["mastodon"].calls_to("/api/v1/apps")
    account = make.account(ws, platform="x", handle="brand")
    make.token(account)
    response = browser.client.post(f"/accounts/{account.id}/disconnect", data={"confirm": "yes"})
    assert response.status_code == 400
    response = browser.client.post(f"/accounts/{account.id}/reconnect", data={})
    assert response.status_code == 400
    assert SocialAccount.get_by_id(account.id).status == "active" and OAuthToken.select().count() == 1


# -- callback errors ---------------------------------------------------------------------------

def test_cancelling_on_the_network_shows_a_clear_page(site, browser, owner, fakes, db):
    browser.sign_in(owner)
    page = connect_via_site(browser, "mastodon", fakes, {"instance_url": fakes["mastodon"].url},
                            decision="deny")
    text = page.get_data(as_text=True)
    assert page.status_code == 400 and 'data-kind="cancelled"' in text
    assert "You cancelled on Mastodon" in text and "Traceback" not in text
    assert SocialAccount.select().count() == 0


def _handoff(browser, fakes):
    page = browser.get("/accounts").get_data(as_text=True)
    handoff = browser.post("/accounts/connect/linkedin", {"csrf_token": csrf_from(page)})
    url = html.unescape(_META.search(handoff.get_data(as_text=True)).group(1))
    return authorize(url, fakes["linkedin"], "linkedin")


def test_callback_error_pages(site, browser, owner, fakes, db, make, ws):
    browser.sign_in(owner)
    back = _handoff(browser, fakes)

    def kind(path):
        response = browser.get(path)
        text = response.get_data(as_text=True)
        assert response.status_code == 400 and "Traceback" not in text, text
        return re.search(r'data-kind="([a-z]+)"', text).group(1), text

    assert kind(f"/accounts/callback/linkedin?{urlencode({**back, 'state': 'forged'})}")[0] == "state"
    assert kind("/accounts/callback/linkedin?code=abc")[0] == "state"
    found, text = kind("/accounts/callback/linkedin?error=server_error&error_description="
                       "%3Cscript%3Ex%3C%2Fscript%3E&state=" + back["state"])
    assert found == "platform" and "server_error" in text and "<script>x" not in text
    # That state is spent now; a second use (a replay) is refused as such.
    assert kind(f"/accounts/callback/linkedin?{urlencode(back)}")[0] == "replayed"
    assert SocialAccount.select().count() == 0

    # A callback that lands in another browser session (even the same person's) is refused.
    back = _handoff(browser, fakes)
    other = Browser(site)
    other.sign_in(owner)
    response = other.get(f"/accounts/callback/linkedin?{urlencode(back)}")
    assert response.status_code == 400 and 'data-kind="state"' in response.get_data(as_text=True)
    assert browser.get(f"/accounts/callback/linkedin?{urlencode(back)}").status_code == 303


def test_a_callback_without_signing_in_asks_to_sign_in(site, browser, fakes, db):
    response = browser.get("/accounts/callback/linkedin?state=s&code=c")
    assert response.status_code == 401
    assert SocialAccount.select().count() == 0


# -- roles and workspaces ----------------------------------------------------------------------

def test_editors_see_the_list_but_cannot_connect(site, browser, fakes, db, make, ws):
    editor = make.user(ws, role="editor")
    account = make.account(ws, platform="mastodon", handle="brand@social.example")
    make.token(account, access="a-secret-access-token")
    browser.sign_in(editor)
    listing = browser.get("/accounts").get_data(as_text=True)
    assert "brand@social.example" in listing and "a-secret-access-token" not in listing
    assert 'id="connect-' not in listing and "Reconnect" not in listing
    assert browser.get("/accounts/connect/mastodon").status_code == 403
    token = csrf_from(listing)
    assert browser.post("/accounts/connect/linkedin", {"csrf_token": token}).status_code == 403
    assert browser.post(f"/accounts/{account.id}/disconnect",
                        {"csrf_token": token, "confirm": "yes"}).status_code == 403
    assert SocialAccount.get_by_id(account.id).status == "active"


def test_another_workspace_gets_404_for_our_accounts(site, browser, fakes, db, make, ws):
    account = make.account(ws, platform="x", handle="ours")
    make.token(account)
    stranger = make.user(make.workspace(), role="owner")
    browser.sign_in(stranger)
    listing = browser.get("/accounts").get_data(as_text=True)
    assert "ours" not in listing
    token = csrf_from(listing)
    assert browser.get(f"/accounts/{account.id}/disconnect").status_code == 404
    assert browser.post(f"/accounts/{account.id}/disconnect",
                        {"csrf_token": token, "confirm": "yes"}).status_code == 404
    assert browser.post(f"/accounts/{account.id}/reconnect", {"csrf_token": token}).status_code == 404
    assert browser.get(f"/accounts/connect/bluesky?account={account.id}").status_code == 404
    assert browser.get("/accounts/not-a-uuid/disconnect").status_code == 404
    assert SocialAccount.get_by_id(account.id).status == "active"


def test_instance_address_is_validated(site, browser, owner, fakes, db):
    browser.sign_in(owner)
    page = browser.get("/accounts/connect/mastodon").get_data(as_text=True)
    for bad in ("https://user:pw@mastodon.example", "ftp://mastodon.example",
                "http://10.1.2.3", "https://mastodon.example/some/path"):
        response = browser.post("/accounts/connect/mastodon",
                                {"csrf_token": csrf_from(page), "instance_url": bad})
        text = response.get_data(as_text=True)
        assert response.status_code == 400 and 'id="instance_url-error"' in text, bad
    assert not fakes["mastodon"].calls


def test_pages_have_no_inline_script_or_style(site, browser, owner, fakes, db, make, ws):
    make.account(ws, platform="mastodon", handle="brand")
    browser.sign_in(owner)
    for path in ("/accounts", "/accounts/connect/mastodon", "/accounts/connect/bluesky"):
        text = browser.get(path).get_data(as_text=True)
        assert "<script" not in text and " style=" not in text and "<style" not in text
