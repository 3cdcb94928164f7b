"""Drafting a post: validate what the compose modal sent, then save it whole or not at all.

Validation answers per field, in words a person can act on; the Slack modal shows each one
next to its input. Text is checked per target account by that network's own rules (X's
weighted count, Bluesky's graphemes, …) through the platform adapters.
"""
from __future__ import annotations

import hashlib
import json
import mimetypes
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlparse

from peewee import IntegrityError

from core import audit, networks
from core.errors import NotFound, PermissionDenied, ValidationError
from core.ids import parse_id
from core.permissions import can, require
from core.projects import get_project
from db import database, for_update, write_transaction
from db.fields import utcnow
from db.models import Approval, Media, Post, PostTarget, SocialAccount, User
from platforms.base import Media as PlatformMedia

EDITABLE = ("draft", "pending_approval", "scheduled", "rejected")
MAX_TAGS = 10


@dataclass
class MediaInput:
    url: str
    source: str = "url"                  # url | slack_file | upload
    mime: str = ""
    slack_file_id: str | None = None
    alt_text: str = ""
    size: int | None = None
    id: uuid.UUID | str | None = None    # the Media row's id when it must be known beforehand
                                         # (a Slack file is served at PUBLIC_URL/media/<id>)

    @property
    def kind(self) -> str:
        return "video" if self.effective_mime.startswith("video/") else "image"

    @property
    def effective_mime(self) -> str:
        return self.mime or (mimetypes.guess_type(urlparse(self.url).path)[0] or "")


@dataclass
class DraftInput:
    project_id: str | None
    account_ids: list[str]
    body: str
    overrides: dict[str, str] = field(default_factory=dict)    # account id -> its own text
    media: list[MediaInput] = field(default_factory=list)
    scheduled_at: datetime | None = None                        # aware
    timezone: str = "UTC"
    tags: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# Validation


def validate(author: User, draft: DraftInput, *, now: datetime | None = None) -> tuple[dict, dict]:
    """Returns (errors by field, resolved rows). Fields: project, accounts, body, media,
    schedule, tags, and override:<account id>."""
    now = now or utcnow()
    errors: dict[str, str] = {}
    resolved: dict = {"project": None, "accounts": []}
    try:
        resolved["project"] = get_project(author.workspace, draft.project_id)
    except NotFound:
        errors["project"] = "Choose a project."
    accounts = _accounts(author, draft.account_ids, resolved["project"])
    if not draft.account_ids:
        errors["accounts"] = "Choose at least one account to post to."
    elif len(accounts) != len(set(draft.account_ids)):
        errors["accounts"] = "Some of those accounts aren't available in this project."
    elif any(a.status == "disconnected" for a in accounts):
        names = ", ".join(_name(a) for a in accounts if a.status == "disconnected")
        errors["accounts"] = f"{names} is disconnected; reconnect it on the web first."
    resolved["accounts"] = accounts

    media_problem = _media_problem(draft.media)
    if media_problem:
        errors["media"] = media_problem
    body = (draft.body or "").strip()
    if not body and not draft.media and not any(v.strip() for v in draft.overrides.values()):
        errors["body"] = "Write something to post."
    if not errors.get("media"):
        media = [PlatformMedia(url=m.url, mime=m.effective_mime, kind=m.kind, size=m.size,
                               alt_text=m.alt_text) for m in draft.media]
        for account in accounts:
            override = (draft.overrides.get(str(account.id)) or "").strip()
            problems = networks.adapter(account.platform).validate(override or body, media)
            if problems:
                key = f"override:{account.id}" if override else "body"
                message = f"{_name(account)}: " + " ".join(problems)
                errors[key] = f"{errors[key]} {message}" if key in errors else message

    if draft.scheduled_at is not None:
        if draft.scheduled_at.tzinfo is None:
            raise ValueError("scheduled_at must be aware")
        if draft.scheduled_at <= now:
            errors["schedule"] = "That time has already passed; pick a time in the future."
    tags = _tags(draft.tags)
    if len(tags) > MAX_TAGS:
        errors["tags"] = f"Use at most {MAX_TAGS} tags."
    elif any(len(t) > 40 for t in tags):
        errors["tags"] = "Keep each tag under 40 characters."
    return errors, resolved


def _accounts(author: User, ids: list[str], project) -> list[SocialAccount]:
    uuids = [u for u in (parse_id(i) for i in dict.fromkeys(ids)) if u is not None]
    if not uuids:
        return []
    query = SocialAccount.select().where((SocialAccount.workspace == author.workspace_id)
                                         & (SocialAccount.id.in_(uuids)))
    if project is not None:
        query = query.where((SocialAccount.project == project) | SocialAccount.project.is_null())
    return list(query.order_by(SocialAccount.platform, SocialAccount.handle))


def _media_problem(media: list[MediaInput]) -> str | None:
    for item in media:
        scheme = urlparse(item.url).scheme
        if scheme not in ("http", "https"):
            return f"“{item.url}” isn't a web address (it should start with https://)."
        mime = item.effective_mime
        if not mime.startswith(("image/", "video/")):
            return f"Herald can't tell what kind of file “{item.url}” is; use an image or a video."
    return None


def _tags(tags: list[str]) -> list[str]:
    cleaned = [t.strip().lstrip("#") for t in tags]
    return list(dict.fromkeys(t for t in cleaned if t))


def _name(account: SocialAccount) -> str:
    label = networks.adapter(account.platform).label
    return f"{label} @{account.handle}" if account.handle else label


# --------------------------------------------------------------------------------------
# Saving


def content_hash(body: str, overrides: dict, media: list, scheduled_at, account_ids: list) -> str:
    """What an approver approved. Any change here voids earlier approvals."""
    payload = {
        "body": body,
        "overrides": {str(k): v for k, v in sorted(overrides.items()) if v},
        "media": [[m.url, m.alt_text] for m in media],
        "at": scheduled_at.isoformat() if scheduled_at else None,
        "accounts": sorted(str(a) for a in account_ids),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def save_draft(author: User, draft: DraftInput, post_id=None, *, now: datetime | None = None,
               ip: str | None = None, key: str | None = None) -> Post:
    """Create a draft, or edit a post that hasn't started publishing. Editing a pending or
    scheduled post returns it to pending approval: its approvals no longer match.

    `key` (new posts only) names the request that creates the post, e.g. the Slack view it
    was composed in: the post's id is derived from it, so the database's primary key refuses
    a second post for the same request (see `compose`)."""
    require(author, "compose")
    errors, resolved = validate(author, draft, now=now)
    if errors:
        raise ValidationError(errors)
    project, accounts = resolved["project"], resolved["accounts"]
    body = draft.body.strip()
    overrides = {str(a.id): draft.overrides[str(a.id)].strip() for a in accounts
                 if (draft.overrides.get(str(a.id)) or "").strip()}
    digest = content_hash(body, overrides, draft.media, draft.scheduled_at, [a.id for a in accounts])
    with write_transaction():
        if post_id is None:
            post = Post.create(id=keyed_post_id(author, key) if key else uuid.uuid4(),
                               workspace=author.workspace_id, project=project, author=author,
                               body=body, scheduled_at=draft.scheduled_at, timezone=draft.timezone,
                               tags=_tags(draft.tags), content_hash=digest,
                               approval_channel_id=project.approval_channel_id)
            action, before = "post.created", None
        else:
            post = _editable(author, post_id)
            before = post.status
            if post.content_hash == digest and post.project_id == project.id:
                return post
            post.project, post.body, post.scheduled_at = project, body, draft.scheduled_at
            post.timezone, post.tags, post.content_hash = draft.timezone, _tags(draft.tags), digest
            if post.status in ("pending_approval", "scheduled"):
                post.status = "pending_approval"
            elif post.status == "rejected":
                post.status = "draft"
            post.save()
            action = "post.edited"
        _replace_targets(post, accounts, overrides)
        _replace_media(post, draft.media)
        audit.record(author, action, post, {"status": [before, post.status] if before else post.status,
                                            "accounts": len(accounts),
                                            "scheduled_at": draft.scheduled_at}, ip=ip)
    return post


def _editable(author: User, post_id) -> Post:
    post = for_update(Post.select().where((Post.workspace == author.workspace_id)
                                          & (Post.id == parse_id(post_id)))).first() \
        if parse_id(post_id) else None
    if post is None:
        raise NotFound("That post doesn't exist (or was deleted).")
    if post.author_id != author.id and not can(author, "approve"):
        raise PermissionDenied("Only the author or an approver can edit this post.")
    if post.status not in EDITABLE:
        raise ValidationError(f"This post is {post.status.replace('_', ' ')} and can't be edited any more.")
    return post


def _replace_targets(post: Post, accounts: list[SocialAccount], overrides: dict) -> None:
    existing = {t.account_id: t for t in PostTarget.select().where(PostTarget.post == post)}
    wanted = {a.id for a in accounts}
    # Targets are never deleted (their attempts are history); a removed account's is cancelled.
    stale = [t.id for acc, t in existing.items() if acc not in wanted]
    if stale:
        (PostTarget.update(status="cancelled", next_attempt_at=None)
         .where(PostTarget.id.in_(stale)).execute())
    for account in accounts:
        text = overrides.get(str(account.id))
        target = existing.get(account.id)
        if target is None:
            PostTarget.create(post=post, account=account, text_override=text)
        else:
            # Back to pending: a stale publish task for the old version finds nothing to claim.
            (PostTarget.update(text_override=text, status="pending", next_attempt_at=None)
             .where(PostTarget.id == target.id).execute())


def _replace_media(post: Post, media: list[MediaInput]) -> None:
    Media.delete().where(Media.post == post).execute()
    for position, item in enumerate(media):
        Media.create(id=parse_id(item.id) or uuid.uuid4(),
                     post=post, position=position, source=item.source, url=item.url,
                     slack_file_id=item.slack_file_id, mime=item.effective_mime, size=item.size,
                     alt_text=item.alt_text)


def current_approvals(post: Post) -> list[Approval]:
    return list(Approval.select().where((Approval.post == post)
                                        & (Approval.content_hash == post.content_hash)
                                        & (Approval.decision == "approved")))


# --------------------------------------------------------------------------------------
# Composing from a surface (the Slack modal): save, optionally submit, exactly once

KEY_NAMESPACE = uuid.UUID("5b0c7a52-8d8e-4c1e-9f3a-6e0d2f1b7c41")


def keyed_post_id(author: User, key: str) -> uuid.UUID:
    """The id a post created by request `key` gets: the same request always maps to the same
    id, and different people or workspaces never share one."""
    return uuid.uuid5(KEY_NAMESPACE, f"{author.workspace_id}:{author.id}:{key}")


@dataclass
class Composed:
    post: Post
    created: bool = False        # a new post was made by this call
    announce: bool = False       # now waiting for approval in a version approvers haven't seen
    duplicate: bool = False      # this request was handled before: nothing changed


def compose(author: User, draft: DraftInput, post_id=None, *, submit: bool = False,
            key: str | None = None, now: datetime | None = None,
            ip: str | None = None) -> Composed:
    """Save a draft (new, or an edit of `post_id`) and, with `submit`, submit it — all in one
    transaction, so a submission that fails (no time chosen, …) saves nothing either.

    A repeated request with the same `key` (a double-clicked or re-delivered modal) returns
    the post the first one made, unchanged, with `duplicate=True`. The check happens under
    the write lock, and the derived primary key catches the race the check can't see
    (two transactions that both found nothing on Postgres)."""
    require(author, "compose")
    now = now or utcnow()
    key = key if post_id is None else None
    try:
        with write_transaction():
            if key:
                existing = _keyed(author, key)
                if existing is not None:
                    return Composed(existing, duplicate=True)
            before = None
            if post_id is not None:
                current = _editable(author, post_id)
                before = (current.status, current.content_hash)
            post = save_draft(author, draft, post_id, now=now, ip=ip, key=key)
            if submit:
                from core import posts   # core.posts doesn't import compose; keep it that way
                post = posts.submit(author, post.id, now=now, ip=ip)
    except IntegrityError:
        existing = _keyed(author, key) if key else None
        if existing is None:
            raise
        return Composed(existing, duplicate=True)
    announce = post.status == "pending_approval" and (post.status, post.content_hash) != before
    return Composed(post, created=post_id is None, announce=announce)


def _keyed(author: User, key: str) -> Post | None:
    return (Post.with_deleted()
            .where((Post.id == keyed_post_id(author, key)) & (Post.workspace == author.workspace_id))
            .first())


def draft_input_of(post: Post) -> DraftInput:
    """A saved post as the DraftInput that would save it again (to prefill an edit)."""
    targets = list(PostTarget.select().where((PostTarget.post == post)
                                             & (PostTarget.status != "cancelled")))
    media = [MediaInput(url=m.url, source=m.source, mime=m.mime, slack_file_id=m.slack_file_id,
                        alt_text=m.alt_text, size=m.size, id=m.id)
             for m in Media.select().where(Media.post == post).order_by(Media.position)]
    return DraftInput(project_id=str(post.project_id),
                      account_ids=[str(t.account_id) for t in targets], body=post.body,
                      overrides={str(t.account_id): t.text_override for t in targets
                                 if t.text_override},
                      media=media, scheduled_at=post.scheduled_at, timezone=post.timezone,
                      tags=list(post.tags or []))


def accounts_of(workspace, *, query: str = "", project_id=None, usable_only: bool = False,
                limit: int | None = None) -> list[SocialAccount]:
    """A workspace's social accounts, by network and handle. `usable_only` leaves out
    disconnected ones (they can't be posted to); `project_id` keeps that project's accounts
    and the unassigned ones; `query` matches the handle, display name or network."""
    workspace_id = getattr(workspace, "id", workspace)
    rows = SocialAccount.select().where(SocialAccount.workspace == workspace_id)
    if usable_only:
        rows = rows.where(SocialAccount.status != "disconnected")
    project = parse_id(project_id)
    if project is not None:
        rows = rows.where((SocialAccount.project == project) | SocialAccount.project.is_null())
    rows = rows.order_by(SocialAccount.platform, SocialAccount.handle)
    needle = (query or "").strip().lower().lstrip("@")
    if not needle:
        return list(rows.limit(limit) if limit else rows)
    found = []
    for account in rows:
        label = networks.adapter(account.platform).label.lower()
        if needle in account.handle.lower() or needle in (account.display_name or "").lower() \
                or needle in label or needle in account.platform:
            found.append(account)
            if limit and len(found) >= limit:
                break
    return found


def accounts_by_id(workspace, account_ids) -> dict[str, SocialAccount]:
    """{id: account} for those of `account_ids` that are this workspace's (forged or foreign
    ids are simply absent)."""
    workspace_id = getattr(workspace, "id", workspace)
    uuids = [u for u in (parse_id(i) for i in dict.fromkeys(account_ids)) if u is not None]
    if not uuids:
        return {}
    return {str(a.id): a for a in SocialAccount.select().where(
        (SocialAccount.workspace == workspace_id) & SocialAccount.id.in_(uuids))}


def count_accounts(workspace, *, usable_only: bool = False) -> int:
    workspace_id = getattr(workspace, "id", workspace)
    rows = SocialAccount.select().where(SocialAccount.workspace == workspace_id)
    if usable_only:
        rows = rows.where(SocialAccount.status != "disconnected")
    return rows.count()


__all__ = ["DraftInput", "MediaInput", "validate", "save_draft", "content_hash", "current_approvals",
           "compose", "Composed", "keyed_post_id", "draft_input_of", "accounts_of", "accounts_by_id",
           "count_accounts"]
