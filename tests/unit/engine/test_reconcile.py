"""Sweep and reconciliation: expired leases, lost bells, ambiguous answers, people deciding."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from core import networks, publishing, reconcile
from core.errors import PermissionDenied, ValidationError
from db.fields import utcnow
from db.models import AuditLog, Post, PostTarget, PublishAttempt, SocialAccount


def ambiguous(engine, *, land: bool, target=None):
    """A publish whose answer never came back: `land` says whether the network created it."""
    target = target or engine.target()
    if land:
        engine.fake.fail("/v1/posts", method="POST", hang_after=3)
    else:   # the answer never comes and nothing is created
        engine.fake.fail("/v1/posts", method="POST", hang_before=3, status=504, json={"error": "gateway"})
    result = publishing.publish(target.id)
    assert result.kind == "reconcile"
    return engine.reload(target), result


def test_found_on_the_network_means_published(engine):
    target, result = ambiguous(engine, land=True)
    decided = reconcile.reconcile(target.id, result.lease)
    assert decided.kind == "published"
    target = engine.reload(target)
    assert target.status == "published" and target.platform_post_id == engine.fake.live_posts()[0].id
    assert [a.state for a in PublishAttempt.select().where(PublishAttempt.target == target.id)] == ["accepted"]
    assert len(engine.fake.live_posts()) == 1


def test_not_found_with_idempotency_is_retried_once_with_the_same_key(engine, rung):
    target, result = ambiguous(engine, land=False)
    engine.fake.reset_failures()
    assert reconcile.reconcile(target.id, result.lease).kind == "retry"
    target = engine.reload(target)
    assert target.status == "scheduled" and target.next_attempt_at <= utcnow()
    assert rung == [str(target.id)]
    assert publishing.publish(target.id).kind == "published"
    [post] = engine.fake.live_posts()
    assert post.key == str(target.idempotency_key)
    # A second ambiguity that can't be found is not retried again: people decide.
    target2, result2 = ambiguous(engine, land=False, target=engine.target())
    engine.fake.reset_failures()
    assert reconcile.reconcile(target2.id, result2.lease).kind == "retry"
    engine.fake.fail("/v1/posts", method="POST", hang_before=3)
    assert publishing.publish(target2.id).kind == "reconcile"
    engine.fake.reset_failures()
    assert reconcile.reconcile(target2.id, engine.reload(target2).lease_until).kind == "needs_review"


def use_sandbox(engine, **options):
    settings = engine.settings
    platforms = dict(settings.platforms)
    platforms["sandbox"] = dataclasses.replace(platforms["sandbox"],
                                               api_url=engine.fake.api_url(timeout=1, **options))
    networks.configure(dataclasses.replace(settings, platforms=platforms))


def test_not_found_without_idempotency_is_retried_once_because_the_lookup_looked(engine, rung):
    engine.fake.honour_keys = False
    use_sandbox(engine, idempotency=0)
    assert networks.adapter("sandbox").capabilities.idempotency is False
    target, result = ambiguous(engine, land=False)
    engine.fake.reset_failures()
    assert reconcile.reconcile(target.id, result.lease).kind == "retry"
    assert publishing.publish(target.id).kind == "published"
    assert len(engine.fake.live_posts()) == 1


def test_a_network_that_cant_be_searched_or_deduplicated_needs_review(engine):
    engine.fake.honour_keys = False
    use_sandbox(engine, idempotency=0, reconcile=0)
    target, result = ambiguous(engine, land=False)
    engine.fake.reset_failures()
    decided = reconcile.reconcile(target.id, result.lease)
    assert decided.kind == "needs_review"
    target = engine.reload(target)
    assert target.status == "needs_review" and "can't be sure" in target.last_error
    assert Post.get_by_id(target.post_id).status == "needs_review"
    assert ("target", str(target.id)) in engine.announced
    assert engine.fake.live_posts() == []


def test_an_idempotent_network_that_cant_be_searched_gets_one_retry_with_the_key(engine):
    use_sandbox(engine, reconcile=0)
    target, result = ambiguous(engine, land=True)
    assert reconcile.reconcile(target.id, result.lease).kind == "retry"
    assert publishing.publish(target.id).kind == "published"
    assert engine.fake.stats.replays == 1 and len(engine.fake.live_posts()) == 1


def test_a_wrong_or_stale_lease_token_does_nothing(engine):
    target, result = ambiguous(engine, land=True)
    assert reconcile.reconcile(target.id, result.lease - timedelta(seconds=1)).kind == "nothing"
    assert reconcile.reconcile(target.id).kind == "nothing"        # not expired yet
    assert engine.reload(target).status == "publishing"


def test_the_sweep_takes_over_expired_leases_and_marks_sending_attempts_ambiguous(engine):
    target = engine.target()
    claim = publishing.claim_target(target.id)          # a worker claimed, then died
    assert PublishAttempt.get_by_id(claim.attempt.id).state == "sending"
    report = reconcile.sweep(now=utcnow() + engine.cfg.lease + timedelta(seconds=1), cfg=engine.cfg)
    assert [t for t, _ in report.reconcile] == [str(target.id)]
    attempt = PublishAttempt.get_by_id(claim.attempt.id)
    assert attempt.state == "ambiguous" and "lease ran out" in attempt.error_message
    lease = report.reconcile[0][1]
    assert engine.reload(target).lease_until == lease
    # Nothing reached the network (the worker died before calling): the one safe retry.
    assert reconcile.reconcile(target.id, lease).kind == "retry"
    assert publishing.publish(target.id).kind == "published"


def test_the_sweep_rings_lost_bells_but_not_for_waiting_accounts(engine):
    lost = engine.target(due=utcnow() - timedelta(seconds=30))
    fresh = engine.target(due=utcnow())                       # its own bell is still coming
    waiting_account = engine.account("acct-3")
    waiting = engine.target(due=utcnow() - timedelta(seconds=30), account=waiting_account)
    SocialAccount.update(status="needs_reauth").where(SocialAccount.id == waiting_account.id).execute()
    report = reconcile.sweep(cfg=engine.cfg)
    assert [t for t, _ in report.ring] == [str(lost.id)]
    assert not {str(fresh.id), str(waiting.id)} & {t for t, _ in report.ring}
    # While the queue is behind, ringing waits (it would only double the backlog).
    assert reconcile.sweep(cfg=engine.cfg, backlog=10_000).ring == []


def test_the_sweep_marks_stale_targets_missed(engine):
    stale = engine.target(due=utcnow() - timedelta(hours=3))
    report = reconcile.sweep(cfg=engine.cfg)
    assert report.missed == [str(stale.id)]
    assert engine.reload(stale).status == "missed"
    assert Post.get_by_id(stale.post_id).status == "missed"


def test_people_decide_a_needs_review(engine, rung):
    target = engine.target()
    PostTarget.update(status="needs_review", last_error="unsure").where(PostTarget.id == target.id).execute()
    Post.update(status="needs_review").where(Post.id == target.post_id).execute()
    with pytest.raises(PermissionDenied):
        reconcile.mark_posted(engine.team["other"], target.id)
    done = reconcile.mark_posted(engine.team["author"], target.id, url="https://example.com/p/1")
    assert done.status == "published" and done.platform_url == "https://example.com/p/1"
    assert Post.get_by_id(target.post_id).status == "published"
    assert AuditLog.select().where(AuditLog.action == "target.marked_posted").count() == 1
    with pytest.raises(ValidationError):
        reconcile.publish_again(engine.team["approver"], target.id)

    second = engine.target()
    PostTarget.update(status="needs_review").where(PostTarget.id == second.id).execute()
    again = reconcile.publish_again(engine.team["approver"], second.id)
    assert again.status == "scheduled" and rung == [str(second.id)]
    entry = AuditLog.get(AuditLog.action == "target.publish_again")
    assert entry.changes["idempotency_key"] == str(second.idempotency_key)
    assert publishing.publish(second.id).kind == "published"
