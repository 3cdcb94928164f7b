"""One-time sign-in links: issued bound to a person, used once, refused when used, expired or
forged — with a page that says how to get a new one."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from core import signin
from db.fields import utcnow
from db.models import AuditLog, SigninLink


def _path(url):
    return urlsplit(url).path


def test_a_link_is_a_public_url_with_only_its_hash_stored(site, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    url = signin.issue_link(owner, site.config["HERALD"])
    assert url.startswith("http://herald.test/signin/")
    token = url.rsplit("/", 1)[1]
    link = SigninLink.get()
    assert link.user_id == owner.id and link.workspace_id == home_workspace.id
    assert link.token_hash == signin.token_hash(token) and token not in link.token_hash
    assert link.used_at is None
    lifetime = link.expires_at - link.created_at
    assert timedelta(minutes=9) < lifetime <= timedelta(minutes=10)


def test_opening_a_link_asks_to_confirm_and_does_not_use_it(site, browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    url = signin.issue_link(owner, site.config["HERALD"])
    for _ in range(3):      # Slack's unfurler and link scanners fetch it first
        page = browser.get(_path(url))
        assert page.status_code == 200
        assert b"Sign in to Herald" in page.data and b'type="submit"' in page.data
    assert SigninLink.get().used_at is None
    assert browser.get("/members").status_code == 401          # not signed in by a GET


def test_confirming_signs_in_with_a_fresh_session_and_is_audited(site, browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner", real_name="Olive Owner")
    with browser.client.session_transaction() as s:
        s["planted"] = "by an attacker"
    response = browser.sign_in(owner)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    with browser.client.session_transaction() as s:
        assert "planted" not in s
        assert s["user_id"] == str(owner.id) and s["workspace_id"] == str(home_workspace.id)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    members = browser.get("/members")
    assert members.status_code == 200 and b"Olive Owner" in members.data
    entry = AuditLog.get(AuditLog.action == "member.signed_in")
    assert entry.actor_id == owner.id and entry.ip == "127.0.0.1"


def test_a_used_link_is_refused_with_a_way_to_get_a_new_one(site, browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    url = signin.issue_link(owner, site.config["HERALD"])
    page = browser.get(_path(url))
    from tests.integration.web.conftest import csrf_from
    token_field = csrf_from(page.get_data(as_text=True))
    assert browser.client.post(_path(url), data={"csrf_token": token_field}).status_code == 302
    other = browser.__class__(site)
    again = other.get(_path(url))
    assert again.status_code == 410
    assert b"already been used" in again.data and b"/social admin" in again.data
    # And a POST to it (a second browser with a valid form token) is refused the same way.
    fresh = signin.issue_link(owner, site.config["HERALD"])
    form_token = csrf_from(other.get(_path(fresh)).get_data(as_text=True))
    second = other.client.post(_path(url), data={"csrf_token": form_token})
    assert second.status_code == 410 and b"already been used" in second.data
    assert other.get("/members").status_code == 401
    with pytest.raises(signin.LinkUsed):
        signin.consume(url.rsplit("/", 1)[1])


def test_an_expired_link_is_refused(site, browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    url = signin.issue_link(owner, site.config["HERALD"])
    SigninLink.update(expires_at=utcnow() - timedelta(seconds=1)).execute()
    page = browser.get(_path(url))
    assert page.status_code == 410
    assert b"expired" in page.data and b"/social admin" in page.data
    with pytest.raises(signin.LinkExpired):
        signin.consume(url.rsplit("/", 1)[1], site.config["HERALD"])
    assert SigninLink.get().used_at is None


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),            # altered signature
    lambda t: "A" * 43 + "." + t.split(".")[1],                             # made-up nonce
    lambda t: t.split(".")[0],                                              # signature missing
    lambda t: "not a token",
    lambda t: "x" * 500,
])
def test_a_forged_link_is_refused(site, browser, make, home_workspace, mangle):
    owner = make.user(home_workspace, role="owner")
    url = signin.issue_link(owner, site.config["HERALD"])
    forged = mangle(url.rsplit("/", 1)[1])
    page = browser.get(f"/signin/{forged}")
    assert page.status_code in (400, 404)
    if page.status_code == 400:
        assert b"isn't valid" in page.data and b"/social admin" in page.data
    with pytest.raises(signin.LinkInvalid):
        signin.consume(forged, site.config["HERALD"])
    assert SigninLink.get().used_at is None


def test_a_token_signed_for_someone_else_is_refused(site, make, home_workspace):
    """The stored hash is found, but the signature binds the token to another person."""
    alice = make.user(home_workspace, role="owner")
    bob = make.user(home_workspace, role="editor")
    url = signin.issue_link(alice, site.config["HERALD"])
    token = url.rsplit("/", 1)[1]
    SigninLink.update(user=bob).execute()            # a tampered row pointing at someone else
    with pytest.raises(signin.LinkInvalid):
        signin.consume(token, site.config["HERALD"])


def test_consume_is_single_use_even_when_racing(site, make, home_workspace, backend):
    owner = make.user(home_workspace, role="owner")
    token = signin.issue_link(owner, site.config["HERALD"]).rsplit("/", 1)[1]
    assert signin.consume(token, site.config["HERALD"]).id == owner.id
    # A second consumer that read the row before the first one's UPDATE still can't win:
    # the UPDATE is conditional on used_at IS NULL.
    claimed = (SigninLink.update(used_at=utcnow())
               .where(SigninLink.used_at.is_null()).execute())
    assert claimed == 0


def test_sign_out_needs_a_post_and_ends_the_session(site, browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    browser.sign_in(owner)
    assert browser.get("/signout").status_code == 405
    assert browser.get("/members").status_code == 200
    response = browser.post("/signout", csrf_from_page="/members")
    assert response.status_code == 302
    assert browser.get("/members").status_code == 401


def test_a_removed_workspace_ends_the_session(site, browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    browser.sign_in(owner)
    home_workspace.soft_delete()
    assert browser.get("/members").status_code == 401
