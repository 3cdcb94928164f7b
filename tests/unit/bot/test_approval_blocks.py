"""The approval message and the reason modal: pure builders, valid Block Kit."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.blocks import ids
from bot.blocks.approval import ApprovalRequest, Decision, TargetPreview, approval_message, \
    superseded_message
from bot.blocks.reason import METADATA_LIMIT, ReasonContext, notice_view, reason_view

AT = datetime(2030, 5, 1, 9, 30, tzinfo=timezone.utc)
HASH = "ab" * 32


def request(**kw) -> ApprovalRequest:
    values = dict(post_id="0b5e8f6a-1111-4222-8333-944445555666", short_id="0b5e8f6a",
                  content_hash=HASH, project="Spring <launch> & co", author_slack_id="UAUTHOR",
                  status="pending_approval", scheduled_at=AT,
                  targets=[TargetPreview("Mastodon", "brand", "Hello <world> & friends", 23, 500,
                                         "characters")],
                  needed=1)
    values.update(kw)
    return ApprovalRequest(**values)


def actions_of(blocks):
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def all_text(blocks) -> str:
    return json.dumps(blocks)


def valid_blocks(blocks):
    for block in blocks:                      # slack_sdk's models validate as they serialise
        assert Block.parse(block).to_dict()["type"] == block["type"]


def test_a_pending_post_has_three_buttons_carrying_id_and_hash():
    text, blocks = approval_message(request())
    assert text and "UAUTHOR" in text
    buttons = actions_of(blocks)
    assert [b["action_id"] for b in buttons] == [ids.APPROVE, ids.REQUEST_CHANGES, ids.REJECT]
    assert {b["value"] for b in buttons} == {f"0b5e8f6a-1111-4222-8333-944445555666:{HASH}"}
    assert f"<!date^{int(AT.timestamp())}^" in all_text(blocks)
    valid_blocks(blocks)


def test_user_text_is_escaped():
    _, blocks = approval_message(request())
    rendered = all_text(blocks)
    assert "<world>" not in rendered and "&lt;world&gt;" in rendered
    assert "Spring &lt;launch&gt; &amp; co" in rendered


def test_partial_quorum_shows_the_count_and_keeps_the_buttons():
    decided = Decision("UAPPROVER", "approved", AT)
    _, blocks = approval_message(request(needed=2, approvals=1, decisions=[decided]))
    rendered = all_text(blocks)
    assert "1 of 2 approvals" in rendered and "<@UAPPROVER> approved" in rendered
    assert len(actions_of(blocks)) == 3


@pytest.mark.parametrize("status, decision, words", [
    ("scheduled", "approved", "approved and scheduled"),
    ("draft", "changes_requested", "back with the author"),
    ("rejected", "rejected", "rejected"),
])
def test_once_decided_the_buttons_go_and_who_and_when_stay(status, decision, words):
    made = Decision("UAPPROVER", decision, AT, comment="Fix <the> link")
    _, blocks = approval_message(request(status=status, decisions=[made]))
    rendered = all_text(blocks)
    assert actions_of(blocks) == []
    assert "<@UAPPROVER>" in rendered and words in rendered
    assert f"<!date^{int(AT.timestamp())}^" in rendered
    assert "Fix &lt;the&gt; link" in rendered
    valid_blocks(blocks)


def test_a_superseded_message_has_no_buttons_and_points_below():
    text, blocks = superseded_message(request(), AT)
    assert actions_of(blocks) == []
    assert "edited" in text.lower() and "new version is below" in all_text(blocks)
    valid_blocks(blocks)


def test_a_long_text_stays_within_the_section_limit():
    long = TargetPreview("Sandbox", "brand", "x" * 5000, 5000, 5000, "characters")
    _, blocks = approval_message(request(targets=[long]))
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    valid_blocks(blocks)


# -- reason modal -------------------------------------------------------------------------


@pytest.mark.parametrize("decision", ["changes_requested", "rejected"])
def test_the_reason_modal_is_valid_and_carries_its_context(decision):
    context = ReasonContext("0b5e8f6a-1111-4222-8333-944445555666", HASH, decision, "C1", "1.2",
                            "https://hooks.slack.com/actions/T1/1/x", "message")
    view = reason_view(context)
    assert view["callback_id"] == ids.REASON_VIEW
    assert view["blocks"][0]["block_id"] == ids.REASON_BLOCK
    assert view["blocks"][0]["element"]["action_id"] == ids.REASON
    View(**view).to_dict()                  # raises on a title over 24, > 100 blocks, …
    assert ReasonContext.load(view["private_metadata"]) == context


def test_metadata_stays_under_slacks_limit_and_garbage_is_refused():
    huge = ReasonContext("p", HASH, "rejected", response_url="https://x/" + "a" * 4000)
    assert len(huge.dump()) <= METADATA_LIMIT
    assert ReasonContext.load(huge.dump()).response_url == ""
    for garbage in (None, "", "not json", "[]", json.dumps({"post_id": "p", "decision": "approved"}),
                    json.dumps({"decision": "rejected"})):
        assert ReasonContext.load(garbage) is None


def test_a_notice_has_nothing_to_submit():
    view = notice_view("Request changes and more words", "You can't <approve> your own post")
    assert "submit" not in view and len(view["title"]["text"]) <= 24
    assert "&lt;approve&gt;" in json.dumps(view)
    View(**view).to_dict()
