"""The site's defences: CSRF, open redirects, workspace scoping, roles, escaping, headers,
friendly errors, and no secret ever on a page or in a log line."""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest

from core import signin
from core.workspaces import ensure_workspace
from db.models import Membership, Project, SigninLink, SlackInstallation
from db.fields import utcnow
from tests.integration.web.conftest import Browser, csrf_from


def test_every_response_carries_the_security_headers(browser):
    for path in ("/", "/signin", "/members", "/nowhere", "/healthz"):
        headers = browser.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp and "script-src 'self'" in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in headers        # plain http here


def test_hsts_is_sent_over_https(browser):
    response = browser.client.get("/signin", base_url="https://herald.test")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_no_inline_script_or_style_in_any_page(site, browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    browser.sign_in(owner)
    for path in ("/", "/members", "/projects", "/projects/new", "/audit", "/setup", "/nowhere"):
        html = browser.get(path).get_data(as_text=True)
        assert "<script>" not in html and "<script " not in html.replace('<script src="/static/', "")
        assert " style=" not in html and "<style" not in html and "onclick" not in html


def test_a_post_without_a_csrf_token_is_refused(site, browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    editor = make.user(home_workspace, role="editor")
    browser.sign_in(owner)
    response = browser.client.post(f"/members/{editor.id}/role", data={"role": "owner"})
    assert response.status_code == 400
    assert b"expired or didn" in response.data and b"Traceback" not in response.data
    assert Membership.get(Membership.user == editor).role == "editor"
    wrong = browser.client.post(f"/members/{editor.id}/role",
                                data={"role": "owner", "csrf_token": "forged"})
    assert wrong.status_code == 400
    created = browser.client.post("/projects/new", data={"name": "Sneaky", "approval_policy": "none"})
    assert created.status_code == 400 and not Project.select().exists()


def test_over_https_a_form_needs_a_same_site_referer(site, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    editor = make.user(home_workspace, role="editor")
    browser = Browser(site)
    https = {"base_url": "https://herald.test"}
    url = signin.issue_link(owner, site.config["HERALD"])
    path = urlsplit(url).path
    token = csrf_from(browser.client.get(path, **https).get_data(as_text=True))
    signed = browser.client.post(path, data={"csrf_token": token}, headers={
        "Referer": "https://herald.test" + path}, **https)
    assert signed.status_code == 302
    form = csrf_from(browser.client.get("/members", **https).get_data(as_text=True))
    evil = browser.client.post(f"/members/{editor.id}/role", data={"role": "owner", "csrf_token": form},
                               headers={"Referer": "https://evil.example/"}, **https)
    assert evil.status_code == 400
    good = browser.client.post(f"/members/{editor.id}/role", data={"role": "approver", "csrf_token": form},
                               headers={"Referer": "https://herald.test/members"}, **https)
    assert good.status_code == 303
    assert Membership.get(Membership.user == editor).role == "approver"


def test_a_csrf_token_from_another_session_is_refused(site, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    editor = make.user(home_workspace, role="editor")
    attacker, victim = Browser(site), Browser(site)
    attacker.sign_in(make.user(home_workspace, role="owner"))
    victim.sign_in(owner)
    stolen = csrf_from(attacker.get("/members").get_data(as_text=True))
    response = victim.client.post(f"/members/{editor.id}/role",
                                  data={"role": "owner", "csrf_token": stolen})
    assert response.status_code == 400
    assert Membership.get(Membership.user == editor).role == "editor"


def test_slack_routes_are_exempt_from_csrf_and_keep_their_raw_body(slack):
    """Slack's form-encoded commands carry no CSRF token; Bolt verifies their signature over
    the raw body, which nothing may read before it (a consumed body would fail the check)."""
    answered = slack.command("help")
    assert answered.status_code == 200
    assert b"form has expired" not in answered.data
    forged = slack.post("command=%2Fsocial&text=help&team_id=T111&user_id=U111",
                        "application/x-www-form-urlencoded", signature="v0=" + "0" * 64)
    assert forged.status_code == 401


@pytest.mark.parametrize("evil", [
    "https://evil.example/", "//evil.example/x", "/\\evil.example", "\\\\evil.example",
    "http:/evil.example", "javascript:alert(1)", "/\r\nLocation: https://evil.example", "/\t/evil.example",
    " https://evil.example", "https:evil.example",
])
def test_open_redirects_after_sign_in_are_refused(site, browser, make, home_workspace, evil):
    owner = make.user(home_workspace, role="owner")
    response = browser.sign_in(owner, next=evil)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location == "/", location
    # Through the remembered-destination route too.
    other = Browser(site)
    other.get("/signin", query_string={"next": evil})
    assert urlsplit(other.sign_in(owner).headers["Location"]).netloc in ("",)
    assert other.client.get("/").status_code == 200


def test_a_same_site_next_is_honoured(site, browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    assert browser.sign_in(owner, next="/projects").headers["Location"] == "/projects"
    other = Browser(site)
    assert other.get("/audit?action=member.signed_in").status_code == 401    # remembered
    assert other.sign_in(owner).headers["Location"] == "/audit?action=member.signed_in"


def test_another_workspace_s_projects_and_members_are_not_found(site, browser, make, home_workspace):
    owner_a = make.user(home_workspace, role="owner", real_name="Alice A")
    project_a = make.project(home_workspace, name="Alpha Brand")
    workspace_b = make.workspace(name="Beta Corp")
    owner_b = make.user(workspace_b, role="owner")
    browser.sign_in(owner_b)
    assert browser.get(f"/projects/{project_a.id}").status_code == 404
    posted = browser.post(f"/projects/{project_a.id}", {"name": "Stolen", "approval_policy": "none"},
                          csrf_from_page="/projects")
    assert posted.status_code == 404
    assert Project.get_by_id(project_a.id).name == "Alpha Brand"
    changed = browser.post(f"/members/{owner_a.id}/role", {"role": "analyst"},
                           csrf_from_page="/members")
    assert changed.status_code == 404
    assert Membership.get(Membership.user == owner_a).role == "owner"
    listing = browser.get("/members").get_data(as_text=True) + browser.get("/projects").get_data(as_text=True)
    assert "Alice A" not in listing and "Alpha Brand" not in listing
    assert browser.get("/projects/not-a-uuid").status_code == 404


def test_a_session_forged_for_another_workspace_is_ignored(site, browser, make, home_workspace):
    owner_a = make.user(home_workspace, role="owner")
    workspace_b = make.workspace(name="Beta Corp")
    browser.sign_in(make.user(workspace_b, role="owner"))
    with browser.client.session_transaction() as s:      # user of A, workspace of B
        s["user_id"] = str(owner_a.id)
    assert browser.get("/members").status_code == 401


def test_an_analyst_cannot_change_roles(site, browser, make, home_workspace):
    make.user(home_workspace, role="owner")
    analyst = make.user(home_workspace, role="analyst")
    editor = make.user(home_workspace, role="editor")
    browser.sign_in(analyst)
    # Analysts read reports only: the admin pages are closed to them, and say who may.
    for path in ("/members", "/projects", "/accounts"):
        page = browser.get(path)
        assert page.status_code == 403 and b'name="role"' not in page.data, path
    response = browser.post(f"/members/{editor.id}/role", {"role": "owner"}, csrf_from_page="/")
    assert response.status_code == 403
    assert b"You can&#39;t do that" in response.data and b"Only owners can" in response.data
    assert Membership.get(Membership.user == editor).role == "editor"
    assert Membership.get(Membership.user == analyst).role == "analyst"
    for path in ("/audit", "/audit.csv", "/projects/new"):
        assert browser.get(path).status_code == 403
    html = browser.get("/").get_data(as_text=True)
    for hidden in ('href="/audit"', 'href="/members"', 'href="/projects"', 'href="/accounts"'):
        assert hidden not in html


def test_script_in_names_is_escaped(site, browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner", real_name="<script>alert('me')</script>")
    make.project(home_workspace, name="<script>alert('brand')</script>")
    make.account(home_workspace, handle="<img src=x onerror=alert(1)>")
    browser.sign_in(owner)
    for path in ("/", "/members", "/projects", "/projects/new", "/audit"):
        html = browser.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, path
    assert "&lt;script&gt;alert(&#39;brand&#39;)&lt;/script&gt;" in browser.get("/projects").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#39;me&#39;)" in browser.get("/members").get_data(as_text=True)


def test_errors_are_friendly_pages_without_a_trace(site, browser, make, home_workspace):
    @site.get("/_boom")
    def boom():
        raise RuntimeError("secret internals xoxb-should-not-show")

    page = browser.get("/no/such/page")
    assert page.status_code == 404 and b"Not found" in page.data
    assert browser.client.delete("/members").status_code == 405
    crashed = browser.get("/_boom")
    assert crashed.status_code == 500
    assert b"Something went wrong" in crashed.data
    assert b"Traceback" not in crashed.data and b"RuntimeError" not in crashed.data
    assert b"xoxb" not in crashed.data


def test_session_cookie_is_secure_in_production(backend, tmp_path, db):
    from core.settings import Settings
    from tests.conftest import TEST_TOKEN_KEYS
    from web import create_app
    app = create_app(Settings.from_env({
        "HERALD_ENV": "production", "DATABASE_URL": backend.url, "SECRET_KEY": "s" * 40,
        "TOKEN_KEYS": ",".join(TEST_TOKEN_KEYS), "PUBLIC_URL": "https://herald.example.com",
        "HERALD_INSTANCE_PATH": str(tmp_path), "QUEUE_URL": "memory://"}))
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    response = app.test_client().get("/signin")
    assert "Strict-Transport-Security" in response.headers


def test_no_page_or_log_line_shows_a_token(site, browser, make, home_workspace, caplog):
    """Real secrets exist (an OAuth token pair, a Slack installation); sign-in links are used.
    None of them appears in any page or captured log line."""
    caplog.set_level(logging.DEBUG)
    owner = make.user(home_workspace, role="owner")
    project = make.project(home_workspace, name="Brand")
    account = make.account(home_workspace, project=project)
    make.token(account, access="oauth-access-SECRET-1234567890", refresh="oauth-refresh-SECRET-0987654321")
    SlackInstallation.create(workspace=home_workspace, client_id="111.222", app_id="A111",
                             team_id="T111", bot_token="xoxb-installed-SECRET-42",
                             user_token="xoxp-user-SECRET-43", user_id="U0INSTALL",
                             installed_at=utcnow())
    url = signin.issue_link(owner, site.config["HERALD"])
    link_token = url.rsplit("/", 1)[1]
    # The access log line a dev server (werkzeug) or gunicorn writes for the link:
    for name in ("werkzeug", "gunicorn.access"):
        access = logging.getLogger(name)
        level, access.level = access.level, logging.INFO       # the fakes quieten werkzeug
        try:
            access.info('127.0.0.1 - - "GET /signin/%s HTTP/1.1" 200 -', link_token)
        finally:
            access.level = level
    browser.sign_in(owner)
    browser.post(f"/projects/{project.id}", {"name": "Brand", "approval_policy": "required",
                                              "approvals_required": "1", "timezone": "UTC",
                                              "accounts": [str(account.id)]},
                 csrf_from_page=f"/projects/{project.id}")
    for path in ("/", "/members", "/projects", f"/projects/{project.id}", "/audit", "/audit.csv",
                 "/setup", "/nowhere", url.replace("http://herald.test", "")):
        browser.get(path)
    secrets = ["oauth-access-SECRET", "oauth-refresh-SECRET", "xoxb-installed-SECRET", "xoxp-user-SECRET",
               "xoxb-herald-test", "test-signing-secret", link_token,
               SigninLink.get(SigninLink.user == owner).token_hash]
    pages = "\n".join(browser.pages)
    logs = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    for secret in secrets:
        assert secret not in pages, secret
    for secret in secrets[:-1]:
        assert secret not in logs, secret
    assert "/signin/[redacted]" in logs

