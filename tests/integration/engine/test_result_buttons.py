"""The buttons on publish results, clicked through Slack: signed requests to Herald's Flask app,
Slack's Web API played by the loopback fake, the real database. No consumer is needed: the
bells these clicks ring are only recorded."""
from __future__ import annotations

import pytest
from huey.storage import MemoryStorage

from bot.app import web_client
from bot.blocks import ids
from bot.blocks.results import target_result
from core import notify
from db.fields import utcnow
from db.models import AuditLog, Post, PostTarget
from tests.slack_requests import wait_for

CHANNEL = "C0APPROVE"


@pytest.fixture(autouse=True)
def settled(herald):
    yield
    herald.extensions["bolt"].listener_runner.listener_executor.shutdown(wait=True)


@pytest.fixture
def bells():
    import tasks
    saved = (tasks.huey.storage, tasks.huey._immediate)
    tasks.huey.storage, tasks.huey._immediate = MemoryStorage(tasks.huey.name), False
    yield tasks.huey
    tasks.huey.storage, tasks.huey._immediate = saved


@pytest.fixture
def team(make):
    ws = make.workspace("T111", name="acme")
    project = make.project(ws, name="Launches", approval_channel_id=CHANNEL)
    return {"ws": ws, "project": project,
            "author": make.user(ws, role="editor", slack_user_id="UAUTHOR"),
            "approver": make.user(ws, role="approver", slack_user_id="UAPPROVER"),
            "analyst": make.user(ws, role="analyst", slack_user_id="UANALYST"),
            "account": make.account(ws, platform="sandbox", project=project, handle="@brand")}


def result_message(herald, fake_slack, team, status: str, error: str):
    """A target in `status` and its result message in the approval thread, as the engine posts it."""
    client = web_client(herald.config["HERALD"], "xoxb-herald-test")
    thread = client.chat_postMessage(channel=CHANNEL, text="approval")["ts"]
    post = Post.create(workspace=team["ws"], project=team["project"], author=team["author"], body="Hi",
                       status=status, scheduled_at=utcnow(), approval_channel_id=CHANNEL,
                       approval_message_ts=thread)
    target = PostTarget.create(post=post, account=team["account"], status=status, last_error=error,
                               attempts=1)
    text, blocks = target_result(notify.target_note(target.id), "Sandbox")
    ts = client.chat_postMessage(channel=CHANNEL, thread_ts=thread, text=text, blocks=blocks)["ts"]
    return target, ts


def click(slack, fake_slack, action_id, target, ts, user):
    message = fake_slack.messages[(CHANNEL, ts)]
    response = slack.block_action(action_id, str(target.id), user_id=user.slack_user_id,
                                  channel_id=CHANNEL, message_ts=ts, message=dict(message, ts=ts))
    assert response.status_code == 200


def test_it_was_posted(herald, slack, fake_slack, team, bells):
    target, ts = result_message(herald, fake_slack, team, "needs_review", "Not sure")
    assert {e["action_id"] for b in fake_slack.messages[(CHANNEL, ts)]["blocks"] if b["type"] == "actions"
            for e in b["elements"]} == {ids.MARK_POSTED, ids.PUBLISH_AGAIN}
    click(slack, fake_slack, ids.MARK_POSTED, target, ts, team["author"])
    wait_for(lambda: PostTarget.get_by_id(target.id).status == "published", what="marked posted")
    message = wait_for(lambda: "it was posted" in str(fake_slack.messages[(CHANNEL, ts)]["blocks"])
                       and fake_slack.messages[(CHANNEL, ts)], what="the message updated")
    assert all(b["type"] != "actions" for b in message["blocks"])
    assert "<@UAUTHOR>" in str(message["blocks"])
    assert AuditLog.select().where(AuditLog.action == "target.marked_posted").count() == 1
    assert Post.get_by_id(target.post_id).status == "published"


def test_publish_again_is_explicit_audited_and_rings_the_engine(herald, slack, fake_slack, team, bells):
    target, ts = result_message(herald, fake_slack, team, "needs_review", "Not sure")
    click(slack, fake_slack, ids.PUBLISH_AGAIN, target, ts, team["approver"])
    wait_for(lambda: PostTarget.get_by_id(target.id).status == "scheduled", what="scheduled again")
    entry = AuditLog.get(AuditLog.action == "target.publish_again")
    assert entry.actor_id == team["approver"].id
    assert entry.changes["idempotency_key"] == str(target.idempotency_key)
    wait_for(lambda: [t for t in bells.pending() if t.args == (str(target.id),)], what="the bell")


def test_retry_a_failed_target(herald, slack, fake_slack, team, bells):
    target, ts = result_message(herald, fake_slack, team, "failed", "Sandbox refused it")
    click(slack, fake_slack, ids.RETRY_TARGET, target, ts, team["author"])
    wait_for(lambda: PostTarget.get_by_id(target.id).status == "scheduled", what="retried")
    wait_for(lambda: "pressed Retry" in str(fake_slack.messages[(CHANNEL, ts)]["blocks"]),
             what="the message updated")


def test_people_who_may_not_decide_are_told_so_and_nothing_changes(herald, slack, fake_slack, team, bells):
    target, ts = result_message(herald, fake_slack, team, "needs_review", "Not sure")
    click(slack, fake_slack, ids.PUBLISH_AGAIN, target, ts, team["analyst"])
    reply = wait_for(lambda: next((r for r in fake_slack.responses if r.get("text")), None),
                     what="the refusal")
    assert reply["response_type"] == "ephemeral" and "author or an approver" in reply["text"]
    assert PostTarget.get_by_id(target.id).status == "needs_review"
    assert any(b["type"] == "actions" for b in fake_slack.messages[(CHANNEL, ts)]["blocks"])
