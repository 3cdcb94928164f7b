"""Token refresh under a lock, the periodic refresh list, the notification outbox, result blocks."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from bot.blocks import ids
from bot.blocks.results import account_needs_reauth, lateness_words, resolved, target_result
from core import networks, notify, publishing, tokens
from db import database
from db.fields import utcnow
from db.models import OAuthToken, PostTarget, SocialAccount


def test_twenty_concurrent_refreshes_of_a_rotating_token_make_one_request(engine):
    account = engine.team["account"]
    OAuthToken.update(expires_at=utcnow() + timedelta(minutes=1)).where(OAuthToken.account == account.id).execute()
    adapter = networks.adapter("sandbox")
    outcomes, barrier = [], threading.Barrier(20, timeout=30)

    def refresh():
        with database.connection_context():
            barrier.wait()
            outcomes.append(tokens.refresh_account(account.id, engine.cfg.refresh_ahead))

    database.close()          # the pool holds 20: one per thread

    threads = [threading.Thread(target=refresh) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert engine.fake.stats.refreshes == 1 and engine.fake.stats.invalid_grants == 0
    assert sorted(outcomes) == ["fresh"] * 19 + ["refreshed"]
    token = OAuthToken.get(OAuthToken.account == account.id)
    assert token.expires_at > utcnow() + timedelta(hours=1)
    assert adapter.capabilities.rotates_refresh_token
    assert SocialAccount.get_by_id(account.id).status == "active"


def test_a_forced_refresh_after_a_401_is_skipped_when_someone_already_refreshed(engine):
    account = engine.team["account"]
    adapter = networks.adapter("sandbox")
    old = OAuthToken.get(OAuthToken.account == account.id).access_token.reveal()
    _, first = tokens.refresh(account, adapter, force=True, seen_access=old)
    _, second = tokens.refresh(account, adapter, force=True, seen_access=old)
    assert (first, second) == (True, False) and engine.fake.stats.refreshes == 1


def test_the_refresh_list_uses_each_tokens_lifetime(engine):
    now = utcnow()
    account = engine.team["account"]
    # A 2 h token is refreshed in its last 30 min; a 60-day one in its last 6 h (the cap).
    OAuthToken.update(expires_at=now + timedelta(minutes=40), last_refreshed_at=now - timedelta(minutes=80)) \
        .where(OAuthToken.account == account.id).execute()
    assert tokens.due_for_refresh(now, engine.cfg.refresh_ahead) == []
    OAuthToken.update(expires_at=now + timedelta(minutes=20)).where(OAuthToken.account == account.id).execute()
    assert tokens.due_for_refresh(now, engine.cfg.refresh_ahead) == [str(account.id)]
    long = engine.account("acct-long")
    OAuthToken.update(expires_at=now + timedelta(hours=5), last_refreshed_at=now - timedelta(days=59)) \
        .where(OAuthToken.account == long.id).execute()
    assert str(long.id) in tokens.due_for_refresh(now, timedelta(hours=6))
    SocialAccount.update(status="needs_reauth").where(SocialAccount.id == long.id).execute()
    assert str(long.id) not in tokens.due_for_refresh(now, timedelta(hours=6))


def test_needs_reauth_is_announced_once(engine):
    account = engine.team["account"]
    assert tokens.mark_needs_reauth(account.id, "refused")
    assert not tokens.mark_needs_reauth(account.id, "refused again")
    assert engine.announced == [("account", str(account.id))]


def test_the_outbox_remembers_what_slack_was_told(engine):
    target = engine.target()
    assert publishing.publish(target.id).kind == "published"
    note = notify.target_note(target.id)
    assert note.status == "published" and note.channel == "C0APPROVE" and note.url
    assert note.thread_ts == "1700000000.000100" and 0 <= note.lateness < 5
    later = utcnow() + timedelta(minutes=3)
    assert notify.unsent_targets(later) == [str(target.id)]
    notify.mark_notified(note, channel="C0APPROVE", ts="1.2")
    assert notify.target_note(target.id) is None
    assert notify.unsent_targets(later) == []
    # A later change (a retry that fails this time) needs telling again.
    PostTarget.update(status="failed", last_error="gone").where(PostTarget.id == target.id).execute()
    assert notify.target_note(target.id).status == "failed"


def test_the_account_note_points_at_the_accounts_page(engine):
    account = engine.team["account"]
    engine.target()
    tokens.mark_needs_reauth(account.id, "X refused the refresh token")
    note = notify.account_note(account.id, "https://herald.example/")
    assert note.reconnect_url == "https://herald.example/accounts" and note.waiting == 1
    assert note.channel == "C0APPROVE"
    text, blocks = account_needs_reauth(note, "Sandbox")
    button = blocks[1]["elements"][0]
    assert button["action_id"] == ids.RECONNECT_ACCOUNT and button["url"] == note.reconnect_url
    assert "1 scheduled post is waiting" in blocks[0]["text"]["text"]


@pytest.mark.parametrize("status,action_ids", [
    ("published", []), ("failed", [ids.RETRY_TARGET]),
    ("needs_review", [ids.MARK_POSTED, ids.PUBLISH_AGAIN]), ("missed", [])])
def test_result_blocks(status, action_ids):
    now = utcnow()
    note = notify.TargetNote(target_id="t" * 36, post_id="p", workspace_id="w", status=status,
                             platform="x", handle="@brand", channel="C1", thread_ts="1.1",
                             text="Hi", url="https://x.com/brand/status/1", published_at=now,
                             due_at=now - timedelta(seconds=0.4), error="X <said> no", attempts=2)
    text, blocks = target_result(note, "X")
    actions = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert actions == action_ids
    assert "<said>" not in str(blocks)                     # user-visible errors are escaped
    if status == "published":
        assert "0.4 s late" in blocks[0]["text"]["text"] and "View the post" in blocks[0]["text"]["text"]
    after = resolved(blocks, "Done by <@U1>")
    assert all(b["type"] != "actions" for b in after) and after[-1]["type"] == "context"


def test_lateness_words():
    assert [lateness_words(s) for s in (0.01, 0.4, 75, 7200)] == ["on time", "0.4 s late", "1 min late",
                                                                  "2.0 h late"]
