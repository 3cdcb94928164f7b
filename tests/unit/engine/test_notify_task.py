"""The notify tasks against the fake Slack Web API: the thread reply, once; Slack's 429 becomes
a Huey retry after Retry-After; a refusal for good is recorded; installable mode's bot token."""
from __future__ import annotations

import pytest
from huey.exceptions import RetryTask

from core import notify, publishing, tokens
from core.settings import Settings
from db.fields import utcnow
from db.models import AuditLog, SlackBot
from tests.conftest import TEST_TOKEN_KEYS


@pytest.fixture
def slack_settings(fake_slack, tmp_path):
    from tasks import queue
    before = queue._settings

    def use(**env):
        queue._settings = Settings.from_env({
            "HERALD_INSTANCE_PATH": str(tmp_path), "TOKEN_KEYS": ",".join(TEST_TOKEN_KEYS),
            "SECRET_KEY": "test", "SLACK_API_URL": fake_slack.api_url, "PUBLIC_URL": "http://herald.test",
            **env})
        return queue._settings

    use(SLACK_BOT_TOKEN="xoxb-herald-test")
    yield use
    queue._settings = before


def thread_replies(fake_slack, thread_ts):
    return [m for (channel, _), m in fake_slack.messages.items()
            if channel == "C0APPROVE" and m.get("thread_ts") == thread_ts]


def test_a_result_is_posted_once_in_the_approval_thread(engine, fake_slack, slack_settings):
    from tasks.notify import notify_target
    target = engine.target()
    assert publishing.publish(target.id).kind == "published"
    notify_target.call_local(str(target.id))
    notify_target.call_local(str(target.id))            # a repeated task says nothing twice
    [reply] = thread_replies(fake_slack, "1700000000.000100")
    assert "Published to Sandbox" in reply["text"]
    entry = AuditLog.get(AuditLog.action == notify.TARGET_NOTIFIED)
    assert entry.changes["status"] == "published" and entry.changes["ts"]


def test_slack_429_becomes_a_retry_after_retry_after(engine, fake_slack, slack_settings):
    from tasks.notify import notify_target
    target = engine.target()
    publishing.publish(target.id)
    fake_slack.fail("/api/chat.postMessage", status=429, headers={"Retry-After": "7"},
                    json={"ok": False, "error": "ratelimited"})
    with pytest.raises(RetryTask) as caught:
        notify_target.call_local(str(target.id))
    assert caught.value.delay == 7
    assert notify.target_note(target.id) is not None     # still owed
    notify_target.call_local(str(target.id))
    assert len(thread_replies(fake_slack, "1700000000.000100")) == 1


def test_a_channel_that_is_gone_is_recorded_not_retried_forever(engine, fake_slack, slack_settings):
    from tasks.notify import notify_target
    target = engine.target()
    publishing.publish(target.id)
    fake_slack.channels = {"C0OTHER"}
    notify_target.call_local(str(target.id))
    entry = AuditLog.get(AuditLog.action == notify.TARGET_NOTIFIED)
    assert entry.changes["error"] == "channel_not_found"
    assert notify.unsent_targets(utcnow() + notify.GRACE * 2) == []


def test_installable_mode_uses_the_workspaces_bot_token(engine, fake_slack, slack_settings):
    from tasks.notify import notify_account, slack_client
    slack_settings(SLACK_CLIENT_ID="123.456", SLACK_CLIENT_SECRET="s3cret")
    fake_slack.add_bot("xoxb-installed", team_id=engine.team["ws"].team_id)
    SlackBot.create(workspace=engine.team["ws"], client_id="123.456", app_id="A1",
                    team_id=engine.team["ws"].team_id, bot_token="xoxb-installed", installed_at=utcnow())
    assert slack_client(engine.team["ws"].id).token == "xoxb-installed"
    tokens.mark_needs_reauth(engine.team["account"].id, "The sandbox refused the refresh token.")
    notify_account.call_local(str(engine.team["account"].id))
    [message] = [m for (c, _), m in fake_slack.messages.items() if c == "C0APPROVE"]
    assert "http://herald.test/accounts" in str(message["blocks"])
    assert slack_settings(SLACK_BOT_TOKEN="") and slack_client(engine.team["ws"].id) is None
