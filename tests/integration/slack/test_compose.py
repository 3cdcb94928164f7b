"""The compose modal end to end: signed Slack requests into Herald, the fake Slack Web API
on the other side, real rows in the database (Postgres and SQLite)."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from slack_sdk.models.views import View

from bot.blocks import ids
from core import compose as core_compose
from db.fields import utcnow
from db.models import AuditLog, Media, Post, PostTarget, Project
from tests.slack_requests import SlackRequests, idle, wait_for

NEXT_JANUARY = datetime.now(timezone.utc).year + 1


# --------------------------------------------------------------------------------------
# Helpers (the other Slack test modules import these)


@pytest.fixture
def team(make, fake_slack):
    """Workspace T111 (the one the `slack` fixture signs for), an editor U111 in New York,
    a project needing one approval in #CAPPROVE, and two accounts."""
    ws = make.workspace("T111")
    user = make.user(ws, role="editor", slack_user_id="U111", tz=None)
    project = make.project(ws, name="Brand", approval_channel_id="CAPPROVE",
                           approval_policy="required", approvals_required=1, timezone="Europe/Berlin")
    x = make.account(ws, platform="x", project=project, handle="brandx")
    mastodon = make.account(ws, platform="mastodon", project=project, handle="brandm")
    fake_slack.add_user("U111", tz="America/New_York")
    return {"ws": ws, "user": user, "project": project, "x": x, "mastodon": mastodon}


def compose_view_of(fake_slack, callback_id: str = ids.COMPOSE_VIEW):
    views = [v for v in fake_slack.views.values() if v.get("callback_id") == callback_id]
    return views[-1] if views else None


def open_modal(slack, fake_slack, text: str = "", **kw) -> dict:
    response = slack.command(text, **kw)
    assert response.status_code == 200
    return wait_for(lambda: compose_view_of(fake_slack), what="the compose modal")


def modal_text(view: dict) -> str:
    return json.dumps(view)


def block(view: dict, block_id: str) -> dict:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def state(*, project=None, accounts=(), body="", overrides=None, media_url=None, files=None,
          alt="", date=None, time=None, tags="", intent=ids.INTENT_SUBMIT, keep=None) -> dict:
    """Slack's view.state.values for the compose modal."""
    def opt(value):
        return {"text": {"type": "plain_text", "text": str(value)}, "value": str(value)}
    values = {
        ids.COMPOSE_PROJECT_BLOCK: {ids.COMPOSE_PROJECT: {
            "type": "static_select", "selected_option": opt(project.id) if project else None}},
        ids.COMPOSE_ACCOUNTS_BLOCK: {ids.COMPOSE_ACCOUNTS: {
            "type": "multi_static_select", "selected_options": [opt(a.id) for a in accounts]}},
        ids.COMPOSE_BODY_BLOCK: {ids.COMPOSE_BODY: {"type": "plain_text_input", "value": body or None}},
        ids.COMPOSE_MEDIA_URL_BLOCK: {ids.COMPOSE_MEDIA_URL: {"type": "url_text_input", "value": media_url}},
        ids.COMPOSE_MEDIA_FILE_BLOCK: {ids.COMPOSE_MEDIA_FILE: {"type": "file_input", "files": files or []}},
        ids.COMPOSE_ALT_TEXT_BLOCK: {ids.COMPOSE_ALT_TEXT: {"type": "plain_text_input",
                                                            "value": alt or None}},
        ids.COMPOSE_DATE_BLOCK: {ids.COMPOSE_DATE: {"type": "datepicker", "selected_date": date}},
        ids.COMPOSE_TIME_BLOCK: {ids.COMPOSE_TIME: {"type": "timepicker", "selected_time": time}},
        ids.COMPOSE_TAGS_BLOCK: {ids.COMPOSE_TAGS: {"type": "plain_text_input", "value": tags or None}},
        ids.COMPOSE_INTENT_BLOCK: {ids.COMPOSE_INTENT: {"type": "radio_buttons",
                                                        "selected_option": opt(intent)}},
    }
    for account_id, text in (overrides or {}).items():
        values[f"{ids.COMPOSE_OVERRIDE_BLOCK_PREFIX}{account_id}"] = {
            ids.COMPOSE_OVERRIDE: {"type": "plain_text_input", "value": text}}
    if keep is not None:
        values[ids.COMPOSE_KEEP_MEDIA_BLOCK] = {ids.COMPOSE_KEEP_MEDIA: {
            "type": "checkboxes", "selected_options": [opt("keep")] if keep else []}}
    return values


def future_day(days: int = 3) -> str:
    return (utcnow() + timedelta(days=days)).date().isoformat()


def approval_posts(fake_slack, channel: str = "CAPPROVE") -> list:
    return [c for c in fake_slack.calls_for("chat.postMessage")
            if fake_slack.params(c).get("channel") == channel]


def ephemerals(fake_slack) -> list[dict]:
    return [fake_slack.params(c) for c in fake_slack.calls_for("chat.postEphemeral")]


def assert_valid_modal(view: dict) -> None:
    clean = {k: v for k, v in view.items() if k not in ("id", "hash", "state")}
    View(**clean).to_dict()          # raises on Block Kit limits and malformed elements
    assert len(view["title"]["text"]) <= 24 and len(view["blocks"]) <= 100
    assert len(view.get("private_metadata", "")) <= 3000


# --------------------------------------------------------------------------------------
# Opening


def test_social_opens_the_modal_with_the_trigger_id_then_fills_it(slack, fake_slack, team):
    view = open_modal(slack, fake_slack)
    opened = fake_slack.calls_for("views.open")
    assert len(opened) == 1
    params = fake_slack.params(opened[0])
    assert params["trigger_id"] == f"13345224609.738474920.{slack._trigger:08x}"
    assert_valid_modal(params["view"])
    # …then views.update replaced the loading view, with the hash views.open returned
    update = fake_slack.params(fake_slack.calls_for("views.update")[0])
    assert update["view_id"] == view["id"] and update["hash"]
    assert_valid_modal(view)
    project = block(view, ids.COMPOSE_PROJECT_BLOCK)["element"]
    assert project["initial_option"]["value"] == str(team["project"].id)   # the only project
    options = block(view, ids.COMPOSE_ACCOUNTS_BLOCK)["element"]["options"]
    assert {o["value"] for o in options} == {str(team["x"].id), str(team["mastodon"].id)}
    assert {o["text"]["text"] for o in options} == {"X @brandx", "Mastodon @brandm"}
    assert block(view, ids.COMPOSE_ACCOUNTS_BLOCK)["dispatch_action"] is True
    metadata = json.loads(view["private_metadata"])
    assert metadata == {"c": "C111", "z": "America/New_York"}
    assert "America/New_York" in block(view, ids.COMPOSE_TIME_BLOCK)["hint"]["text"]


def test_social_new_prefills_the_text(slack, fake_slack, team):
    view = open_modal(slack, fake_slack, "new hello world, it's launch day")
    body = block(view, ids.COMPOSE_BODY_BLOCK)["element"]
    assert body["initial_value"] == "hello world, it's launch day"


def test_social_new_keeps_line_breaks(slack, fake_slack, team):
    view = open_modal(slack, fake_slack, "NEW\nFirst line\n\nSecond line")
    assert block(view, ids.COMPOSE_BODY_BLOCK)["element"]["initial_value"] == "First line\n\nSecond line"


def test_expired_trigger_id_is_told_ephemerally(slack, fake_slack, team):
    fake_slack.fail("/api/views.open", status=200, json={"ok": False, "error": "expired_trigger_id"})
    assert slack.command("").status_code == 200
    answer = wait_for(lambda: fake_slack.responses, what="an ephemeral answer")
    assert "try again" in answer[0]["text"].lower()
    assert answer[0].get("response_type") == "ephemeral"
    assert fake_slack.calls_for("views.update") == []


def test_first_compose_in_a_fresh_workspace_creates_the_default_project(slack, fake_slack, make):
    ws = make.workspace("T111")
    make.user(ws, role="editor", slack_user_id="U111", tz=None)
    make.account(ws, platform="mastodon", handle="solo")
    fake_slack.add_user("U111", tz="America/New_York")
    view = open_modal(slack, fake_slack, channel_id="CGENERAL")
    project = Project.get(Project.workspace == ws)
    assert (project.name, project.approval_channel_id, project.approval_policy,
            project.approvals_required, project.timezone) == \
        ("Default", "CGENERAL", "required", 1, "America/New_York")
    assert block(view, ids.COMPOSE_PROJECT_BLOCK)["element"]["initial_option"]["value"] == str(project.id)
    assert AuditLog.select().where(AuditLog.action == "project.created").count() == 1
    # A second /social doesn't make another one.
    fake_slack.views.clear()
    open_modal(slack, fake_slack, channel_id="COTHER")
    assert Project.select().where(Project.workspace == ws).count() == 1


def test_default_project_from_a_dm_has_no_approval_channel(slack, fake_slack, make):
    ws = make.workspace("T111")
    make.user(ws, role="editor", slack_user_id="U111", tz=None)
    make.account(ws, platform="mastodon")
    open_modal(slack, fake_slack, channel_id="D0123")
    assert Project.get(Project.workspace == ws).approval_channel_id is None


def test_no_accounts_means_a_link_to_connect_one(slack, fake_slack, make):
    ws = make.workspace("T111")
    make.user(ws, role="editor", slack_user_id="U111")
    make.project(ws, name="Brand")
    slack.command("")
    view = wait_for(lambda: next((v for v in fake_slack.views.values()
                                  if "No social accounts" in modal_text(v)), None), what="notice")
    assert "http://herald.test/accounts" in modal_text(view) and "submit" not in view


def test_an_analyst_cannot_compose(slack, fake_slack, team, make):
    make.user(team["ws"], role="analyst", slack_user_id="U222")
    slack.command("", user_id="U222")
    notice = wait_for(lambda: next((v for v in fake_slack.views.values()
                                    if "Only" in modal_text(v)), None), what="notice")
    assert "can draft and submit posts" in modal_text(notice) and "submit" not in notice
    # Forging the submission doesn't help: core refuses, nothing is saved.
    view = {"id": "VFORGED", "callback_id": ids.COMPOSE_VIEW, "type": "modal",
            "private_metadata": "{}", "title": {"type": "plain_text", "text": "x"}, "blocks": []}
    response = slack.view_submission(view, state(project=team["project"], accounts=[team["x"]],
                                                 body="hi", intent=ids.INTENT_DRAFT), user_id="U222")
    answer = response.get_json()
    assert answer["response_action"] == "update"
    assert "can draft and submit posts" in modal_text(answer["view"])
    assert Post.select().count() == 0


# --------------------------------------------------------------------------------------
# Submitting


def test_save_draft_from_a_submission(slack, fake_slack, team):
    view = open_modal(slack, fake_slack)
    response = slack.view_submission(view, state(
        project=team["project"], accounts=[team["x"], team["mastodon"]], body="  Hello world  ",
        tags="launch, #spring,", intent=ids.INTENT_DRAFT))
    assert response.status_code == 200 and not response.data          # plain ack: modal closes
    post = Post.get()
    assert (post.status, post.body, post.tags, post.scheduled_at) == ("draft", "Hello world",
                                                                      ["launch", "spring"], None)
    assert post.author_id == team["user"].id and post.project_id == team["project"].id
    assert {t.account_id for t in PostTarget.select()} == {team["x"].id, team["mastodon"].id}
    note = wait_for(lambda: ephemerals(fake_slack), what="confirmation")[0]
    assert note["channel"] == "C111" and note["user"] == "U111" and "Saved draft" in note["text"]
    assert approval_posts(fake_slack) == []


def test_submit_posts_the_approval_message_in_the_projects_channel(slack, fake_slack, team):
    view = open_modal(slack, fake_slack)
    response = slack.view_submission(view, state(
        project=team["project"], accounts=[team["x"]], body="Launch!",
        date=f"{NEXT_JANUARY}-01-15", time="09:00"))
    assert response.status_code == 200 and not response.data
    post = Post.get()
    assert post.status == "pending_approval"
    # 09:00 in New York in January (EST, UTC-5) is 14:00 UTC
    assert post.scheduled_at == datetime(NEXT_JANUARY, 1, 15, 14, 0, tzinfo=timezone.utc)
    assert post.timezone == "America/New_York"
    message = fake_slack.params(wait_for(lambda: approval_posts(fake_slack), what="approval")[0])
    assert post.id.hex[:8] in json.dumps(message["blocks"])
    assert wait_for(lambda: Post.get_by_id(post.id).approval_message_ts, what="ts saved")
    note = wait_for(lambda: ephemerals(fake_slack), what="confirmation")[0]
    assert "for approval" in note["text"] and "<!date^" in note["text"]


def test_the_projects_zone_is_used_when_slack_has_none(slack, fake_slack, team):
    fake_slack.users.pop("U111")                      # users.info: user_not_found
    view = open_modal(slack, fake_slack)
    assert "z" not in json.loads(view["private_metadata"])
    assert "Europe/Berlin time" in block(view, ids.COMPOSE_TIME_BLOCK)["hint"]["text"]
    slack.view_submission(view, state(project=team["project"], accounts=[team["x"]], body="Hi",
                                      date=f"{NEXT_JANUARY}-01-15", time="09:00"))
    # Europe/Berlin in January is UTC+1
    assert Post.get().scheduled_at == datetime(NEXT_JANUARY, 1, 15, 8, 0, tzinfo=timezone.utc)
    wait_for(lambda: ephemerals(fake_slack), what="confirmation")


def test_policy_none_schedules_straight_away(slack, fake_slack, team):
    Project.update(approval_policy="none").where(Project.id == team["project"].id).execute()
    view = open_modal(slack, fake_slack)
    slack.view_submission(view, state(project=team["project"], accounts=[team["mastodon"]],
                                      body="No approval needed", date=future_day(), time="10:30"))
    post = Post.get()
    assert post.status == "scheduled"
    assert {t.status for t in PostTarget.select()} == {"scheduled"}
    note = wait_for(lambda: ephemerals(fake_slack), what="confirmation")[0]
    assert note["text"].startswith("Scheduled")
    assert f"<!date^{int(post.scheduled_at.timestamp())}^" in note["text"]
    assert approval_posts(fake_slack) == []


@pytest.mark.parametrize("values, block_id, words", [
    (lambda t: state(project=t["project"], accounts=[t["x"]], body="Too late",
                     date=(utcnow() - timedelta(days=2)).date().isoformat(), time="09:00"),
     ids.COMPOSE_DATE_BLOCK, "already passed"),
    (lambda t: state(project=t["project"], accounts=[t["x"]], body="a" * 281,
                     date=future_day(), time="09:00"),
     ids.COMPOSE_BODY_BLOCK, "281"),
    (lambda t: state(project=t["project"], accounts=[], body="Nobody to post to",
                     intent=ids.INTENT_DRAFT),
     ids.COMPOSE_ACCOUNTS_BLOCK, "at least one account"),
    (lambda t: state(project=t["project"], accounts=[t["mastodon"]], body="Look",
                     media_url="https://example.com/report.pdf", intent=ids.INTENT_DRAFT),
     ids.COMPOSE_MEDIA_URL_BLOCK, "image or a video"),
    (lambda t: state(project=t["project"], accounts=[t["mastodon"]], body="No time",
                     intent=ids.INTENT_SUBMIT),
     ids.COMPOSE_DATE_BLOCK, "Pick when to publish"),
    (lambda t: state(project=t["project"], accounts=[t["mastodon"]], body="Half a date",
                     date=future_day(), intent=ids.INTENT_DRAFT),
     ids.COMPOSE_TIME_BLOCK, "time too"),
    (lambda t: state(project=None, accounts=[t["mastodon"]], body="Which project?",
                     intent=ids.INTENT_DRAFT),
     ids.COMPOSE_PROJECT_BLOCK, "project"),
], ids=["past-time", "x-281", "no-account", "bad-media-type", "submit-without-time",
        "date-without-time", "no-project"])
def test_invalid_input_answers_inline_and_saves_nothing(slack, fake_slack, team, values,
                                                        block_id, words):
    view = open_modal(slack, fake_slack)
    response = slack.view_submission(view, values(team))
    answer = response.get_json()
    assert answer["response_action"] == "errors"
    assert block_id in answer["errors"] and words in answer["errors"][block_id]
    assert all(key in {b.get("block_id") for b in view["blocks"]} for key in answer["errors"])
    assert Post.select().count() == 0 and PostTarget.select().count() == 0
    assert approval_posts(fake_slack) == [] and ephemerals(fake_slack) == []


def test_an_override_over_the_limit_is_shown_on_its_own_input(slack, fake_slack, team):
    view = open_modal(slack, fake_slack)
    x = team["x"]
    response = slack.view_submission(view, state(
        project=team["project"], accounts=[x, team["mastodon"]], body="Short and fine",
        overrides={str(x.id): "b" * 300}, date=future_day(), time="09:00"))
    errors = response.get_json()["errors"]
    assert list(errors) == [f"{ids.COMPOSE_OVERRIDE_BLOCK_PREFIX}{x.id}"]
    assert "X @brandx" in errors[f"{ids.COMPOSE_OVERRIDE_BLOCK_PREFIX}{x.id}"]
    assert Post.select().count() == 0


def test_overrides_are_saved_per_account(slack, fake_slack, team):
    view = open_modal(slack, fake_slack)
    x, masto = team["x"], team["mastodon"]
    slack.view_submission(view, state(project=team["project"], accounts=[x, masto], body="Main",
                                      overrides={str(x.id): "Short for X", "not-chosen": "ignored"},
                                      intent=ids.INTENT_DRAFT))
    texts = {t.account_id: t.text_override for t in PostTarget.select()}
    assert texts == {x.id: "Short for X", masto.id: None}
    wait_for(lambda: ephemerals(fake_slack), what="confirmation")


def test_a_slack_file_becomes_media_served_by_herald(slack, fake_slack, team):
    fake_slack.files["F123"] = {"id": "F123", "name": "cat.png", "mimetype": "image/png", "size": 2048}
    view = open_modal(slack, fake_slack)
    slack.view_submission(view, state(
        project=team["project"], accounts=[team["mastodon"]], body="Cat",
        files=[{"id": "F123", "name": "cat.png", "mimetype": "image/png"}], alt="A cat",
        intent=ids.INTENT_DRAFT))
    media = Media.get()
    assert (media.source, media.slack_file_id, media.mime, media.size, media.alt_text) == \
        ("slack_file", "F123", "image/png", 2048, "A cat")
    assert media.url == f"http://herald.test/media/{media.id}"
    assert fake_slack.params(fake_slack.calls_for("files.info")[0])["file"] == "F123"
    wait_for(lambda: ephemerals(fake_slack), what="confirmation")


def test_a_slack_file_that_isnt_an_image_or_video_is_refused(slack, fake_slack, team):
    # The payload claims an image; files.info (the source Herald trusts) says PDF.
    fake_slack.files["F9"] = {"id": "F9", "name": "deck.pdf", "mimetype": "application/pdf",
                              "pretty_type": "PDF"}
    view = open_modal(slack, fake_slack)
    response = slack.view_submission(view, state(
        project=team["project"], accounts=[team["mastodon"]], body="Deck",
        files=[{"id": "F9", "name": "deck.pdf", "mimetype": "image/png"}], intent=ids.INTENT_DRAFT))
    errors = response.get_json()["errors"]
    assert "“deck.pdf” is PDF" in errors[ids.COMPOSE_MEDIA_FILE_BLOCK]
    assert Post.select().count() == 0 and Media.select().count() == 0


def test_a_double_submitted_view_creates_one_post(herald, slack, fake_slack, team):
    view = open_modal(slack, fake_slack)
    values = state(project=team["project"], accounts=[team["x"]], body="Only once",
                   date=future_day(), time="12:00")
    first = slack.view_submission(view, values)
    second = slack.view_submission(view, values)
    assert first.status_code == second.status_code == 200 and not second.data
    assert Post.select().count() == 1 and PostTarget.select().count() == 1
    wait_for(lambda: approval_posts(fake_slack), what="approval message")
    wait_for(lambda: ephemerals(fake_slack), what="confirmation")
    idle(herald)   # every listener has finished: anything the duplicate would send is out
    assert len(approval_posts(fake_slack)) == 1 and len(ephemerals(fake_slack)) == 1
    assert AuditLog.select().where(AuditLog.action == "post.created").count() == 1


def test_concurrent_duplicate_submissions_create_one_post(herald, fake_slack, team):
    from tests.conftest import SIGNING_SECRET
    view = {"id": "VRACE0001", "hash": "1.h", "callback_id": ids.COMPOSE_VIEW, "type": "modal",
            "private_metadata": json.dumps({"c": "C111", "z": "UTC"}),
            "title": {"type": "plain_text", "text": "New social post"}, "blocks": []}
    values = state(project=team["project"], accounts=[team["mastodon"]], body="Race",
                   date=future_day(), time="08:00")
    barrier = threading.Barrier(4)
    answers = []

    def submit():
        sender = SlackRequests(herald.test_client(), SIGNING_SECRET, fake_slack)
        barrier.wait()
        response = sender.view_submission(view, values)
        answers.append((response.status_code, response.data))

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [(200, b"")] * 4          # every one closes the modal, none errs
    assert Post.select().count() == 1
    assert Post.get().id == core_compose.keyed_post_id(team["user"], "slack-view:VRACE0001")
    wait_for(lambda: approval_posts(fake_slack), what="approval message")
    wait_for(lambda: ephemerals(fake_slack), what="confirmation")
    assert len(approval_posts(fake_slack)) == 1


def test_a_forged_project_from_another_workspace_is_refused(slack, fake_slack, team, make):
    other = make.workspace()
    foreign = make.project(other, name="Theirs")
    view = open_modal(slack, fake_slack)
    response = slack.view_submission(view, state(project=foreign, accounts=[team["x"]], body="Hi",
                                                 intent=ids.INTENT_DRAFT))
    assert ids.COMPOSE_PROJECT_BLOCK in response.get_json()["errors"]
    assert Post.select().count() == 0


def test_forged_metadata_cannot_edit_another_workspaces_post(slack, fake_slack, team, make):
    other = make.workspace()
    outsider = make.user(other, role="owner")
    foreign = make.post(other, make.project(other), outsider, body="Their words")
    view = open_modal(slack, fake_slack)
    view["private_metadata"] = json.dumps({"p": str(foreign.id), "c": "C111"})
    response = slack.view_submission(view, state(project=team["project"], accounts=[team["x"]],
                                                 body="Hijacked", intent=ids.INTENT_DRAFT))
    answer = response.get_json()
    assert answer["response_action"] == "update"
    assert "doesn't exist" in modal_text(answer["view"])
    assert Post.get_by_id(foreign.id).body == "Their words"
    assert Post.select().count() == 1


# --------------------------------------------------------------------------------------
# The accounts select dispatches: per-account inputs appear, typed values stay


def test_choosing_accounts_adds_an_override_input_for_each(slack, fake_slack, team):
    view = open_modal(slack, fake_slack)
    x, masto = team["x"], team["mastodon"]
    current = dict(view, state={"values": state(project=team["project"], accounts=[x, masto],
                                                body="Typed already", tags="kept")})
    response = slack.block_action(ids.COMPOSE_ACCOUNTS, block_id=ids.COMPOSE_ACCOUNTS_BLOCK,
                                  view=current)
    assert response.status_code == 200
    updated = wait_for(lambda: [fake_slack.params(c) for c in fake_slack.calls_for("views.update")][1:],
                       what="views.update")[0]
    assert updated["view_id"] == view["id"] and updated["hash"] == view["hash"]
    new = updated["view"]
    assert_valid_modal(new)
    block_ids = [b.get("block_id") for b in new["blocks"]]
    assert f"{ids.COMPOSE_OVERRIDE_BLOCK_PREFIX}{x.id}" in block_ids
    assert f"{ids.COMPOSE_OVERRIDE_BLOCK_PREFIX}{masto.id}" in block_ids
    label = block(new, f"{ids.COMPOSE_OVERRIDE_BLOCK_PREFIX}{x.id}")["label"]["text"]
    assert label == "Text for X @brandx only"
    assert block(new, ids.COMPOSE_BODY_BLOCK)["element"]["initial_value"] == "Typed already"
    assert block(new, ids.COMPOSE_TAGS_BLOCK)["element"]["initial_value"] == "kept"
    assert {o["value"] for o in block(new, ids.COMPOSE_ACCOUNTS_BLOCK)["element"]["initial_options"]} \
        == {str(x.id), str(masto.id)}
    assert "X @brandx 13/280" in modal_text(block(new, ids.COMPOSE_LENGTHS_BLOCK))
    assert new["private_metadata"] == view["private_metadata"]


# --------------------------------------------------------------------------------------
# Many accounts: an external select and the options listener


def test_over_100_accounts_use_an_external_select_fed_by_the_options_listener(slack, fake_slack, team, make):
    for n in range(100):
        make.account(team["ws"], platform="mastodon", project=team["project"], handle=f"bulk{n:03d}")
    view = open_modal(slack, fake_slack)
    element = block(view, ids.COMPOSE_ACCOUNTS_BLOCK)["element"]
    assert element["type"] == "multi_external_select" and element["min_query_length"] == 0
    assert json.loads(view["private_metadata"])["x"] == 1
    payload = {"type": "block_suggestion", "action_id": ids.COMPOSE_ACCOUNTS,
               "block_id": ids.COMPOSE_ACCOUNTS_BLOCK, "value": "bulk01",
               "team": {"id": "T111", "domain": "acme"}, "user": {"id": "U111", "team_id": "T111"},
               "api_app_id": "A111", "view": view}
    options = slack.interactive(payload).get_json()["options"]
    assert [o["text"]["text"] for o in options] == [f"Mastodon @bulk{n:03d}" for n in range(10, 20)]
    payload["value"] = ""
    assert len(slack.interactive(payload).get_json()["options"]) == 100
    # Someone from another workspace asking gets nothing of ours.
    payload.update(value="bulk", team={"id": "T999", "domain": "other"},
                   user={"id": "U999", "team_id": "T999"})
    assert slack.interactive(payload).get_json()["options"] == []


# --------------------------------------------------------------------------------------
# Editing a draft (the Edit button in /social drafts)


def test_edit_reopens_the_modal_on_the_draft_and_saves_the_same_post(slack, fake_slack, team):
    draft = core_compose.save_draft(team["user"], core_compose.DraftInput(
        project_id=str(team["project"].id), account_ids=[str(team["x"].id)], body="First go",
        scheduled_at=datetime(NEXT_JANUARY, 1, 15, 14, 0, tzinfo=timezone.utc), tags=["one"]))
    response = slack.block_action(ids.DRAFT_EDIT, str(draft.id))
    assert response.status_code == 200
    view = wait_for(lambda: compose_view_of(fake_slack), what="edit modal")
    assert view["title"]["text"] == "Edit post"
    assert json.loads(view["private_metadata"])["p"] == str(draft.id)
    assert block(view, ids.COMPOSE_BODY_BLOCK)["element"]["initial_value"] == "First go"
    assert block(view, ids.COMPOSE_DATE_BLOCK)["element"]["initial_date"] == f"{NEXT_JANUARY}-01-15"
    assert block(view, ids.COMPOSE_TIME_BLOCK)["element"]["initial_time"] == "09:00"   # New York
    assert [o["value"] for o in block(view, ids.COMPOSE_ACCOUNTS_BLOCK)["element"]["initial_options"]] \
        == [str(team["x"].id)]
    slack.view_submission(view, state(project=team["project"], accounts=[team["x"]], body="Second go",
                                      date=f"{NEXT_JANUARY}-01-15", time="09:00",
                                      intent=ids.INTENT_DRAFT))
    assert Post.select().count() == 1
    assert Post.get_by_id(draft.id).body == "Second go"
    note = wait_for(lambda: ephemerals(fake_slack), what="confirmation")[0]
    assert "Updated draft" in note["text"]


def test_edit_with_another_workspaces_post_id_is_refused(slack, fake_slack, team, make):
    other = make.workspace()
    outsider = make.user(other, role="owner")
    foreign = make.post(other, make.project(other), outsider, body="Not yours")
    slack.block_action(ids.DRAFT_EDIT, str(foreign.id))
    notice = wait_for(lambda: next((v for v in fake_slack.views.values()
                                    if "doesn't exist" in modal_text(v)), None), what="notice")
    assert "submit" not in notice and str(foreign.id) not in notice.get("private_metadata", "")
    assert Post.get_by_id(foreign.id).body == "Not yours"


def test_editing_keeps_or_drops_an_attached_slack_file(slack, fake_slack, team):
    media_id = "6f1c3a34-0d7e-4d55-9a57-1f2b3c4d5e6f"
    draft = core_compose.save_draft(team["user"], core_compose.DraftInput(
        project_id=str(team["project"].id), account_ids=[str(team["mastodon"].id)], body="Cat",
        media=[core_compose.MediaInput(url=f"http://herald.test/media/{media_id}", source="slack_file",
                                       mime="image/png", slack_file_id="F1", alt_text="A cat",
                                       id=media_id)]))
    slack.block_action(ids.DRAFT_EDIT, str(draft.id))
    view = wait_for(lambda: compose_view_of(fake_slack), what="edit modal")
    assert "Slack file F1" in modal_text(block(view, ids.COMPOSE_KEEP_MEDIA_BLOCK))
    assert block(view, ids.COMPOSE_ALT_TEXT_BLOCK)["element"]["initial_value"] == "A cat"
    common = dict(project=team["project"], accounts=[team["mastodon"]], intent=ids.INTENT_DRAFT)
    slack.view_submission(view, state(body="Cat, kept", keep=True, alt="A cat", **common))
    kept = Media.get()
    assert (str(kept.id), kept.slack_file_id) == (media_id, "F1")
    assert kept.url == f"http://herald.test/media/{media_id}"
    slack.view_submission(view, state(body="Cat, dropped", keep=False, **common))
    assert Media.select().count() == 0 and Post.get_by_id(draft.id).body == "Cat, dropped"
    wait_for(lambda: len(ephemerals(fake_slack)) == 2, what="confirmations")


def test_bluesky_counts_graphemes(slack, fake_slack, team, make):
    sky = make.account(team["ws"], platform="bluesky", project=team["project"],
                       handle="brand.bsky.social")
    view = open_modal(slack, fake_slack)
    thumbs = "👍🏽"                      # two code points, one grapheme
    too_long = slack.view_submission(view, state(project=team["project"], accounts=[sky],
                                                 body=thumbs * 301, intent=ids.INTENT_DRAFT))
    assert "Bluesky" in too_long.get_json()["errors"][ids.COMPOSE_BODY_BLOCK]
    fits = slack.view_submission(view, state(project=team["project"], accounts=[sky],
                                             body=thumbs * 300, intent=ids.INTENT_DRAFT))
    assert not fits.data and Post.get().body == thumbs * 300
    wait_for(lambda: ephemerals(fake_slack), what="confirmation")
