"""The post workflow in core: draft → submit → approve (N of policy) → scheduled, with edits
voiding approvals, and every rule enforced whoever calls."""
from __future__ import annotations

from datetime import timedelta

import pytest

from core import approvals, compose, posts
from core.errors import NotFound, PermissionDenied, ValidationError
from db.fields import utcnow
from db.models import Approval, AuditLog, Media, Post, PostTarget




@pytest.fixture
def team(make):
    ws = make.workspace()
    project = make.project(ws, approval_policy="required", approvals_required=1,
                           approval_channel_id="C0APPROVE")
    return {
        "ws": ws, "project": project,
        "author": make.user(ws, role="editor"),
        "approver": make.user(ws, role="approver"),
        "approver2": make.user(ws, role="approver"),
        "analyst": make.user(ws, role="analyst"),
        "mastodon": make.account(ws, platform="mastodon", project=project),
        "sandbox": make.account(ws, platform="sandbox", project=project),
    }


def draft(team, **kw) -> compose.DraftInput:
    values = dict(project_id=str(team["project"].id),
                  account_ids=[str(team["mastodon"].id), str(team["sandbox"].id)],
                  body="Launch day! https://example.com", scheduled_at=utcnow() + timedelta(hours=1),
                  timezone="Europe/Berlin", tags=["#launch", "launch", " spring "])
    values.update(kw)
    return compose.DraftInput(**values)


def test_the_whole_path_to_scheduled(db, team, rung):
    post = compose.save_draft(team["author"], draft(team))
    assert post.status == "draft" and post.tags == ["launch", "spring"]
    assert {t.status for t in posts.targets_of(post)} == {"pending"}
    posts.submit(team["author"], post.id)
    assert Post.get_by_id(post.id).status == "pending_approval" and rung == []
    outcome = approvals.decide(team["approver"], post.id, "approved", seen_hash=post.content_hash)
    assert outcome.changed and outcome.message.startswith("Approved")
    post = Post.get_by_id(post.id)
    assert post.status == "scheduled"
    targets = posts.targets_of(post)
    assert {t.status for t in targets} == {"scheduled"}
    assert all(t.next_attempt_at == post.scheduled_at for t in targets)
    assert sorted(rung[0]) == sorted(str(t.id) for t in targets)
    actions = [a.action for a in AuditLog.select().order_by(AuditLog.created_at)]
    assert ["post.created", "post.submitted", "post.approved", "post.scheduled"] == \
        [a for a in actions if a.startswith("post.")]


def test_the_engine_is_rung_only_after_commit(db, team, rung):
    post = compose.save_draft(team["author"], draft(team))
    posts.submit(team["author"], post.id)
    with pytest.raises(RuntimeError), db.atomic():
        approvals.decide(team["approver"], post.id, "approved")
        assert rung == []          # inside the transaction: not yet
        raise RuntimeError("roll back")
    assert rung == [] and Post.get_by_id(post.id).status == "pending_approval"


def test_policy_none_schedules_on_submit_and_required_counts_distinct_approvers(db, team, make, rung):
    team["project"].approval_policy = "none"
    team["project"].save()
    post = compose.save_draft(team["author"], draft(team))
    assert posts.submit(team["author"], post.id).status == "scheduled" and len(rung) == 1
    team["project"].approval_policy, team["project"].approvals_required = "required", 2
    team["project"].save()
    second = compose.save_draft(team["author"], draft(team, body="Second"))
    posts.submit(team["author"], second.id)
    first = approvals.decide(team["approver"], second.id, "approved")
    again = approvals.decide(team["approver"], second.id, "approved")     # double click
    assert (first.changed, first.approvals, first.needed) == (True, 1, 2)
    assert not again.changed and "already recorded" in again.message
    assert Post.get_by_id(second.id).status == "pending_approval"
    approvals.decide(team["approver2"], second.id, "approved")
    assert Post.get_by_id(second.id).status == "scheduled"
    assert Approval.select().where(Approval.post == second).count() == 2


def test_authors_never_approve_their_own_and_analysts_never_approve(db, team, make):
    owner = make.user(team["ws"], role="owner")
    post = compose.save_draft(owner, draft(team))
    posts.submit(owner, post.id)
    with pytest.raises(PermissionDenied, match="your own post"):
        approvals.decide(owner, post.id, "approved")
    with pytest.raises(PermissionDenied):
        approvals.decide(team["analyst"], post.id, "approved")
    with pytest.raises(PermissionDenied):
        compose.save_draft(team["analyst"], draft(team))
    assert Post.get_by_id(post.id).status == "pending_approval"
    assert Approval.select().count() == 0


def test_request_changes_then_edit_then_reapprove(db, team, rung):
    post = compose.save_draft(team["author"], draft(team))
    posts.submit(team["author"], post.id)
    with pytest.raises(ValidationError):
        approvals.decide(team["approver"], post.id, "changes_requested", comment=" ")
    outcome = approvals.decide(team["approver"], post.id, "changes_requested", comment="Add the link")
    assert outcome.changed and Post.get_by_id(post.id).status == "draft"
    edited = compose.save_draft(team["author"], draft(team, body="Launch day! https://example.com/launch"),
                                post_id=post.id)
    assert edited.content_hash != post.content_hash
    posts.submit(team["author"], post.id)
    stale = approvals.decide(team["approver"], post.id, "approved", seen_hash=post.content_hash)
    assert not stale.changed and "edited" in stale.message
    approvals.decide(team["approver"], post.id, "approved", seen_hash=edited.content_hash)
    assert Post.get_by_id(post.id).status == "scheduled"


def test_editing_a_scheduled_post_voids_approvals_and_unschedules_targets(db, team, rung):
    post = compose.save_draft(team["author"], draft(team))
    posts.submit(team["author"], post.id)
    approvals.decide(team["approver"], post.id, "approved")
    assert Post.get_by_id(post.id).status == "scheduled"
    compose.save_draft(team["author"], draft(team, account_ids=[str(team["sandbox"].id)],
                                             body="Changed"), post_id=post.id)
    post = Post.get_by_id(post.id)
    assert post.status == "pending_approval" and compose.current_approvals(post) == []
    statuses = {t.account_id: t.status for t in PostTarget.select().where(PostTarget.post == post)}
    assert statuses == {team["sandbox"].id: "pending", team["mastodon"].id: "cancelled"}
    assert not PostTarget.select().where(PostTarget.status == "scheduled").exists()


@pytest.mark.parametrize("change, field", [
    ({"scheduled_at": "past"}, "schedule"),
    ({"account_ids": []}, "accounts"),
    ({"body": "x" * 501}, "body"),                       # Mastodon's 500
    ({"body": "", "media": []}, "body"),
    ({"project_id": "not-a-project"}, "project"),
    ({"media": [compose.MediaInput(url="https://cdn.example.com/file.xyz")]}, "media"),
    ({"media": [compose.MediaInput(url="javascript:alert(1)")]}, "media"),
])
def test_bad_input_is_refused_per_field_and_nothing_is_saved(db, team, change, field):
    if change.get("scheduled_at") == "past":
        change["scheduled_at"] = utcnow() - timedelta(minutes=1)
    with pytest.raises(ValidationError) as refused:
        compose.save_draft(team["author"], draft(team, **change))
    assert field in refused.value.errors
    assert Post.select().count() == 0 and PostTarget.select().count() == 0
    assert Media.select().count() == 0


def test_an_override_is_checked_against_its_own_network(db, team):
    mastodon = str(team["mastodon"].id)
    with pytest.raises(ValidationError) as refused:
        compose.save_draft(team["author"], draft(team, overrides={mastodon: "y" * 600}))
    assert list(refused.value.errors) == [f"override:{mastodon}"]
    post = compose.save_draft(team["author"], draft(team, overrides={mastodon: "Short for Mastodon"}))
    texts = {t.account_id: t.text_override for t in posts.targets_of(post)}
    assert texts[team["mastodon"].id] == "Short for Mastodon" and texts[team["sandbox"].id] is None


def test_another_workspace_cannot_see_or_act(db, team, make):
    post = compose.save_draft(team["author"], draft(team))
    posts.submit(team["author"], post.id)
    other = make.workspace()
    intruder = make.user(other, role="owner")
    for attempt in (lambda: approvals.decide(intruder, post.id, "approved"),
                    lambda: posts.cancel(intruder, post.id),
                    lambda: posts.get_post(other, post.id),
                    lambda: posts.find_post(other, posts.short_id(post)),
                    lambda: compose.save_draft(intruder, draft(team), post_id=post.id)):
        with pytest.raises((NotFound, ValidationError)):
            attempt()
    # Their own accounts can't be smuggled into our project either.
    foreign = make.account(other, platform="sandbox")
    with pytest.raises(ValidationError):
        compose.save_draft(team["author"], draft(team, account_ids=[str(foreign.id)]))
    assert Post.get_by_id(post.id).status == "pending_approval"


def test_cancel_and_find_by_short_id(db, team, rung):
    post = compose.save_draft(team["author"], draft(team))
    assert posts.find_post(team["ws"], posts.short_id(post)).id == post.id
    posts.submit(team["author"], post.id)
    approvals.decide(team["approver"], post.id, "approved")
    posts.cancel(team["author"], post.id)
    assert Post.get_by_id(post.id).status == "cancelled"
    assert {t.status for t in PostTarget.select()} == {"cancelled"}


@pytest.mark.parametrize("statuses, derived", [
    (["published", "published"], "published"),
    (["published", "failed"], "partially_published"),
    (["publishing", "scheduled"], "publishing"),
    (["scheduled", "cancelled"], "scheduled"),
    (["failed", "needs_review"], "needs_review"),
    (["missed", "missed"], "missed"),
    (["failed", "cancelled"], "failed"),
    (["cancelled"], "cancelled"),
])
def test_post_status_is_derived_from_targets(statuses, derived):
    assert posts.derive_status(statuses) == derived
