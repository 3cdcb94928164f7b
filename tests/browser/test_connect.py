"""Connect a Mastodon account in headless Chromium: sign in with a one-time link, click Connect
Mastodon, give the fake instance's address, press Authorize on the instance's own page, and
land back on /accounts with the account listed. Uses the shared browser fixtures
(tests/browser/conftest.py: live_app, live_server, driver, screenshot); screenshots go to
test-artifacts/screenshots/connect-*.png."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from db.models import OAuthToken, SocialAccount


@pytest.fixture
def mastodon():
    from tests.fakes.platforms.mastodon import FakeMastodon
    with FakeMastodon() as fake:
        fake.add_account("brandsocial", display_name="Brand <b>Social</b>")
        yield fake


def test_connect_mastodon_in_a_browser(live_app, live_server, driver, screenshot, mastodon, make):
    from core import signin
    from core.workspaces import ensure_workspace
    url, settings, chrome = live_server, live_app.config["HERALD"], driver
    owner = make.user(ensure_workspace("T111", "Acme"), role="owner", real_name="Olive Owner")
    wait = WebDriverWait(chrome, 10)

    chrome.get(signin.issue_link(owner, settings))
    wait.until(EC.element_to_be_clickable((By.ID, "signin"))).click()
    wait.until(EC.url_to_be(f"{url}/"))

    chrome.get(f"{url}/accounts")
    screenshot("connect-1-accounts-empty")
    chrome.find_element(By.ID, "connect-mastodon").click()
    field = wait.until(EC.visibility_of_element_located((By.ID, "instance_url")))
    field.send_keys(mastodon.url)
    screenshot("connect-2-instance")
    chrome.find_element(By.ID, "submit-connect").click()

    # Herald's hand-off page moves on to the instance's own authorize page.
    authorize = wait.until(EC.element_to_be_clickable((By.ID, "authorize")))
    assert chrome.current_url.startswith(f"{mastodon.url}/oauth/authorize?")
    assert "@brandsocial" in chrome.page_source
    screenshot("connect-3-authorize")
    authorize.click()

    wait.until(EC.url_to_be(f"{url}/accounts"))
    [account] = SocialAccount.select()
    row = wait.until(EC.visibility_of_element_located((By.ID, f"account-{account.id}")))
    assert "brandsocial@" in row.text and "active" in row.text.lower()
    assert "Brand <b>Social</b>" in row.text            # shown as text, not markup
    assert "Connected Mastodon account" in chrome.page_source
    screenshot("connect-4-connected")
    token = OAuthToken.get(OAuthToken.account == account.id).access_token.reveal()
    assert token not in chrome.page_source
    assert len(mastodon.calls_to("/oauth/token", "POST")) == 1

    # Disconnect asks first, then revokes at the instance and keeps the row.
    chrome.find_element(By.ID, f"disconnect-{account.id}").click()
    wait.until(EC.element_to_be_clickable((By.ID, "confirm-disconnect"))).click()
    wait.until(EC.url_to_be(f"{url}/accounts"))
    row = chrome.find_element(By.ID, f"account-{account.id}")
    assert "disconnected" in row.text.lower()
    assert len(mastodon.calls_to("/oauth/revoke", "POST")) == 1
    screenshot("connect-5-disconnected")

    # Pressing Deny on the instance comes back to a page that says so.
    chrome.find_element(By.ID, "connect-mastodon").click()
    wait.until(EC.visibility_of_element_located((By.ID, "instance_url"))).send_keys(mastodon.url)
    chrome.find_element(By.ID, "submit-connect").click()
    wait.until(EC.element_to_be_clickable((By.ID, "deny"))).click()
    message = wait.until(EC.visibility_of_element_located((By.ID, "connect-error")))
    assert "You cancelled on Mastodon" in message.text
    assert chrome.current_url.startswith(f"{url}/accounts/callback/mastodon?")
    screenshot("connect-6-cancelled")
