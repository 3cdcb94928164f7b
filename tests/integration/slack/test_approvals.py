"""Approvals through Slack, end to end: signed button clicks and modal submissions against
Herald's Flask app, Slack's Web API played by the loopback fake, the real database."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from bot import approval_flow
from bot import home as bot_home
from bot.app import web_client
from bot.blocks import ids
from core import compose, posts
from db.fields import utcnow
from db.models import Approval, AuditLog, Post, PostTarget
from tests.conftest import SIGNING_SECRET
from tests.slack_requests import SlackRequests, wait_for

CHANNEL = "C0APPROVE"


@pytest.fixture(autouse=True)
def settled(herald):
    """Listeners run on Bolt's threads after ack; let them finish before the database goes."""
    bot_home.published.clear()
    yield
    herald.extensions["bolt"].listener_runner.listener_executor.shutdown(wait=True)




@pytest.fixture
def team(make, fake_slack):
    # Named as the signed requests name it (team.domain "acme"): bot.context would otherwise
    # rename the workspace on the first click, and two first clicks at once collide on
    # SQLite's write lock inside core.workspaces.ensure_workspace (reported to its owner).
    ws = make.workspace("T111", name="acme")
    project = make.project(ws, name="Spring", approval_policy="required", approvals_required=1,
                           approval_channel_id=CHANNEL)
    people = {name: make.user(ws, role=role, slack_user_id=f"U{name.upper()}")
              for name, role in [("author", "editor"), ("approver", "approver"),
                                 ("approver2", "approver"), ("analyst", "analyst")]}
    return dict(people, ws=ws, project=project,
                mastodon=make.account(ws, platform="mastodon", project=project),
                sandbox=make.account(ws, platform="sandbox", project=project))


@pytest.fixture
def client(herald):
    return web_client(herald.config["HERALD"], "xoxb-herald-test")


def draft(team, **kw) -> compose.DraftInput:
    values = dict(project_id=str(team["project"].id),
                  account_ids=[str(team["mastodon"].id), str(team["sandbox"].id)],
                  body="Launch day! https://example.com", scheduled_at=utcnow() + timedelta(hours=2),
                  timezone="Europe/Berlin")
    values.update(kw)
    return compose.DraftInput(**values)


def submitted(team, client, **kw) -> Post:
    """A post submitted through core, with its approval message posted to the fake."""
    post = compose.save_draft(team["author"], draft(team, **kw))
    posts.submit(team["author"], post.id)
    assert approval_flow.request_approval(client, Post.get_by_id(post.id))
    return Post.get_by_id(post.id)


def message(fake, post) -> dict:
    return fake.messages[(post.approval_channel_id, post.approval_message_ts)]


def buttons(blocks) -> dict:
    return {e["action_id"]: e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]}


def click(slack, fake, post, action_id, user, value=None):
    value = buttons(message(fake, post)["blocks"])[action_id] if value is None else value
    response = slack.block_action(action_id, value, user_id=user.slack_user_id,
                                  channel_id=post.approval_channel_id,
                                  message_ts=post.approval_message_ts)
    assert response.status_code == 200
    return response


def answers(fake) -> list[str]:
    return [r.get("text", "") for r in fake.responses]


def answered(fake, fragment: str) -> dict:
    return wait_for(lambda: next((r for r in fake.responses if fragment in r.get("text", "")), None),
                    what=f"an answer containing {fragment!r}")


def updates(fake, post) -> list[dict]:
    return [fake.params(c) for c in fake.calls_for("chat.update")
            if fake.params(c).get("ts") == post.approval_message_ts]


def dms_to(fake, user) -> list[str]:
    return [fake.params(c).get("text", "") for c in fake.calls_for("chat.postMessage")
            if fake.params(c).get("channel") == f"D{user.slack_user_id}"]


def status(post) -> str:
    return Post.get_by_id(post.id).status


def audited(post, action: str) -> list[AuditLog]:
    return list(AuditLog.select().where((AuditLog.entity_id == str(post.id))
                                        & (AuditLog.action == action)))


# -- the happy paths --------------------------------------------------------------------


def test_approving_schedules_updates_the_message_tells_the_author_and_rings_the_engine(
        slack, fake_slack, team, client, rung):
    post = submitted(team, client)
    assert set(buttons(message(fake_slack, post)["blocks"])) == {ids.APPROVE, ids.REQUEST_CHANGES,
                                                                 ids.REJECT}
    click(slack, fake_slack, post, ids.APPROVE, team["approver"])

    reply = answered(fake_slack, "scheduled")
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert status(post) == "scheduled"
    targets = PostTarget.select().where(PostTarget.post == post.id)
    assert {t.status for t in targets} == {"scheduled"}
    wait_for(lambda: rung, what="the engine's seam")
    assert sorted(rung[0]) == sorted(str(t.id) for t in targets)

    update = wait_for(lambda: updates(fake_slack, post), what="chat.update")[0]
    assert update["channel"] == CHANNEL and buttons(update["blocks"]) == {}
    assert "<@UAPPROVER> approved" in str(update["blocks"]) and "<!date^" in str(update["blocks"])
    assert buttons(message(fake_slack, post)["blocks"]) == {}
    dm = wait_for(lambda: dms_to(fake_slack, team["author"]), what="the author's DM")[0]
    assert "approved by <@UAPPROVER>" in dm and "scheduled" in dm
    [entry] = audited(post, "post.approved")
    assert entry.actor_id == team["approver"].id


def test_two_approvals_needed_the_first_keeps_the_buttons_and_shows_1_of_2(
        slack, fake_slack, team, client, rung):
    team["project"].approvals_required = 2
    team["project"].save()
    post = submitted(team, client)
    click(slack, fake_slack, post, ids.APPROVE, team["approver"])
    assert "1 of 2" in answered(fake_slack, "Approved (1 of 2)")["text"]
    update = wait_for(lambda: updates(fake_slack, post), what="chat.update")[0]
    assert set(buttons(update["blocks"])) == {ids.APPROVE, ids.REQUEST_CHANGES, ids.REJECT}
    assert "1 of 2 approvals" in str(update["blocks"])
    assert status(post) == "pending_approval" and rung == []
    assert dms_to(fake_slack, team["author"]) == []

    click(slack, fake_slack, post, ids.APPROVE, team["approver2"])
    answered(fake_slack, "the post is scheduled")
    assert status(post) == "scheduled"
    wait_for(lambda: len(updates(fake_slack, post)) == 2, what="the second chat.update")
    assert buttons(updates(fake_slack, post)[-1]["blocks"]) == {}
    assert len(audited(post, "post.approved")) == 2
    wait_for(lambda: rung, what="the engine's seam")


def open_reason(slack, fake_slack, post, action_id, user) -> dict:
    before = len(fake_slack.calls_for("views.open"))
    click(slack, fake_slack, post, action_id, user)
    call = wait_for(lambda: fake_slack.calls_for("views.open")[before:], what="views.open")[0]
    params = fake_slack.params(call)
    assert params["trigger_id"]
    return params["view"]                     # the modal as Herald opened it


def reason(text: str) -> dict:
    return {ids.REASON_BLOCK: {ids.REASON: {"type": "plain_text_input", "value": text}}}


def test_request_changes_asks_for_a_reason_and_sends_the_post_back_to_the_author(
        slack, fake_slack, team, client):
    post = submitted(team, client)
    view = open_reason(slack, fake_slack, post, ids.REQUEST_CHANGES, team["approver"])
    assert view["callback_id"] == ids.REASON_VIEW

    empty = slack.view_submission(view, reason("   "), user_id="UAPPROVER")
    assert empty.get_json()["response_action"] == "errors"
    assert ids.REASON_BLOCK in empty.get_json()["errors"]
    assert status(post) == "pending_approval" and Approval.select().count() == 0

    done = slack.view_submission(view, reason("Add the <launch> link"), user_id="UAPPROVER")
    assert done.status_code == 200 and not done.get_data()      # plain ack: the modal closes
    assert status(post) == "draft"
    answered(fake_slack, "Sent back to the author")
    dm = wait_for(lambda: dms_to(fake_slack, team["author"]), what="the author's DM")[0]
    assert "asked for changes" in dm and "Add the &lt;launch&gt; link" in dm
    update = wait_for(lambda: updates(fake_slack, post), what="chat.update")[0]
    assert buttons(update["blocks"]) == {} and "asked for changes" in str(update["blocks"])
    [entry] = audited(post, "post.changes_requested")
    assert entry.changes == {"comment": "Add the <launch> link"}

    again = slack.view_submission(view, reason("Add the link"), user_id="UAPPROVER")
    assert again.get_json()["response_action"] == "update"          # nothing to decide any more
    assert "already draft" in str(again.get_json()["view"])
    assert Approval.select().count() == 1


def test_reject_with_a_reason(slack, fake_slack, team, client, rung):
    post = submitted(team, client)
    view = open_reason(slack, fake_slack, post, ids.REJECT, team["approver"])
    slack.view_submission(view, reason("Off brand"), user_id="UAPPROVER")
    assert status(post) == "rejected" and rung == []
    dm = wait_for(lambda: dms_to(fake_slack, team["author"]), what="the author's DM")[0]
    assert "rejected your post" in dm and "Off brand" in dm
    answered(fake_slack, "Rejected")
    assert len(audited(post, "post.rejected")) == 1


def test_an_edit_voids_the_approval_and_needs_a_new_one(slack, fake_slack, team, client, rung):
    post = submitted(team, client)
    old_value = buttons(message(fake_slack, post)["blocks"])[ids.APPROVE]
    click(slack, fake_slack, post, ids.APPROVE, team["approver"])
    answered(fake_slack, "scheduled")
    wait_for(lambda: updates(fake_slack, post), what="chat.update")

    edited = compose.save_draft(team["author"], draft(team, body="Launch day, take two"),
                                post_id=post.id)
    assert status(post) == "pending_approval"
    new_ts = approval_flow.after_edit(client, edited)
    assert new_ts and new_ts != post.approval_message_ts
    old = message(fake_slack, post)
    assert buttons(old["blocks"]) == {} and "new version is below" in str(old["blocks"])
    new = Post.get_by_id(post.id)
    assert new.approval_message_ts == new_ts
    new_value = buttons(message(fake_slack, new)["blocks"])[ids.APPROVE]
    assert new_value == f"{post.id}:{new.content_hash}" and new_value != old_value
    assert "<@UAPPROVER> approved" not in str(message(fake_slack, new)["blocks"])
    # The approvers' Homes offer the new version again.
    homes = [fake_slack.params(c) for c in fake_slack.calls_for("views.publish")]
    assert any(h["user_id"] == "UAPPROVER2" and new_value in str(h["view"]) for h in homes)

    # The old button (old hash) no longer approves anything.
    click(slack, fake_slack, post, ids.APPROVE, team["approver"], value=old_value)
    answered(fake_slack, "edited after you saw it")
    assert status(post) == "pending_approval" and Approval.select().count() == 1

    click(slack, fake_slack, new, ids.APPROVE, team["approver"])
    wait_for(lambda: status(post) == "scheduled", what="the re-approval")
    assert Approval.select().count() == 2


# -- refusals ---------------------------------------------------------------------------


def test_an_author_cant_approve_their_own_post(slack, fake_slack, team, client, make):
    owner = make.user(team["ws"], role="owner", slack_user_id="UOWNER")
    post = compose.save_draft(owner, draft(team))
    posts.submit(owner, post.id)
    approval_flow.request_approval(client, Post.get_by_id(post.id))
    post = Post.get_by_id(post.id)
    click(slack, fake_slack, post, ids.APPROVE, owner)
    reply = answered(fake_slack, "your own post")
    assert reply["response_type"] == "ephemeral"
    assert status(post) == "pending_approval" and Approval.select().count() == 0
    assert updates(fake_slack, post) == []

    # The reason modal opens (the trigger can't wait) and turns into the same refusal.
    before = len(fake_slack.calls_for("views.update"))
    click(slack, fake_slack, post, ids.REJECT, owner)
    update = wait_for(lambda: fake_slack.calls_for("views.update")[before:], what="views.update")[0]
    assert "your own post" in str(fake_slack.params(update)["view"])
    assert "submit" not in fake_slack.params(update)["view"]


def test_an_analyst_cant_decide(slack, fake_slack, team, client):
    post = submitted(team, client)
    click(slack, fake_slack, post, ids.APPROVE, team["analyst"])
    reply = answered(fake_slack, "Only owners and approvers")
    assert "Traceback" not in reply["text"] and len(reply["text"]) < 200
    view = open_reason(slack, fake_slack, post, ids.REQUEST_CHANGES, team["analyst"])
    # Even a submission of the opened modal is refused by core.
    refused = slack.view_submission(view, reason("Nope"), user_id=team["analyst"].slack_user_id)
    assert refused.get_json()["response_action"] == "update"
    assert "Only owners and approvers" in str(refused.get_json()["view"])
    assert status(post) == "pending_approval" and Approval.select().count() == 0
    assert not AuditLog.select().where(AuditLog.action.startswith("post.approv")
                                       | AuditLog.action.startswith("post.reject")
                                       | AuditLog.action.startswith("post.changes")).exists()


def test_another_workspaces_post_is_not_found(slack, fake_slack, team, client, make):
    other = make.workspace("T222")
    project = make.project(other, approval_policy="required")
    author = make.user(other, role="editor")
    account = make.account(other, platform="sandbox", project=project)
    foreign = compose.save_draft(author, compose.DraftInput(
        project_id=str(project.id), account_ids=[str(account.id)], body="Theirs",
        scheduled_at=utcnow() + timedelta(hours=1)))
    posts.submit(author, foreign.id)
    foreign = Post.get_by_id(foreign.id)
    value = f"{foreign.id}:{foreign.content_hash}"
    slack.block_action(ids.APPROVE, value, user_id="UAPPROVER", channel_id=CHANNEL)
    answered(fake_slack, "doesn't exist")
    slack.block_action(ids.REJECT, value, user_id="UAPPROVER", channel_id=CHANNEL)
    update = wait_for(lambda: fake_slack.calls_for("views.update"), what="views.update")[0]
    assert "doesn't exist" in str(fake_slack.params(update)["view"])
    assert status(foreign) == "pending_approval" and Approval.select().count() == 0


@pytest.mark.parametrize("forge", [
    lambda post: "",
    lambda post: "garbage",
    lambda post: f"{post.id}",
    lambda post: f"{post.id}:not-a-hash",
    lambda post: f"{post.id}:{'0' * 64}",                       # a hash that was never the post's
    lambda post: f"00000000-0000-4000-8000-000000000000:{post.content_hash}",
    lambda post: f"{post.id}:{post.content_hash}:extra",
])
def test_forged_values_change_nothing(slack, fake_slack, team, client, forge):
    post = submitted(team, client)
    slack.block_action(ids.APPROVE, forge(post), user_id="UAPPROVER", channel_id=CHANNEL,
                       message_ts=post.approval_message_ts)
    reply = wait_for(lambda: fake_slack.responses, what="an answer")[0]
    assert reply["response_type"] == "ephemeral" and len(reply["text"]) < 200
    assert status(post) == "pending_approval" and Approval.select().count() == 0
    assert updates(fake_slack, post) == [] and fake_slack.calls_for("views.open") == []


# -- robustness -------------------------------------------------------------------------


def test_a_double_click_records_one_decision_and_one_update(slack, fake_slack, team, client, rung):
    post = submitted(team, client)
    value = buttons(message(fake_slack, post)["blocks"])[ids.APPROVE]
    senders = [SlackRequests(slack.client.application.test_client(), SIGNING_SECRET, fake_slack)
               for _ in range(2)]          # one test client per thread
    clicks = [threading.Thread(target=click, args=(sender, fake_slack, post, ids.APPROVE,
                                                   team["approver"], value))
              for sender in senders]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join()
    wait_for(lambda: len(fake_slack.responses) == 2, what="two answers")
    assert Approval.select().count() == 1 and status(post) == "scheduled"
    assert len(audited(post, "post.approved")) == 1
    first, second = sorted(answers(fake_slack))
    assert first == "Approved — the post is scheduled."
    assert "already" in second                 # "already scheduled" or "already recorded"
    wait_for(lambda: dms_to(fake_slack, team["author"]), what="the author's DM")
    assert len(updates(fake_slack, post)) == 1             # the repeat updated nothing
    assert len(dms_to(fake_slack, team["author"])) == 1 and len(rung) == 1


def test_a_rate_limited_chat_update_is_retried_and_the_decision_stands(
        slack, fake_slack, team, client):
    post = submitted(team, client)
    fake_slack.fail("/api/chat.update", status=429, headers={"Retry-After": "1"},
                    json={"ok": False, "error": "ratelimited"})
    click(slack, fake_slack, post, ids.APPROVE, team["approver"])
    assert wait_for(lambda: status(post) == "scheduled", what="the decision")
    wait_for(lambda: len(updates(fake_slack, post)) == 2, timeout=8, what="the retried chat.update")
    assert buttons(message(fake_slack, post)["blocks"]) == {}     # the retry landed


def test_approving_from_app_home_republishes_that_home(slack, fake_slack, team, client):
    post = submitted(team, client)
    fake_slack.responses.clear()
    opened = {"type": "app_home_opened", "user": "UAPPROVER", "tab": "home", "channel": "D1",
              "event_ts": "1.1"}
    slack.event(opened, event_id="EvHome1")
    home = wait_for(lambda: fake_slack.home.get("UAPPROVER"), what="the approver's Home")
    value = buttons(home["blocks"])[ids.APPROVE]
    assert value == f"{post.id}:{post.content_hash}"
    before = len(fake_slack.calls_for("views.publish"))
    slack.block_action(ids.APPROVE, value, user_id="UAPPROVER", channel_id="",
                       view={"id": home["id"], "type": "home"})
    wait_for(lambda: status(post) == "scheduled", what="the decision")

    def republished():
        view = fake_slack.home["UAPPROVER"]
        return view if "the post is scheduled" in str(view["blocks"]) else None
    view = wait_for(republished, what="the re-published Home")
    assert ids.APPROVE not in str(view["blocks"])               # nothing waits for them now
    assert len(fake_slack.calls_for("views.publish")) > before
    wait_for(lambda: updates(fake_slack, post), what="the approval message's update")
