"""App Home through Slack: app_home_opened publishes the person's Home (only when it changed),
and the Home's own buttons act through core and re-publish it."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot import approval_flow
from bot import home as bot_home
from bot.app import web_client
from bot.blocks import ids
from core import compose, posts
from db.fields import utcnow
from db.models import AuditLog, OAuthToken, Post, PostTarget, User
from tests.slack_requests import idle, wait_for

CHANNEL = "C0APPROVE"


@pytest.fixture(autouse=True)
def settled(herald):
    bot_home.published.clear()
    yield
    herald.extensions["bolt"].listener_runner.listener_executor.shutdown(wait=True)




@pytest.fixture
def client(herald):
    return web_client(herald.config["HERALD"], "xoxb-herald-test")


@pytest.fixture
def team(make):
    ws = make.workspace("T111", name="acme")
    project = make.project(ws, name="Spring", approval_policy="required", approvals_required=1,
                           approval_channel_id=CHANNEL)
    people = {name: make.user(ws, role=role, slack_user_id=f"U{name.upper()}")
              for name, role in [("author", "editor"), ("approver", "approver"),
                                 ("approver2", "approver")]}
    healthy = make.account(ws, platform="mastodon", project=project, handle="springmasto")
    make.token(healthy, access="access-secret-1", refresh=None)      # Mastodon tokens don't expire
    OAuthToken.update(expires_at=None).where(OAuthToken.account == healthy.id).execute()
    renewing = make.account(ws, platform="linkedin", project=project, handle="springli")
    make.token(renewing, access="access-secret-3", refresh="refresh-secret-3")  # expires in 2 h, renews
    revoked = make.account(ws, platform="bluesky", project=project, handle="spring.bsky",
                           status="needs_reauth", status_detail="The app password was revoked.")
    expired = make.account(ws, platform="x", project=project, handle="springx")
    token = make.token(expired, access="access-secret-2", refresh=None)
    OAuthToken.update(expires_at=utcnow() - timedelta(days=1)).where(OAuthToken.id == token.id).execute()
    return dict(people, ws=ws, project=project, mastodon=healthy, bluesky=revoked, x=expired,
                linkedin=renewing,
                sandbox=make.account(ws, platform="sandbox", project=project, handle="sandy"))


def draft(team, **kw) -> compose.DraftInput:
    values = dict(project_id=str(team["project"].id),
                  account_ids=[str(team["mastodon"].id), str(team["sandbox"].id)],
                  body="Launch day! https://example.com", scheduled_at=utcnow() + timedelta(hours=2))
    values.update(kw)
    return compose.DraftInput(**values)


def submitted(team, client, author=None, **kw) -> Post:
    author = author or team["author"]
    post = compose.save_draft(author, draft(team, **kw))
    posts.submit(author, post.id)
    approval_flow.request_approval(client, Post.get_by_id(post.id))
    return Post.get_by_id(post.id)


def failed(team, make, error="Duplicate content: this status was already posted.") -> PostTarget:
    post = make.post(team["ws"], team["project"], team["author"], body="Went wrong",
                     status="failed", scheduled_at=utcnow() - timedelta(minutes=5))
    return make.target(post, team["sandbox"], status="failed", last_error=error)



def open_home(slack, fake_slack, user_id: str, event_id: str, shown: dict | None = None):
    event = {"type": "app_home_opened", "user": user_id, "channel": "D1", "tab": "home",
             "event_ts": "1.1"}
    if shown is not None:
        event["view"] = shown              # Slack sends the published view back
    before = len(publishes(fake_slack, user_id))
    response = slack.event(event, event_id=event_id)
    assert response.status_code == 200
    return before


def publishes(fake_slack, user_id: str) -> list[dict]:
    return [fake_slack.params(c) for c in fake_slack.calls_for("views.publish")
            if fake_slack.params(c).get("user_id") == user_id]


def published_after(fake_slack, user_id: str, before: int) -> dict:
    return wait_for(lambda: publishes(fake_slack, user_id)[before:], what="views.publish")[0]["view"]


def buttons(view) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for block in view["blocks"]:
        elements = block.get("elements", []) if block["type"] == "actions" else \
            ([block["accessory"]] if "accessory" in block else [])
        for element in elements:
            found.setdefault(element.get("action_id"), []).append(element.get("value"))
    return found


def headers(view) -> list[str]:
    return [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]


def home_click(slack, fake_slack, action_id: str, value: str, user_id: str):
    view = fake_slack.home[user_id]
    response = slack.block_action(action_id, value, user_id=user_id, channel_id="",
                                  view={"id": view["id"], "type": "home"})
    assert response.status_code == 200


def with_notice(fake_slack, user_id: str, fragment: str) -> dict:
    def check():
        view = fake_slack.home.get(user_id) or {}
        return view if fragment in json.dumps(view.get("blocks", [])) else None
    return wait_for(check, what=f"a Home saying {fragment!r}")


# -- publishing --------------------------------------------------------------------------


def test_opening_home_publishes_every_section(slack, fake_slack, team, client, make):
    waiting = submitted(team, client)
    upcoming = submitted(team, client, body="Already approved")
    from core import approvals
    approvals.decide(team["approver2"], upcoming.id, "approved")
    mine = compose.save_draft(team["approver"], draft(team, body="My own idea"))
    target = failed(team, make)

    before = open_home(slack, fake_slack, "UAPPROVER", "EvOpen1")
    view = published_after(fake_slack, "UAPPROVER", before)
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    assert headers(view)[1:] == ["Waiting for your approval", "Upcoming posts", "Your drafts",
                                 "Recent failures", "Connected accounts"]
    found = buttons(view)
    assert found[ids.APPROVE] == [f"{waiting.id}:{waiting.content_hash}"]
    assert found[ids.REQUEST_CHANGES] == found[ids.REJECT] == found[ids.APPROVE]
    assert found[ids.HOME_RETRY_TARGET] == [str(target.id)]
    assert found[ids.HOME_CANCEL_TARGET] == [str(target.id)]
    assert str(upcoming.id) in found[ids.HOME_CANCEL_POST]
    rendered = json.dumps(view["blocks"], ensure_ascii=False)
    assert posts.short_id(mine) in rendered and "My own idea" in rendered
    assert "Duplicate content" in rendered
    assert "@springmasto · :large_green_circle: connected" in rendered
    assert "@springli · :large_green_circle: connected" in rendered
    assert "@spring.bsky · :red_circle: needs reconnecting" in rendered
    assert "The app password was revoked." in rendered
    assert "@springx · :red_circle: token expired" in rendered
    token = OAuthToken.get(OAuthToken.account == team["linkedin"])
    assert f"<!date^{int(token.expires_at.timestamp())}^" in rendered
    assert "secret" not in json.dumps(view)                    # never a token
    # Edit and New post open the compose modal (bot.listeners.views.compose).
    assert found[ids.HOME_EDIT_DRAFT] == [str(mine.id)] and ids.HOME_NEW_POST in found
    assert buttons(view)[ids.HOME_RECONNECT_ACCOUNT]            # unhealthy accounts get a link


def test_an_editor_sees_only_their_own_failures_and_no_approval_section(
        slack, fake_slack, team, client, make):
    failed(team, make)
    other_author = make.user(team["ws"], role="editor", slack_user_id="UOTHER")
    before = open_home(slack, fake_slack, "UOTHER", "EvOpen2")
    view = published_after(fake_slack, "UOTHER", before)
    assert "Waiting for your approval" not in headers(view)
    assert "Recent failures" not in headers(view) and ids.HOME_RETRY_TARGET not in buttons(view)
    assert User.get_by_id(other_author.id)


def test_the_messages_tab_publishes_nothing(slack, fake_slack, team, herald):
    slack.event({"type": "app_home_opened", "user": "UAPPROVER", "channel": "D1",
                 "tab": "messages", "event_ts": "1.1"}, event_id="EvMsgTab")
    idle(herald)
    assert fake_slack.calls_for("views.publish") == []


def test_an_unchanged_home_is_not_published_again_and_a_change_republishes_it(
        slack, fake_slack, team, client, herald):
    before = open_home(slack, fake_slack, "UAPPROVER", "EvA")
    first = published_after(fake_slack, "UAPPROVER", before)
    assert first["private_metadata"].startswith(bot_home.DIGEST_PREFIX)

    # Opened again, Slack sends back what it shows: same content, nothing to publish.
    open_home(slack, fake_slack, "UAPPROVER", "EvB", shown=fake_slack.home["UAPPROVER"])
    idle(herald)
    assert len(publishes(fake_slack, "UAPPROVER")) == 1

    # Even a process with no memory of what it published trusts the view Slack shows.
    bot_home.published.clear()
    open_home(slack, fake_slack, "UAPPROVER", "EvC", shown=fake_slack.home["UAPPROVER"])
    idle(herald)
    assert len(publishes(fake_slack, "UAPPROVER")) == 1

    # A change (a post now waits for them) is published on the next open.
    waiting = submitted(team, client)
    before = open_home(slack, fake_slack, "UAPPROVER", "EvD", shown=fake_slack.home["UAPPROVER"])
    second = published_after(fake_slack, "UAPPROVER", before)
    assert buttons(second)[ids.APPROVE] == [f"{waiting.id}:{waiting.content_hash}"]
    assert second["private_metadata"] != first["private_metadata"]

    # And a Home older than what Slack shows (another process published since) is replaced.
    stale = dict(fake_slack.home["UAPPROVER"], private_metadata=bot_home.DIGEST_PREFIX + "old")
    before = open_home(slack, fake_slack, "UAPPROVER", "EvE", shown=stale)
    assert published_after(fake_slack, "UAPPROVER", before)["blocks"] == second["blocks"]


def test_a_retried_event_does_nothing(slack, fake_slack, team, herald):
    event = {"type": "app_home_opened", "user": "UAPPROVER", "channel": "D1", "tab": "home",
             "event_ts": "1.1"}
    response = slack.event(event, event_id="EvRetry", **{"X-Slack-Retry-Num": "1",
                                                         "X-Slack-Retry-Reason": "http_timeout"})
    assert response.status_code == 200 and response.headers.get("x-slack-no-retries") == "1"
    idle(herald)
    assert fake_slack.calls_for("views.publish") == []


def test_someone_herald_doesnt_know_gets_a_welcome_and_no_rows(slack, fake_slack, team):
    users = User.select().count()
    before = open_home(slack, fake_slack, "UNEWCOMER", "EvNew")
    view = published_after(fake_slack, "UNEWCOMER", before)
    assert "/social" in json.dumps(view["blocks"]) and buttons(view) == {}
    assert User.select().count() == users                   # opening a tab creates nobody


# -- acting on the Home ------------------------------------------------------------------


def test_retry_from_home_reschedules_the_target_and_republishes(
        slack, fake_slack, team, make, rung):
    target = failed(team, make)
    before = open_home(slack, fake_slack, "UAUTHOR", "EvR")
    published_after(fake_slack, "UAUTHOR", before)
    home_click(slack, fake_slack, ids.HOME_RETRY_TARGET, str(target.id), "UAUTHOR")
    view = with_notice(fake_slack, "UAUTHOR", "Retrying now")
    assert ids.HOME_RETRY_TARGET not in buttons(view)
    assert PostTarget.get_by_id(target.id).status == "scheduled"
    assert Post.get_by_id(target.post_id).status == "scheduled"
    wait_for(lambda: rung == [[str(target.id)]], what="the engine's seam")
    assert AuditLog.select().where(AuditLog.action == "target.retried").count() == 1


def test_cancel_a_failure_from_home(slack, fake_slack, team, make):
    target = failed(team, make)
    published = make.target(Post.get_by_id(target.post_id), team["mastodon"], status="published")
    before = open_home(slack, fake_slack, "UAUTHOR", "EvX")
    published_after(fake_slack, "UAUTHOR", before)
    home_click(slack, fake_slack, ids.HOME_CANCEL_TARGET, str(target.id), "UAUTHOR")
    view = with_notice(fake_slack, "UAUTHOR", "won't try that network again")
    assert "Recent failures" not in headers(view)
    assert PostTarget.get_by_id(target.id).status == "cancelled"
    assert PostTarget.get_by_id(published.id).status == "published"
    assert Post.get_by_id(target.post_id).status == "published"      # derived from what's left
    assert AuditLog.select().where(AuditLog.action == "target.cancelled").count() == 1


def test_home_buttons_refuse_other_workspaces_and_strangers(slack, fake_slack, team, make):
    other = make.workspace("T222")
    project = make.project(other)
    author = make.user(other, role="owner")
    theirs = make.target(make.post(other, project, author, status="failed"),
                         make.account(other, platform="sandbox"), status="failed")
    before = open_home(slack, fake_slack, "UAPPROVER", "EvS")
    published_after(fake_slack, "UAPPROVER", before)
    for n, (action_id, value) in enumerate([(ids.HOME_RETRY_TARGET, str(theirs.id)),
                                             (ids.HOME_CANCEL_TARGET, str(theirs.id)),
                                             (ids.HOME_CANCEL_POST, str(theirs.post_id)),
                                             (ids.HOME_CANCEL_POST, "garbage")]):
        home_click(slack, fake_slack, action_id, value, "UAPPROVER")
        with_notice(fake_slack, "UAPPROVER", "doesn't exist")
        # Opening the Home again clears the notice (and shows the next one is new).
        before = open_home(slack, fake_slack, "UAPPROVER", f"EvS{n}", shown=fake_slack.home["UAPPROVER"])
        assert "doesn't exist" not in json.dumps(published_after(fake_slack, "UAPPROVER", before))
    assert PostTarget.get_by_id(theirs.id).status == "failed"
    assert Post.get_by_id(theirs.post_id).status == "failed"


def test_cancel_an_upcoming_post_from_home_updates_its_approval_message(
        slack, fake_slack, team, client):
    post = submitted(team, client)
    before = open_home(slack, fake_slack, "UAUTHOR", "EvU")
    view = published_after(fake_slack, "UAUTHOR", before)
    assert buttons(view)[ids.HOME_CANCEL_POST] == [str(post.id)]
    home_click(slack, fake_slack, ids.HOME_CANCEL_POST, str(post.id), "UAUTHOR")
    with_notice(fake_slack, "UAUTHOR", "Cancelled")
    assert Post.get_by_id(post.id).status == "cancelled"
    message = wait_for(lambda: [c for c in fake_slack.calls_for("chat.update")], what="chat.update")
    blocks = fake_slack.params(message[0])["blocks"]
    assert "cancelled" in json.dumps(blocks) and ids.APPROVE not in json.dumps(blocks)


def test_a_decision_in_the_channel_refreshes_the_other_approvers_home(
        slack, fake_slack, team, client):
    post = submitted(team, client)
    before = open_home(slack, fake_slack, "UAPPROVER2", "EvO")
    assert ids.APPROVE in buttons(published_after(fake_slack, "UAPPROVER2", before))
    value = f"{post.id}:{post.content_hash}"
    count = len(publishes(fake_slack, "UAPPROVER2"))
    slack.block_action(ids.APPROVE, value, user_id="UAPPROVER", channel_id=CHANNEL,
                       message_ts=post.approval_message_ts)
    refreshed = published_after(fake_slack, "UAPPROVER2", count)
    assert ids.APPROVE not in buttons(refreshed)                  # nothing waits for them now
    assert str(post.id) in buttons(refreshed).get(ids.HOME_CANCEL_POST, [])   # it's upcoming


def test_edit_from_home_opens_the_compose_modal(slack, fake_slack, team):
    fake_slack.add_user("UAUTHOR", tz="Europe/Berlin")
    mine = compose.save_draft(team["author"], draft(team, body="Draft to edit"))
    before = open_home(slack, fake_slack, "UAUTHOR", "EvE")
    published_after(fake_slack, "UAUTHOR", before)
    home_click(slack, fake_slack, ids.HOME_EDIT_DRAFT, str(mine.id), "UAUTHOR")
    opened = wait_for(lambda: fake_slack.calls_for("views.open"), what="views.open")[0]
    assert fake_slack.params(opened)["trigger_id"]
    wait_for(lambda: "Draft to edit" in json.dumps(list(fake_slack.views.values())),
             what="the compose modal with the draft")


def test_request_changes_from_home_answers_on_the_home(slack, fake_slack, team, client):
    post = submitted(team, client)
    before = open_home(slack, fake_slack, "UAPPROVER", "EvRC")
    value = buttons(published_after(fake_slack, "UAPPROVER", before))[ids.REQUEST_CHANGES][0]
    home_click(slack, fake_slack, ids.REQUEST_CHANGES, value, "UAPPROVER")
    opened = wait_for(lambda: fake_slack.calls_for("views.open"), what="the reason modal")[0]
    modal = fake_slack.params(opened)["view"]
    assert json.loads(modal["private_metadata"])["origin"] == "home"
    reason = {ids.REASON_BLOCK: {ids.REASON: {"type": "plain_text_input", "value": "Shorter"}}}
    assert slack.view_submission(modal, reason, user_id="UAPPROVER").status_code == 200
    assert Post.get_by_id(post.id).status == "draft"
    view = with_notice(fake_slack, "UAPPROVER", "Sent back to the author")
    assert ids.APPROVE not in buttons(view)
    assert fake_slack.responses == []          # Home clicks have no response_url to answer on
