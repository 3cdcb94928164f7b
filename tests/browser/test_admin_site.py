"""The admin site in headless Chromium: sign in with a one-time link, see members, change a
role, create a project, filter and export the audit log — screenshots of every page."""
from __future__ import annotations

import csv
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from core import signin
from db.models import AuditLog, Membership, Project, SocialAccount


def wait(driver, timeout=10):
    return WebDriverWait(driver, timeout)


def wait_for_file(folder: Path, suffix: str, timeout: float = 15) -> Path:
    """Poll until a finished download shows up (Chromium writes .crdownload first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        if done and not any(p.name.endswith(".crdownload") for p in folder.iterdir()):
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no {suffix} download in {folder} after {timeout}s: "
                         f"{[p.name for p in folder.iterdir()]}")


def sign_in(driver, app, user):
    url = signin.issue_link(user, app.config["HERALD"])
    driver.get(url)
    wait(driver).until(EC.element_to_be_clickable((By.ID, "signin")))
    return url


def test_owner_signs_in_manages_members_projects_and_audit(live_app, driver, screenshot, make,
                                                           downloads):
    from core.workspaces import ensure_workspace
    workspace = ensure_workspace("T111", "Acme Social")
    owner = make.user(workspace, role="owner", real_name="Olive Owner", slack_user_id="UOLIVE")
    editor = make.user(workspace, role="editor", real_name="Eddie Editor", slack_user_id="UEDDIE")
    make.user(workspace, role="analyst", real_name="Ana Analyst", slack_user_id="UANA")
    first = make.account(workspace, platform="mastodon", handle="acme@mastodon.social")
    make.account(workspace, platform="bluesky", handle="acme.bsky.social")

    # 1. Sign in through a one-time link: a confirmation page, then the button.
    link = sign_in(driver, live_app, owner)
    screenshot("01-signin-confirm")
    driver.find_element(By.ID, "signin").click()
    wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".tiles")))
    assert driver.current_url.rstrip("/") == live_app.config["LIVE_URL"]
    assert "Olive Owner" in driver.find_element(By.CSS_SELECTOR, ".who").text
    screenshot("02-home")

    # 2. Members: names, Slack ids, roles; change Eddie to approver.
    driver.find_element(By.LINK_TEXT, "Members").click()
    row = wait(driver).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, 'tr[data-slack-id="UEDDIE"]')))
    assert "Eddie Editor" in row.text and "UEDDIE" in row.text
    screenshot("03-members")
    Select(row.find_element(By.NAME, "role")).select_by_value("approver")
    row.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    flash = wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".flash-success")))
    assert "Eddie Editor is now approver." in flash.text
    assert Membership.get(Membership.user == editor).role == "approver"
    screenshot("04-members-role-changed")

    # 3. Projects: create one with an account.
    driver.find_element(By.LINK_TEXT, "Projects").click()
    wait(driver).until(EC.element_to_be_clickable((By.ID, "new-project"))).click()
    wait(driver).until(EC.presence_of_element_located((By.ID, "project-form")))
    driver.find_element(By.ID, "name").send_keys("Spring <Launch>")
    driver.find_element(By.ID, "approval_channel_id").send_keys("C0APPROVE")
    Select(driver.find_element(By.ID, "approval_policy")).select_by_value("required")
    approvals = driver.find_element(By.ID, "approvals_required")
    approvals.clear()
    approvals.send_keys("2")
    zone = driver.find_element(By.ID, "timezone")
    zone.clear()
    zone.send_keys("America/New_York")
    Select(driver.find_element(By.ID, "accounts")).select_by_value(str(first.id))
    screenshot("05-project-form")
    driver.find_element(By.ID, "save-project").click()
    wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".flash-success")))
    table = driver.find_element(By.ID, "projects").text
    assert "Spring <Launch>" in table and "2 approvals" in table and "America/New_York" in table
    project = Project.get(Project.name == "Spring <Launch>")
    assert SocialAccount.get_by_id(first.id).project_id == project.id
    screenshot("06-projects")

    # 4. Audit log: filter by action, then export the same filter as CSV.
    driver.find_element(By.LINK_TEXT, "Audit log").click()
    wait(driver).until(EC.presence_of_element_located((By.ID, "audit-filters")))
    screenshot("07-audit")
    Select(driver.find_element(By.ID, "action")).select_by_value("member.role_changed")
    driver.find_element(By.ID, "apply-filters").click()
    wait(driver).until(EC.url_contains("action=member.role_changed"))
    rows = driver.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
    assert len(rows) == 1 and "member.role_changed" in rows[0].text and "Olive Owner" in rows[0].text
    screenshot("08-audit-filtered")
    driver.find_element(By.ID, "export-csv").click()
    exported = wait_for_file(downloads, ".csv")
    with exported.open(newline="") as fh:
        data = list(csv.reader(fh))
    assert data[0][3] == "action" and [r[3] for r in data[1:]] == ["member.role_changed"]
    assert AuditLog.select().where(AuditLog.action == "project.created").count() == 1

    # 5. Setup (owners) and the friendly pages.
    driver.get(live_app.config["LIVE_URL"] + "/setup")
    wait(driver).until(EC.presence_of_element_located((By.ID, "checks")))
    screenshot("09-setup")
    driver.get(live_app.config["LIVE_URL"] + "/projects/00000000-0000-0000-0000-000000000000")
    assert "Not found" in driver.find_element(By.TAG_NAME, "h1").text
    screenshot("10-not-found")

    # 6. The used link now says so, and how to get a new one.
    driver.get(link)
    heading = wait(driver).until(EC.presence_of_element_located((By.TAG_NAME, "h1")))
    assert "already used" in heading.text
    assert "/social admin" in driver.find_element(By.TAG_NAME, "main").text
    screenshot("11-link-used")

    # 7. Narrow screen, then sign out.
    driver.set_window_size(390, 844)
    driver.get(live_app.config["LIVE_URL"] + "/members")
    wait(driver).until(EC.presence_of_element_located((By.ID, "members")))
    screenshot("12-members-mobile")
    driver.set_window_size(1280, 900)
    driver.find_element(By.CSS_SELECTOR, ".who button").click()
    wait(driver).until(EC.url_contains("/signed-out"))
    driver.get(live_app.config["LIVE_URL"] + "/members")
    assert "Sign in from Slack" in driver.find_element(By.TAG_NAME, "h1").text


def test_an_analyst_sees_no_admin_controls(live_app, driver, screenshot, make):
    from core.workspaces import ensure_workspace
    workspace = ensure_workspace("T111", "Acme Social")
    make.user(workspace, role="owner", real_name="Olive Owner")
    analyst = make.user(workspace, role="analyst", real_name="Ana Analyst")
    sign_in(driver, live_app, analyst)
    driver.find_element(By.ID, "signin").click()
    wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".who")))
    nav = driver.find_element(By.CSS_SELECTOR, "header nav").text
    for hidden in ("Audit log", "Setup", "Members", "Projects", "Accounts"):
        assert hidden not in nav
    # Analysts read reports only: the admin pages say so instead of showing controls.
    driver.get(live_app.config["LIVE_URL"] + "/members")
    assert "can't do that" in driver.find_element(By.TAG_NAME, "h1").text
    assert not driver.find_elements(By.CSS_SELECTOR, "select[name=role]")
    driver.get(live_app.config["LIVE_URL"] + "/audit")
    assert "can't do that" in driver.find_element(By.TAG_NAME, "h1").text
    screenshot("20-analyst-forbidden")


def test_first_run_setup_page_copies_the_manifest(db, backend, tmp_path, driver, screenshot,
                                                  monkeypatch):
    """Unconfigured Slack: / goes to /setup, which shows the manifest and a working Copy button
    (a static script — the CSP allows no inline one)."""
    import threading
    from werkzeug.serving import make_server
    from core.settings import Settings
    from tests.conftest import TEST_TOKEN_KEYS
    from web import create_app
    manifest = tmp_path / "manifest.yml"
    manifest.write_text("display_information:\n  name: Herald\nsettings:\n  event_subscriptions:\n"
                        "    request_url: ${PUBLIC_URL}/slack/events\n")
    monkeypatch.setattr("web.setup.MANIFEST", manifest)
    app = create_app(Settings.from_env({
        "DATABASE_URL": backend.url, "TOKEN_KEYS": ",".join(TEST_TOKEN_KEYS), "SECRET_KEY": "t",
        "HERALD_INSTANCE_PATH": str(tmp_path), "PUBLIC_URL": "https://herald.example.org",
        "QUEUE_URL": "memory://"}))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        errors_before = driver.get_log("browser") if hasattr(driver, "get_log") else []
        driver.get(f"http://127.0.0.1:{server.server_port}/")
        wait(driver).until(EC.url_contains("/setup"))
        code = driver.find_element(By.ID, "manifest").text
        assert "https://herald.example.org/slack/events" in code
        driver.find_element(By.ID, "copy-manifest").click()
        wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, ".copy-status").text != "")
        screenshot("30-setup-unconfigured")
        csp_errors = [e for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]
        assert not csp_errors, csp_errors
        del errors_before
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
