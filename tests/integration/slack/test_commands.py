"""`/social` subcommands through signed requests: every answer ephemeral, through the
command's response_url (recorded by the fake as `fake_slack.responses`)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from bot.blocks import ids
from db.fields import utcnow
from db.models import AuditLog, Post
from tests.integration.slack.test_compose import team  # noqa: F401 — fixture
from tests.slack_requests import wait_for

SOON = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=2)


def answer(slack, fake_slack, text: str, **kw) -> dict:
    before = len(fake_slack.responses)
    response = slack.command(text, **kw)
    assert response.status_code == 200 and not response.data     # plain ack; the answer follows
    reply = wait_for(lambda: fake_slack.responses[before:], what=f"/social {text}")[0]
    assert reply.get("response_type") == "ephemeral"
    assert "Traceback" not in json.dumps(reply)
    return reply


def everything(reply: dict) -> str:
    return reply.get("text", "") + json.dumps(reply.get("blocks") or [])


@pytest.fixture
def posts_(team, make):
    ws, me = team["ws"], team["user"]
    colleague = make.user(ws, role="editor", slack_user_id="U333")
    mine = make.post(ws, team["project"], me, body="My scheduled launch", status="scheduled",
                     scheduled_at=SOON)
    make.target(mine, team["x"])
    theirs = make.post(ws, team["project"], colleague, body="Colleague's pending post",
                       status="pending_approval", scheduled_at=SOON + timedelta(hours=1))
    make.target(theirs, team["mastodon"])
    draft = make.post(ws, team["project"], me, body="Half-written idea", status="draft")
    old = make.post(ws, team["project"], me, body="Long gone", status="published",
                    scheduled_at=utcnow() - timedelta(days=3))
    return {"mine": mine, "theirs": theirs, "draft": draft, "old": old}


def test_queue_lists_mine_and_everyone_elses_with_short_ids_and_local_times(slack, fake_slack, posts_):
    reply = answer(slack, fake_slack, "queue")
    text = everything(reply)
    mine, theirs = posts_["mine"], posts_["theirs"]
    assert f"`{mine.id.hex[:8]}`" in text and f"`{theirs.id.hex[:8]}`" in text
    assert f"<!date^{int(mine.scheduled_at.timestamp())}^" in text
    assert "My scheduled launch" in text and "<@U333>" in text
    assert text.index("Your upcoming posts") < text.index("My scheduled launch") \
        < text.index("Everyone else") < text.index("Colleague's pending post")
    assert "Half-written idea" not in text and "Long gone" not in text


def test_queue_when_nothing_is_waiting(slack, fake_slack, team):
    assert "Nothing is waiting" in answer(slack, fake_slack, "queue")["text"]


def test_drafts_lists_mine_with_edit_buttons(slack, fake_slack, posts_):
    reply = answer(slack, fake_slack, "drafts")
    buttons = [b["accessory"] for b in reply["blocks"] if b.get("accessory")]
    assert [(b["action_id"], b["value"]) for b in buttons] == [(ids.DRAFT_EDIT, str(posts_["draft"].id))]
    assert "Half-written idea" in everything(reply) and "My scheduled launch" not in everything(reply)


def test_cancel_by_short_id(slack, fake_slack, posts_):
    mine = posts_["mine"]
    reply = answer(slack, fake_slack, f"cancel {mine.id.hex[:8]}")
    assert reply["text"].startswith(f"Cancelled post `{mine.id.hex[:8]}`")
    assert Post.get_by_id(mine.id).status == "cancelled"
    assert AuditLog.select().where(AuditLog.action == "post.cancelled").count() == 1
    again = answer(slack, fake_slack, f"cancel {mine.id}")
    assert "already cancelled" in again["text"]


def test_cancel_needs_an_id_and_a_real_one(slack, fake_slack, posts_):
    assert "/social cancel <id>" in answer(slack, fake_slack, "cancel")["text"]
    assert "isn't a post id" in answer(slack, fake_slack, "cancel zzz")["text"]


def test_cancel_someone_elses_post_is_refused_for_an_editor(slack, fake_slack, posts_):
    reply = answer(slack, fake_slack, f"cancel {posts_['theirs'].id.hex[:8]}")
    assert "Only the author or an approver" in reply["text"]
    assert Post.get_by_id(posts_["theirs"].id).status == "pending_approval"


def test_cancel_another_workspaces_post_is_refused(slack, fake_slack, team, make):
    other = make.workspace()
    outsider = make.user(other, role="owner")
    foreign = make.post(other, make.project(other), outsider, body="Not yours", status="scheduled",
                        scheduled_at=SOON)
    for reference in (str(foreign.id), foreign.id.hex[:8]):
        reply = answer(slack, fake_slack, f"cancel {reference}")
        assert "doesn't exist" in reply["text"] or "No single post" in reply["text"]
    assert Post.get_by_id(foreign.id).status == "scheduled"
    assert AuditLog.select().where(AuditLog.action == "post.cancelled").count() == 0


def test_accounts_lists_network_handle_status_and_the_connect_page(slack, fake_slack, team, make):
    make.token(team["x"])
    make.account(team["ws"], platform="bluesky", handle="broken.bsky.social", status="needs_reauth")
    text = everything(answer(slack, fake_slack, "accounts"))
    assert "*X* @brandx" in text and "active" in text and "Brand" in text
    assert "*Bluesky* @broken.bsky.social" in text and "needs reconnecting" in text
    assert "http://herald.test/accounts" in text


def test_accounts_when_none_are_connected(slack, fake_slack, make):
    ws = make.workspace("T111")
    make.user(ws, role="editor", slack_user_id="U111")
    text = everything(answer(slack, fake_slack, "accounts"))
    assert "No social accounts" in text and "http://herald.test/accounts" in text


@pytest.mark.parametrize("text", ["help", "HELP", "frobnicate the thing"])
def test_help_and_unknown_subcommands_answer_with_help(slack, fake_slack, team, text):
    # Help needs no database: it comes back in the ack itself, ephemeral by default.
    response = slack.command(text)
    assert response.status_code == 200
    reply = response.get_json()
    assert reply.get("response_type", "ephemeral") == "ephemeral"
    body = everything(reply)
    for command in ("/social queue", "/social drafts", "/social cancel", "/social accounts"):
        assert command in body
    assert ("doesn't know “frobnicate”" in body) == text.startswith("frobnicate")


def test_admin_sends_a_one_time_sign_in_link_only_to_the_asker(slack, fake_slack, team):
    reply = answer(slack, fake_slack, "admin")
    assert "http://herald.test/signin/" in reply["text"]
    assert fake_slack.calls_for("chat.postMessage") == []


def test_report_says_where_results_are_and_links_nothing_missing(slack, fake_slack, team):
    text = answer(slack, fake_slack, "report")["text"]
    assert "approval thread" in text and "/reports" not in text


def test_an_analyst_can_read_the_queue_but_not_cancel(slack, fake_slack, posts_, make, team):
    make.user(team["ws"], role="analyst", slack_user_id="U444")
    assert "My scheduled launch" in everything(answer(slack, fake_slack, "queue", user_id="U444"))
    reply = answer(slack, fake_slack, f"cancel {posts_['mine'].id.hex[:8]}", user_id="U444")
    assert "Only the author or an approver" in reply["text"]
    assert Post.get_by_id(posts_["mine"].id).status == "scheduled"
