"""The database itself refuses bad rows: CHECKs, unique keys, foreign keys, ON DELETE rules."""
from __future__ import annotations

import uuid

import pytest
from peewee import IntegrityError

from db.models import Membership, OAuthToken, Post, PostTarget, Project, PublishAttempt, \
    SocialAccount
from db.fields import utcnow


def raw(db, sql: str, params=()):
    """Run SQL as another client would (no model validation in the way)."""
    return db.execute_sql(sql.replace("?", db.param), params)


@pytest.fixture
def world(make):
    ws = make.workspace()
    owner = make.user(ws, role="owner")
    project = make.project(ws)
    account = make.account(ws, platform="mastodon", project=project)
    post = make.post(ws, project, owner)
    return ws, owner, project, account, post


@pytest.mark.parametrize("model, column, bad", [
    (Post, "status", "posted"),
    (PostTarget, "status", "done"),
    (SocialAccount, "status", "broken"),
    (Membership, "role", "admin"),
    (Project, "approval_policy", "sometimes"),
])
def test_an_invalid_status_is_refused_by_the_database(db, world, model, column, bad):
    ws, owner, project, account, post = world
    row = {Post: post, PostTarget: None, SocialAccount: account,
           Membership: Membership.get(Membership.user == owner), Project: project}[model]
    if row is None:
        row = PostTarget.create(post=post, account=account)
    table = model._meta.table_name
    with pytest.raises(IntegrityError):
        with db.atomic():
            raw(db, f'UPDATE "{table}" SET "{column}" = ? WHERE "id" = ?', (bad, row.id.hex if
                db.param == "?" else str(row.id)))
    assert getattr(model.select().where(model.id == row.id).get(), column) != bad


def test_counts_cant_go_negative(db, world):
    ws, owner, project, account, post = world
    with pytest.raises(IntegrityError), db.atomic():
        PostTarget.create(post=post, account=account, attempts=-1)
    with pytest.raises(IntegrityError), db.atomic():
        Project.create(workspace=ws, name="Zero approvals", approvals_required=0)


def test_duplicate_account_per_workspace_platform_and_user_is_refused(db, make, world):
    ws, owner, project, account, post = world
    with pytest.raises(IntegrityError), db.atomic():
        SocialAccount.create(workspace=ws, platform=account.platform,
                             platform_user_id=account.platform_user_id, handle="again")
    # The same network identity in another workspace is a different account.
    other = make.workspace()
    assert SocialAccount.create(workspace=other, platform=account.platform,
                                platform_user_id=account.platform_user_id).id


def test_an_orphan_foreign_key_is_refused(db, world):
    ws, owner, project, account, post = world
    with pytest.raises(IntegrityError), db.atomic():
        PostTarget.create(post=uuid.uuid4(), account=account)
    with pytest.raises(IntegrityError), db.atomic():
        OAuthToken.create(account=uuid.uuid4(), access_token="x")
    assert PostTarget.select().count() == 0


def test_one_token_row_per_account(db, make, world):
    ws, owner, project, account, post = world
    make.token(account)
    with pytest.raises(IntegrityError), db.atomic():
        make.token(account)


def test_a_target_appears_once_per_post_and_account(db, world):
    ws, owner, project, account, post = world
    PostTarget.create(post=post, account=account)
    with pytest.raises(IntegrityError), db.atomic():
        PostTarget.create(post=post, account=account)


def test_on_delete_rules(db, make, world):
    ws, owner, project, account, post = world
    target = PostTarget.create(post=post, account=account)
    # An account with delivery history can't be removed (RESTRICT) …
    with pytest.raises(IntegrityError), db.atomic():
        SocialAccount.delete().where(SocialAccount.id == account.id).execute()
    # … and the publish journal can't be lost by removing its target's post.
    PublishAttempt.create(target=target, number=1, idempotency_key=target.idempotency_key,
                          started_at=utcnow())
    with pytest.raises(IntegrityError), db.atomic():
        Post.with_deleted().model.delete().where(Post.id == post.id).execute()
    # Removing a project keeps its accounts, ungrouped (SET NULL).
    spare = make.project(ws)
    grouped = make.account(ws, project=spare)
    Project.delete().where(Project.id == spare.id).execute()
    assert SocialAccount.get_by_id(grouped.id).project_id is None
    # A post without history goes with its targets (CASCADE).
    fresh = make.post(ws, project, owner)
    PostTarget.create(post=fresh, account=grouped)
    Post.delete().where(Post.id == fresh.id).execute()
    assert PostTarget.select().where(PostTarget.post == fresh.id).count() == 0
