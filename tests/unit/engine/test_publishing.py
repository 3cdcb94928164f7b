"""The publish protocol, one target at a time: claim, journal, outcomes, retries, missed."""
from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest

from core import publishing
from db import database
from db.fields import utcnow
from db.models import OAuthToken, Post, PostTarget, PublishAttempt, SocialAccount


def attempts_of(target):
    return list(PublishAttempt.select().where(PublishAttempt.target == target.id)
                .order_by(PublishAttempt.number))


def test_a_due_target_is_published_once_with_its_key(engine):
    target = engine.target(text="Launch day")
    result = publishing.publish(target.id)
    assert result.kind == "published"
    target = engine.reload(target)
    assert target.status == "published" and target.lease_until is None
    assert target.platform_post_id and target.platform_url.startswith(engine.fake.url)
    [post] = engine.fake.live_posts()
    assert post.text == "Launch day" and post.key == str(target.idempotency_key)
    [attempt] = attempts_of(target)
    assert attempt.state == "accepted" and attempt.number == 1 and attempt.finished_at
    assert Post.get_by_id(target.post_id).status == "published"
    assert ("target", str(target.id)) in engine.announced
    # A second bell for the same target finds nothing to claim.
    assert publishing.publish(target.id).kind == "nothing"
    assert len(engine.fake.live_posts()) == 1


def test_the_journal_row_is_committed_before_the_network_is_called(engine):
    target = engine.target()
    seen = {}

    def look(*_):
        # Runs in the fake server's thread, on its own database connection: it only sees
        # what the worker has committed.
        with database.connection_context():
            seen["attempts"] = [(a.state, a.number) for a in PublishAttempt.select()
                                .where(PublishAttempt.target == target.id)]
            seen["status"] = PostTarget.get_by_id(target.id).status

    engine.fake.app.before_request_funcs.setdefault(None, []).insert(0, look)
    assert publishing.publish(target.id).kind == "published"
    assert seen == {"attempts": [("sending", 1)], "status": "publishing"}


def test_stale_bells_are_harmless(engine):
    later = engine.target(due=utcnow() + timedelta(minutes=5))
    assert publishing.publish(later.id).kind == "nothing"
    cancelled = engine.target(status="cancelled")
    assert publishing.publish(cancelled.id).kind == "nothing"
    edited = engine.target()
    PostTarget.update(status="pending", next_attempt_at=None).where(PostTarget.id == edited.id).execute()
    assert publishing.publish(edited.id).kind == "nothing"
    assert engine.fake.stats.publish_requests == 0
    assert PublishAttempt.select().count() == 0


def test_a_rate_limit_waits_until_the_networks_reset(engine):
    target = engine.target()
    reset = engine.fake.rate_limit(20)
    result = publishing.publish(target.id)
    assert result.kind == "retry"
    target = engine.reload(target)
    assert target.status == "scheduled" and target.lease_until is None
    assert reset <= target.next_attempt_at.timestamp() <= reset + 2.5
    [attempt] = attempts_of(target)
    assert (attempt.state, attempt.error_kind, attempt.http_status) == ("rejected", "rate_limited", 429)
    # The retry bell was rung (after commit) for the new time.
    scheduled = [t for t in engine_queue_tasks()]
    assert any(t.args == (str(target.id),) for t in scheduled)


def engine_queue_tasks():
    import tasks
    return list(tasks.huey.pending()) + list(tasks.huey.scheduled())


def test_server_errors_back_off_with_jitter_until_the_budget_is_spent(engine):
    target = engine.target()
    engine.fake.fail("/v1/posts", method="POST", status=503, json={"error": "unavailable"}, times=10)
    delays = []
    for number in range(1, engine.cfg.max_attempts + 1):
        before = utcnow()
        result = publishing.publish(target.id)
        target = engine.reload(target)
        if number < engine.cfg.max_attempts:
            assert result.kind == "retry" and target.status == "scheduled"
            delays.append((target.next_attempt_at - before).total_seconds())
            ceiling = min(60, 10 * 2 ** (number - 1))
            assert ceiling / 2 - 0.5 <= delays[-1] <= ceiling + 0.5
            PostTarget.update(next_attempt_at=utcnow()).where(PostTarget.id == target.id).execute()
        else:
            assert result.kind == "failed" and target.status == "failed"
            assert "gave up" in target.last_error
    assert [a.error_kind for a in attempts_of(target)] == ["transient"] * engine.cfg.max_attempts
    assert ("target", str(target.id)) in engine.announced


def test_backoff_doubles_up_to_the_cap_and_jitters():
    cfg = publishing.EngineConfig(backoff=timedelta(seconds=15), backoff_cap=timedelta(minutes=10))
    rng = random.Random(7)
    for failures, ceiling in [(1, 15), (2, 30), (3, 60), (6, 480), (7, 600), (12, 600)]:
        draws = [publishing.backoff(failures, cfg, rng).total_seconds() for _ in range(200)]
        assert min(draws) >= ceiling / 2 and max(draws) <= ceiling
        assert max(draws) - min(draws) > ceiling / 4          # really jittered


def test_a_refusal_fails_in_plain_words_and_is_never_retried(engine):
    target = engine.target()
    engine.fake.fail("/v1/posts", method="POST", status=422,
                     json={"error": "invalid", "message": "media type not supported"})
    assert publishing.publish(target.id).kind == "failed"
    target = engine.reload(target)
    assert target.status == "failed" and "media type not supported" in target.last_error
    assert Post.get_by_id(target.post_id).status == "failed"
    assert publishing.publish(target.id).kind == "nothing"


def test_a_timeout_after_send_is_ambiguous_and_left_for_reconciliation(engine):
    target = engine.target()
    engine.fake.fail("/v1/posts", method="POST", hang_after=3)
    result = publishing.publish(target.id)
    assert result.kind == "reconcile" and result.reconcile_at is not None
    target = engine.reload(target)
    assert target.status == "publishing" and target.lease_until == result.lease
    [attempt] = attempts_of(target)
    assert attempt.state == "ambiguous" and attempt.error_kind == "ambiguous"
    assert len(engine.fake.live_posts()) == 1          # it did land: reconcile will find it


def test_a_401_refreshes_once_and_retries_once(engine):
    target = engine.target()
    token = OAuthToken.get(OAuthToken.account == engine.team["account"].id)
    engine.fake.expire(token.access_token.reveal())
    assert publishing.publish(target.id).kind == "published"
    assert engine.fake.stats.refreshes == 1
    assert [(a.state, a.error_kind) for a in attempts_of(engine.reload(target))] == \
        [("rejected", "auth_expired"), ("accepted", None)]
    fresh = OAuthToken.get_by_id(token.id)
    assert fresh.access_token != token.access_token.reveal()
    assert fresh.refresh_token != token.refresh_token.reveal()      # rotated and kept
    assert fresh.last_refreshed_at is not None


def test_invalid_grant_marks_the_account_and_the_target_waits(engine):
    target = engine.target()
    token = OAuthToken.get(OAuthToken.account == engine.team["account"].id)
    engine.fake.expire(token.access_token.reveal())
    engine.fake.grants[token.refresh_token.reveal()].spent = True     # revoked elsewhere
    result = publishing.publish(target.id)
    assert result.kind == "waiting"
    target = engine.reload(target)
    assert target.status == "scheduled" and target.lease_until is None
    assert target.next_attempt_at <= utcnow()                     # still due, not failed
    account = SocialAccount.get_by_id(engine.team["account"].id)
    assert account.status == "needs_reauth" and "refresh token" in account.status_detail
    assert ("account", str(account.id)) in engine.announced
    # While the account waits, bells find nothing; after a reconnect the target goes out.
    assert publishing.publish(target.id).kind == "waiting"
    access, refresh = engine.fake.issue_tokens("acct-1")
    OAuthToken.update(access_token=access, refresh_token=refresh).where(OAuthToken.id == token.id).execute()
    SocialAccount.update(status="active").where(SocialAccount.id == account.id).execute()
    assert publishing.publish(target.id).kind == "published"


def test_more_than_missed_after_late_is_missed_not_published(engine):
    target = engine.target(due=utcnow() - timedelta(hours=2))
    result = publishing.publish(target.id)
    assert result.kind == "missed"
    target = engine.reload(target)
    assert target.status == "missed" and "more than 1 h late" in target.last_error
    assert engine.fake.stats.publish_requests == 0
    assert Post.get_by_id(target.post_id).status == "missed"


def test_a_rate_limit_beyond_the_missed_window_is_missed(engine):
    target = engine.target(due=utcnow() - timedelta(minutes=59, seconds=50))
    engine.fake.rate_limit(60)
    assert publishing.publish(target.id).kind == "missed"
    assert engine.reload(target).status == "missed"


def test_checkpoints_are_saved_and_extend_the_lease(engine):
    target = engine.target()
    claim = publishing.claim_target(target.id)
    first_lease = claim.lease
    checkpoint = publishing.make_checkpoint(claim, engine.cfg)
    checkpoint({"container": "c-1"})
    saved = engine.reload(target)
    assert saved.state == {"container": "c-1"} and saved.lease_until == claim.lease > first_lease
    # Someone else took the target over: the next checkpoint refuses to continue.
    PostTarget.update(lease_until=utcnow()).where(PostTarget.id == target.id).execute()
    with pytest.raises(publishing.LeaseLost):
        checkpoint({"container": "c-1", "step": 2})


def test_a_late_answer_after_the_lease_was_taken_over_is_still_recorded(engine):
    target = engine.target()
    claim = publishing.claim_target(target.id)
    PostTarget.update(lease_until=utcnow() + timedelta(minutes=1)).where(PostTarget.id == target.id).execute()
    from platforms.base import Published
    result = publishing.settle(claim, "accepted", Published("p-1", "https://x/p-1"), engine.cfg)
    assert result.kind == "published"
    assert engine.reload(target).status == "published"


def test_the_post_status_follows_its_targets(engine):
    first = engine.target()
    second = engine.account("acct-2")
    other = PostTarget.create(post=first.post_id, account=second, status="scheduled",
                              next_attempt_at=utcnow())
    engine.fake.fail("/v1/posts", method="POST", status=422, json={"error": "invalid"})
    assert publishing.publish(first.id).kind == "failed"
    assert Post.get_by_id(first.post_id).status == "scheduled"      # core.posts.derive_status
    assert publishing.publish(other.id).kind == "published"
    assert Post.get_by_id(first.post_id).status == "partially_published"


def test_concurrent_bells_claim_once(engine, backend):
    if backend.name == "sqlite":
        pytest.skip("one SQLite writer: covered by the multi-process tests")
    target = engine.target()
    results = []

    def ring():
        with database.connection_context():
            results.append(publishing.publish(target.id).kind)

    threads = [threading.Thread(target=ring) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["nothing"] * 7 + ["published"]
    assert engine.fake.stats.publish_requests == 1


def test_a_failing_token_endpoint_before_the_post_is_a_plain_retry(engine):
    target = engine.target()
    OAuthToken.update(expires_at=utcnow() + timedelta(minutes=1)) \
        .where(OAuthToken.account == engine.team["account"].id).execute()
    engine.fake.fail("/oauth/token", method="POST", status=503, json={"error": "down"})
    result = publishing.publish(target.id)
    assert result.kind == "retry" and "Couldn't refresh the token" in result.message
    [attempt] = attempts_of(engine.reload(target))
    assert (attempt.state, attempt.error_kind) == ("rejected", "transient")
    assert engine.fake.stats.publish_requests == 0              # the post itself was never sent
    PostTarget.update(next_attempt_at=utcnow()).where(PostTarget.id == target.id).execute()
    assert publishing.publish(target.id).kind == "published"
    assert len(engine.fake.calls_to("/oauth/token", "POST")) == 2 and engine.fake.stats.refreshes == 1
