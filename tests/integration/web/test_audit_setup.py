"""/audit (filters, zones, pages, CSV export safe against formula injection) and /setup."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from core import audit
from core.settings import Settings
from db.models import AuditLog
from tests.conftest import TEST_TOKEN_KEYS
from web import create_app
from web.audit import safe_cell


def _entries(owner, other, workspace, project):
    audit.record(owner, "project.created", project, {"name": "=HYPERLINK(\"http://evil\")"})
    audit.record(other, "member.role_changed", other, {"role": ["editor", "approver"]})
    audit.record("scheduler", "post.published", ("posts", "p-1"), workspace=workspace)


def test_owners_filter_the_audit_log(browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner", real_name="Olive")
    other = make.user(home_workspace, role="editor", real_name="Eddie")
    project = make.project(home_workspace, name="Brand")
    _entries(owner, other, home_workspace, project)
    audit.record(make.user(make.workspace(), role="owner"), "project.created", None, {"secret_ws": 1})
    browser.sign_in(owner)
    everything = browser.get("/audit").get_data(as_text=True)
    assert "post.published" in everything and "member.role_changed" in everything
    assert "secret_ws" not in everything                          # other workspace
    by_action = browser.get("/audit?action=member.role_changed").get_data(as_text=True)
    assert "member.role_changed" in by_action.split("<tbody>")[1]
    assert "editor → approver" in by_action                      # changes read as old → new
    assert "post.published" not in by_action.split("<tbody>")[1]
    by_actor = browser.get(f"/audit?actor={owner.id}").get_data(as_text=True).split("<tbody>")[1]
    assert "project.created" in by_actor and "member.role_changed" not in by_actor
    by_label = browser.get("/audit?actor=scheduler").get_data(as_text=True).split("<tbody>")[1]
    assert "post.published" in by_label and "project.created" not in by_label
    by_entity = browser.get("/audit?entity_type=posts&entity_id=p-1").get_data(as_text=True).split("<tbody>")[1]
    assert "post.published" in by_entity and "project.created" not in by_entity


def test_time_range_is_read_in_the_person_s_zone(browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner", tz="Asia/Kolkata")
    browser.sign_in(owner)
    now = datetime.now(timezone.utc)
    kolkata_now = now.astimezone(timezone(timedelta(hours=5, minutes=30))).replace(tzinfo=None)
    since = (kolkata_now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    until = (kolkata_now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    page = browser.get(f"/audit?since={since}&until={until}").get_data(as_text=True)
    assert "member.signed_in" in page.split("<tbody>")[1]
    # The same wall-clock times read as UTC would be 5½ hours off and match nothing.
    utc_since = (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    utc_until = (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    empty = browser.get(f"/audit?since={utc_since}&until={utc_until}").get_data(as_text=True)
    assert "No entries match" in empty
    assert "Asia/Kolkata" in page
    bad = browser.get("/audit?since=yesterday").get_data(as_text=True)
    assert "Use a date and time like" in bad


def test_the_audit_log_is_paginated(browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner")
    for n in range(60):
        audit.record(owner, "test.entry", ("things", f"t-{n:03d}"))
    browser.sign_in(owner)
    first = browser.get("/audit?action=test.entry").get_data(as_text=True)
    assert first.count("<tr>") - 1 == 50 and 'rel="next"' in first and 'rel="prev"' not in first
    second = browser.get("/audit?action=test.entry&page=2").get_data(as_text=True)
    assert second.count("<tr>") - 1 == 10 and 'rel="prev"' in second and 'rel="next"' not in second
    assert "action=test.entry" in second.split('rel="prev"')[0].rsplit("href=", 1)[1]


def test_csv_export_uses_the_filters_and_defuses_formulas(browser, make, home_workspace):
    owner = make.user(home_workspace, role="owner", real_name="=cmd|'/C calc'!A0")
    other = make.user(home_workspace, role="editor", real_name="Eddie")
    project = make.project(home_workspace, name="Brand")
    _entries(owner, other, home_workspace, project)
    browser.sign_in(owner)
    response = browser.get("/audit.csv?action=project.created")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:4] == ["time_utc", "actor", "actor_id", "action"]
    assert len(rows) == 2 and rows[1][3] == "project.created"
    assert rows[1][1] == "'=cmd|'/C calc'!A0"
    everything = list(csv.reader(io.StringIO(browser.get("/audit.csv").get_data(as_text=True))))
    assert {r[3] for r in everything[1:]} >= {"project.created", "member.role_changed",
                                               "post.published", "member.signed_in"}
    for row in everything[1:]:
        for cell in row:
            assert not cell or cell[0] not in "=+-@", row


@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("plain", "plain"), ("", ""), (None, ""), (42, "42"),
])
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def _unconfigured_app(backend, tmp_path, **env):
    values = {"DATABASE_URL": backend.url, "HERALD_INSTANCE_PATH": str(tmp_path),
              "TOKEN_KEYS": ",".join(TEST_TOKEN_KEYS), "SECRET_KEY": "test",
              "PUBLIC_URL": "https://herald.example.org", "QUEUE_URL": "redis://:hunter2@127.0.0.1:6379/0"}
    values.update(env)
    return create_app(Settings.from_env(values))


def test_unconfigured_home_redirects_to_setup(db, backend, tmp_path):
    client = _unconfigured_app(backend, tmp_path).test_client()
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/setup"


def test_setup_shows_the_manifest_filled_in_and_checks_without_secrets(db, backend, tmp_path,
                                                                        monkeypatch):
    manifest = tmp_path / "manifest.yml"
    manifest.write_text("settings:\n  event_subscriptions:\n    request_url: ${PUBLIC_URL}/slack/events\n"
                        "  interactivity:\n    request_url: {{PUBLIC_URL}}/slack/events\n")
    monkeypatch.setattr("web.setup.MANIFEST", manifest)
    app = _unconfigured_app(backend, tmp_path, SLACK_SIGNING_SECRET="sign-SECRET-value")
    html = app.test_client().get("/setup").get_data(as_text=True)
    assert html.count("https://herald.example.org/slack/events") == 2
    assert "${PUBLIC_URL}" not in html
    assert 'id="copy-manifest"' in html and "/static/copy.js" in html
    assert "Signing secret" in html and "Database" in html and "reachable" in html
    assert "Queue (QUEUE_URL)" in html and "redis://" in html
    assert "sign-SECRET-value" not in html and "hunter2" not in html


def test_setup_says_when_the_manifest_is_missing(db, backend, tmp_path, monkeypatch):
    monkeypatch.setattr("web.setup.MANIFEST", tmp_path / "nope.yml")
    html = _unconfigured_app(backend, tmp_path).test_client().get("/setup").get_data(as_text=True)
    assert "manifest.yml isn" in html and 'id="manifest-missing"' in html
    assert "not set" in html          # no signing secret


def test_setup_checks_flag_problems(db, backend, tmp_path):
    from web.setup import checks
    settings = Settings.from_env({
        "HERALD_ENV": "production", "DATABASE_URL": backend.url, "SECRET_KEY": "k" * 40,
        "TOKEN_KEYS": ",".join(TEST_TOKEN_KEYS), "PUBLIC_URL": "http://plain.example",
        "HERALD_INSTANCE_PATH": str(tmp_path), "SLACK_BOT_TOKEN": "xoxp-wrong-kind",
        "QUEUE_URL": "amqp://nope"})
    app = create_app(settings)
    with app.test_request_context("/setup"):
        result = {c["name"]: c for c in checks(settings)}
    assert result["Bot token (SLACK_BOT_TOKEN)"]["ok"] is False
    assert result["PUBLIC_URL"]["ok"] is False and "https" in result["PUBLIC_URL"]["detail"]
    assert result["Queue (QUEUE_URL)"]["ok"] is False
    assert result["Database"]["ok"] is True
    assert result["Signing secret (SLACK_SIGNING_SECRET)"]["ok"] is False
    assert "xoxp-wrong-kind" not in repr(result)


def test_once_configured_setup_is_for_owners_only(browser, make, home_workspace):
    editor = make.user(home_workspace, role="editor")
    assert browser.get("/setup").status_code == 401
    browser.sign_in(editor)
    assert browser.get("/setup").status_code == 403
    owner = make.user(home_workspace, role="owner")
    browser.sign_in(owner)
    page = browser.get("/setup")
    assert page.status_code == 200 and b"connected to Slack" in page.data
    assert b"xoxb-herald-test" not in page.data
