"""The publishing engine end to end with real consumer processes (see conftest.py)."""
from __future__ import annotations

import time
from datetime import timedelta

import redis

from core import compose, posts
from db.fields import utcnow
from db.models import OAuthToken, Post, PostTarget, PublishAttempt, SocialAccount
from tests.integration.engine.conftest import CHANNEL, wait_until


def settled(world, statuses=("published", "failed", "needs_review", "missed")):
    return all(t.status in statuses for t in world.targets())


def test_a_post_scheduled_3_s_ahead_is_published_once_within_2_s_of_its_time(world):
    consumer = world.consumer(4).start().wait_ready()
    due = utcnow() + timedelta(seconds=3)
    post = world.schedule(due)
    [target] = world.targets(post)
    wait_until(lambda: PostTarget.get_by_id(target.id).status == "published", 15,
               "the post to go out", interval=0.02)
    [created] = world.fake.live_posts()
    late = created.created_at - due.timestamp()
    assert 0 <= late < 2.0, f"published {late:.3f} s after its time"
    assert world.fake.stats.publish_requests == 1 and world.fake.duplicates() == {"keys": {}, "targets": {}}
    [attempt] = PublishAttempt.select().where(PublishAttempt.target == target.id)
    assert attempt.state == "accepted"
    # The approval thread hears about it, with a link to the live post.
    message = wait_until(lambda: [m for (c, _), m in list(world.slack.messages.items())
                                  if c == CHANNEL and m["thread_ts"] == post.approval_message_ts], 10,
                         "the result in the approval thread")[0]
    assert created.id in str(message["blocks"])
    assert "on time" in str(message["blocks"]) or " s late" in str(message["blocks"])
    assert Post.get_by_id(post.id).status == "published"
    assert "Traceback" not in consumer.output()


def test_cancelled_and_edited_posts_are_not_published_from_stale_bells(world):
    world.consumer(4).start().wait_ready()
    due = utcnow() + timedelta(seconds=2)
    cancelled = world.schedule(due)
    edited = world.schedule(due)
    control = world.schedule(due)
    posts.cancel(world.team["author"], cancelled.id)
    later = due + timedelta(seconds=2)
    draft = compose.DraftInput(project_id=str(world.team["project"].id),
                               account_ids=[str(world.team["account"].id)], body="Edited text",
                               scheduled_at=later)
    compose.save_draft(world.team["author"], draft, edited.id)     # back to pending approval
    assert Post.get_by_id(edited.id).status == "pending_approval"
    [control_target] = world.targets(control)
    wait_until(lambda: PostTarget.get_by_id(control_target.id).status == "published", 15, "the control post")
    import tasks
    wait_until(lambda: tasks.huey.pending_count() == 0 and tasks.huey.scheduled_count() == 0, 10,
               "every bell (the stale ones too) to have been taken")
    assert [p.target for p in world.fake.live_posts()] == [str(control_target.id)]
    # Approved again for the later time: it goes out once, at the new time, with the new text.
    posts.submit(world.team["author"], edited.id)
    from core.approvals import decide
    decide(world.team["approver"], edited.id, "approved")
    [edited_target] = world.targets(edited)
    wait_until(lambda: PostTarget.get_by_id(edited_target.id).status == "published", 15, "the edited post")
    sent = [p for p in world.fake.live_posts() if p.target == str(edited_target.id)]
    assert len(sent) == 1 and sent[0].text == "Edited text" and sent[0].created_at >= later.timestamp()
    assert PostTarget.get(PostTarget.post == cancelled.id).status == "cancelled"


def test_a_flushed_queue_is_recovered_by_the_sweep(world, queue_url):
    world.consumer(4).start().wait_ready()
    start = utcnow() + timedelta(seconds=2)
    scheduled = [world.schedule(start + timedelta(seconds=i * 0.2)) for i in range(15)]
    redis.Redis.from_url(queue_url).flushdb()          # every bell is gone
    wait_until(lambda: settled(world), 40, "the sweep to bring every due target back")
    assert {t.status for t in world.targets()} == {"published"}
    assert len(world.fake.live_posts()) == len(scheduled)
    assert world.fake.duplicates() == {"keys": {}, "targets": {}}


def test_a_rate_limit_waits_until_the_reset(world):
    world.consumer(2).start().wait_ready()
    reset = world.fake.rate_limit(3.0)
    post = world.schedule(utcnow() + timedelta(seconds=1))
    [target] = world.targets(post)
    wait_until(lambda: PostTarget.get_by_id(target.id).status == "published", 20, "the post after the reset")
    statuses = [(when, status) for when, status in world.fake.publish_times]
    assert statuses[0][1] == 429
    created = [when for when, status in statuses if status == 201]
    assert len(created) == 1 and reset <= created[0] <= reset + 2.5
    assert [s for _, s in statuses if s == 429] == [429]           # no hammering in between
    kinds = [a.error_kind for a in PublishAttempt.select().where(PublishAttempt.target == target.id)
             .order_by(PublishAttempt.number)]
    assert kinds == ["rate_limited", None]


def test_server_errors_back_off_then_publish(world):
    world.consumer(2).start().wait_ready()
    world.fake.fail("/v1/posts", method="POST", status=503, json={"error": "unavailable"}, times=2)
    post = world.schedule(utcnow() + timedelta(seconds=1))
    [target] = world.targets(post)
    wait_until(lambda: PostTarget.get_by_id(target.id).status == "published", 30, "the post after 5xx")
    calls = [c for c in world.fake.calls_to("/v1/posts", "POST")]
    assert len(calls) == 3
    attempts = list(PublishAttempt.select().where(PublishAttempt.target == target.id)
                    .order_by(PublishAttempt.number))
    assert [a.error_kind for a in attempts] == ["transient", "transient", None]
    gaps = [(b.started_at - a.finished_at).total_seconds() for a, b in zip(attempts, attempts[1:])]
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0        # 1 s then 2 s ceilings, equal jitter
    assert len(world.fake.live_posts()) == 1


def test_timeout_after_send_is_reconciled_as_published(world):
    world.consumer(2).start().wait_ready()
    world.fake.fail("/v1/posts", method="POST", hang_after=3)       # created, answer lost
    post = world.schedule(utcnow() + timedelta(seconds=1))
    [target] = world.targets(post)
    wait_until(lambda: PostTarget.get_by_id(target.id).status == "published", 30, "reconciliation")
    attempts = list(PublishAttempt.select().where(PublishAttempt.target == target.id))
    assert [a.state for a in attempts] == ["accepted"]
    assert "Confirmed by looking" in attempts[0].error_message
    assert world.fake.stats.publish_requests == 1 and len(world.fake.live_posts()) == 1


def test_timeout_before_landing_is_retried_once_with_the_same_key(world):
    world.consumer(2).start().wait_ready()
    world.fake.fail("/v1/posts", method="POST", hang_before=3, status=504, json={"error": "gateway"})
    post = world.schedule(utcnow() + timedelta(seconds=1))
    [target] = world.targets(post)
    wait_until(lambda: PostTarget.get_by_id(target.id).status == "published", 30, "the safe retry")
    states = [a.state for a in PublishAttempt.select().where(PublishAttempt.target == target.id)
              .order_by(PublishAttempt.number)]
    assert states == ["ambiguous", "accepted"]
    [sent] = world.fake.live_posts()
    assert sent.key == str(PostTarget.get_by_id(target.id).idempotency_key)


def test_timeout_on_a_network_that_cant_be_searched_or_deduplicated_needs_review(world):
    world.fake.honour_keys = False
    consumer = world.consumer(2, SANDBOX_API_URL=world.fake.api_url(timeout=1, idempotency=0,
                                                                     reconcile=0))
    consumer.start().wait_ready()
    world.fake.fail("/v1/posts", method="POST", hang_before=3, status=504, json={"error": "gateway"})
    post = world.schedule(utcnow() + timedelta(seconds=1))
    [target] = world.targets(post)
    wait_until(lambda: PostTarget.get_by_id(target.id).status == "needs_review", 30, "needs_review")
    assert world.fake.live_posts() == []
    message = wait_until(lambda: [m for (c, _), m in list(world.slack.messages.items())
                                  if c == CHANNEL and "herald_mark_posted" in str(m["blocks"])], 10,
                         "the needs-review message")[0]
    assert "herald_publish_again" in str(message["blocks"]) and message["thread_ts"] == post.approval_message_ts
    assert Post.get_by_id(post.id).status == "needs_review"


def test_a_401_refreshes_once_and_retries(world):
    world.consumer(2).start().wait_ready()
    token = OAuthToken.get(OAuthToken.account == world.team["account"].id)
    world.fake.expire(token.access_token.reveal())
    post = world.schedule(utcnow() + timedelta(seconds=1))
    [target] = world.targets(post)
    wait_until(lambda: PostTarget.get_by_id(target.id).status == "published", 20, "the post after a refresh")
    assert world.fake.stats.refreshes == 1
    assert [t[1] for t in world.fake.publish_times] == [401, 201]


def test_invalid_grant_marks_needs_reauth_tells_the_channel_and_the_target_waits(world):
    world.consumer(2).start().wait_ready()
    token = OAuthToken.get(OAuthToken.account == world.team["account"].id)
    world.fake.expire(token.access_token.reveal())
    world.fake.grants[token.refresh_token.reveal()].spent = True
    post = world.schedule(utcnow() + timedelta(seconds=1))
    [target] = world.targets(post)
    account_id = world.team["account"].id
    wait_until(lambda: SocialAccount.get_by_id(account_id).status == "needs_reauth", 20, "needs_reauth")
    message = wait_until(lambda: [m for (c, _), m in list(world.slack.messages.items())
                                  if c == CHANNEL and "http://herald.test/accounts" in str(m["blocks"])],
                         10, "the reconnect message")[0]
    assert "@acct-1" in message["text"]
    time.sleep(1.5)     # several sweeps pass: the target keeps waiting, nothing is sent
    target = PostTarget.get_by_id(target.id)
    assert target.status == "scheduled" and target.next_attempt_at <= utcnow()
    assert [s for _, s in world.fake.publish_times] == [401]
    # Reconnected: the sweep rings it and it goes out.
    access, refresh = world.fake.issue_tokens("acct-1")
    OAuthToken.update(access_token=access, refresh_token=refresh).where(OAuthToken.id == token.id).execute()
    SocialAccount.update(status="active").where(SocialAccount.id == account_id).execute()
    wait_until(lambda: PostTarget.get_by_id(target.id).status == "published", 20, "the post after reconnecting")


def test_twenty_concurrent_refreshes_of_one_rotating_token_make_one_request(world):
    first = world.consumer(10).start()
    second = world.consumer(10, "--no-periodic").start()
    first.wait_ready()
    second.wait_ready()
    account = world.team["account"]
    OAuthToken.update(expires_at=utcnow() + timedelta(minutes=2)).where(OAuthToken.account == account.id).execute()
    from tasks.sweep import refresh_account_token
    for _ in range(20):
        refresh_account_token(str(account.id))
    wait_until(lambda: OAuthToken.get(OAuthToken.account == account.id).expires_at
               > utcnow() + timedelta(hours=1), 20, "the refresh")
    time.sleep(1)       # let every task finish
    assert world.fake.stats.refreshes == 1 and world.fake.stats.invalid_grants == 0
    assert SocialAccount.get_by_id(account.id).status == "active"


def test_slack_rate_limits_delay_the_result_but_never_lose_it(world):
    world.consumer(2).start().wait_ready()
    times = []
    from flask import request
    world.slack.app.before_request_funcs.setdefault(None, []).insert(0, 
        lambda: times.append(time.time()) if request.path == "/api/chat.postMessage" else None)
    post = world.schedule(utcnow() + timedelta(seconds=2))
    world.slack.fail("/api/chat.postMessage", status=429, headers={"Retry-After": "2"},
                     json={"ok": False, "error": "ratelimited"})
    [target] = world.targets(post)
    wait_until(lambda: PostTarget.get_by_id(target.id).status == "published", 15, "the post")
    message = wait_until(lambda: [m for (c, _), m in list(world.slack.messages.items())
                                  if c == CHANNEL and m["thread_ts"] == post.approval_message_ts],
                         20, "the delayed result")
    assert len(message) == 1
    calls = world.slack.calls_for("chat.postMessage")
    assert len(calls) == 3        # the approval message, the 429, the result
    limited, delivered = times[1], times[2]
    assert delivered - limited >= 1.9, "Retry-After was not honoured"
    assert "Traceback" not in world.dump()
