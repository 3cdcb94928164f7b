"""The two shortcuts open the same compose modal as /social."""
from __future__ import annotations

import json

from bot.blocks import ids
from db.models import Post
from tests.integration.slack.test_compose import (assert_valid_modal, block, compose_view_of,  # noqa: F401
                                                  ephemerals, state, team)
from tests.slack_requests import wait_for


def global_shortcut(slack, **extra) -> dict:
    payload = {"type": "shortcut", "callback_id": ids.SHORTCUT_NEW_POST, "token": "verification_token",
               "action_ts": "1581106241.371594", "trigger_id": slack.trigger_id(),
               "team": {"id": "T111", "domain": "acme"},
               "user": {"id": "U111", "username": "person", "team_id": "T111"}}
    payload.update(extra)
    return payload


def message_shortcut(slack, text: str, **extra) -> dict:
    payload = {"type": "message_action", "callback_id": ids.SHORTCUT_DRAFT_FROM_MESSAGE,
               "token": "verification_token", "action_ts": "1581106241.371594",
               "trigger_id": slack.trigger_id(), "message_ts": "1581106200.000100",
               "team": {"id": "T111", "domain": "acme"},
               "user": {"id": "U111", "username": "person", "team_id": "T111", "name": "person"},
               "channel": {"id": "CNEWS", "name": "news"},
               "message": {"type": "message", "user": "U999", "ts": "1581106200.000100",
                           "text": text},
               "response_url": slack.fake.response_url("shortcut")}
    payload.update(extra)
    return payload


def test_global_shortcut_opens_the_compose_modal(slack, fake_slack, team):
    payload = global_shortcut(slack)
    assert slack.interactive(payload).status_code == 200
    view = wait_for(lambda: compose_view_of(fake_slack), what="compose modal")
    assert fake_slack.params(fake_slack.calls_for("views.open")[0])["trigger_id"] == payload["trigger_id"]
    assert_valid_modal(view)
    assert view["title"]["text"] == "New social post"
    assert "initial_value" not in block(view, ids.COMPOSE_BODY_BLOCK)["element"]
    # No channel to remember: the confirmation will come as a DM.
    assert "c" not in json.loads(view["private_metadata"])


def test_message_shortcut_prefills_the_text_of_the_message(slack, fake_slack, team):
    text = "Big news &amp; more: <https://example.com/launch|our launch> with <@U999|sam> &lt;3"
    assert slack.interactive(message_shortcut(slack, text)).status_code == 200
    view = wait_for(lambda: compose_view_of(fake_slack), what="compose modal")
    body = block(view, ids.COMPOSE_BODY_BLOCK)["element"]["initial_value"]
    assert body == "Big news & more: https://example.com/launch with @sam <3"
    assert json.loads(view["private_metadata"])["c"] == "CNEWS"
    # …and submitting it confirms in that channel.
    slack.view_submission(view, state(project=team["project"], accounts=[team["mastodon"]],
                                      body=body, intent=ids.INTENT_DRAFT))
    assert Post.get().body == body
    note = wait_for(lambda: ephemerals(fake_slack), what="confirmation")[0]
    assert note["channel"] == "CNEWS"


def test_global_shortcut_with_an_expired_trigger_tells_the_person_by_dm(slack, fake_slack, team):
    fake_slack.fail("/api/views.open", status=200, json={"ok": False, "error": "expired_trigger_id"})
    slack.interactive(global_shortcut(slack))
    dm = wait_for(lambda: fake_slack.calls_for("chat.postMessage"), what="a DM")[0]
    params = fake_slack.params(dm)
    assert params["channel"] == "U111" and "try again" in params["text"].lower()
    assert fake_slack.calls_for("views.update") == []


def test_message_shortcut_with_an_expired_trigger_answers_ephemerally(slack, fake_slack, team):
    fake_slack.fail("/api/views.open", status=200, json={"ok": False, "error": "expired_trigger_id"})
    slack.interactive(message_shortcut(slack, "hello"))
    reply = wait_for(lambda: fake_slack.responses, what="ephemeral answer")[0]
    assert reply["response_type"] == "ephemeral" and "try again" in reply["text"].lower()


def test_a_global_shortcut_draft_is_confirmed_by_dm(slack, fake_slack, team):
    slack.interactive(global_shortcut(slack))
    view = wait_for(lambda: compose_view_of(fake_slack), what="compose modal")
    slack.view_submission(view, state(project=team["project"], accounts=[team["mastodon"]],
                                      body="From anywhere", intent=ids.INTENT_DRAFT))
    dm = wait_for(lambda: fake_slack.calls_for("chat.postMessage"), what="a DM")[0]
    assert "Saved draft" in fake_slack.params(dm)["text"]
    assert fake_slack.params(fake_slack.calls_for("conversations.open")[0])["users"] == "U111"
