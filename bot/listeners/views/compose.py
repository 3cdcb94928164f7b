"""The compose modal: opening it (shared by /social, the shortcuts and the Edit button),
refreshing it when the chosen accounts change, and its submission.

Opening: `views.open` goes first, with a light "Loading…" view, because the trigger_id
expires about 3 s after the click; the real modal follows with `views.update` (with the
view's hash) once the person, their time zone and the project's accounts are loaded.

Submitting: the form becomes a core DraftInput; core validates, saves and (for "Submit for
approval") submits in one transaction, so an error saves nothing and comes back inline
next to its input. A second delivery of the same view (double click, replay) is answered
like the first and changes nothing: the post's id is derived from the view id.
"""
from __future__ import annotations

import logging
import uuid

from slack_sdk.errors import SlackApiError

from bot import timeinput
from bot.approval_flow import request_approval, tell_author
from bot.blocks import ids
from bot.blocks.common import slack_date
from bot.blocks.compose import (MAX_OVERRIDES, TITLE_EDIT, TITLE_NEW, ComposeModal, Form, Length,
                                Metadata, Option, account_label, compose_view, errors_for,
                                loading_view,
                                no_accounts_view, notice_view, read_form)
from bot.context import GENERIC_ERROR, acting_user, connected, message_for
from core import compose, networks, onboarding, posts, workspaces
from core.errors import HeraldError, NotFound, PermissionDenied, ValidationError
from core.permissions import can, require
from core.projects import get_project, list_projects
from db.models import Post, SocialAccount

log = logging.getLogger(__name__)

EXPIRED = ("That took Slack too long to open, so the window didn't appear. "
           "Please try again.")


def register(app, settings) -> None:
    app.view(ids.COMPOSE_VIEW)(_submission_listener(settings))
    app.action({"block_id": ids.COMPOSE_ACCOUNTS_BLOCK, "action_id": ids.COMPOSE_ACCOUNTS})(
        _accounts_changed_listener(settings))


# --------------------------------------------------------------------------------------
# Opening


def open_compose(client, body: dict, context, settings, *, trigger_id: str, text: str = "",
                 post_id: str | None = None, channel_id: str | None = None, reply=None) -> str | None:
    """Open the compose modal (a new post, or `post_id` to edit). Call inside `connected`,
    right after ack(). `reply(text)` tells the person something ephemerally when no modal
    could be opened. Returns the view id, or None."""
    title = TITLE_EDIT if post_id else TITLE_NEW
    try:
        opened = client.views_open(trigger_id=trigger_id, view=loading_view(title))
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        log.warning("views.open failed: %s", error)
        _tell(reply, EXPIRED if error in ("expired_trigger_id", "invalid_trigger_id")
              else "Slack didn't open the window. Please try again.")
        return None
    view_id, view_hash = opened["view"]["id"], opened["view"].get("hash")
    try:
        workspace, user = acting_user(body, context, client)
        view = modal_for(client, settings, workspace, user, text=text, post_id=post_id,
                         channel_id=channel_id)
    except Exception as exc:  # noqa: BLE001 — the person sees one sentence, the log the rest
        view = notice_view(message_for(exc), title)
    try:
        client.views_update(view_id=view_id, hash=view_hash, view=view)
    except SlackApiError as exc:
        log.warning("views.update of the compose modal failed: %s", exc.response.get("error"))
        _tell(reply, "Slack didn't show the compose window. Please try again.")
    return view_id


def _tell(reply, text: str) -> None:
    if reply is None:
        return
    try:
        reply(text)
    except Exception:  # noqa: BLE001 — nowhere left to say it
        log.warning("could not tell the person: %s", text)


def modal_for(client, settings, workspace, user, *, text: str = "", post_id: str | None = None,
              channel_id: str | None = None, form: Form | None = None,
              metadata: Metadata | None = None) -> dict:
    """The compose view for this person: a fresh one, an edit of `post_id`, or (with `form`
    and `metadata`) a rebuild of an open modal keeping what was typed."""
    require(user, "compose")
    editing = None
    if metadata is None:
        zone = timeinput.slack_zone(client, user.slack_user_id)
        if zone and zone != user.tz:
            user = workspaces.ensure_user(workspace, user.slack_user_id, tz=zone)
        onboarding.ensure_default_project(user, channel_id=channel_id, timezone=zone or user.tz)
        metadata = Metadata(post_id=post_id, channel_id=channel_id,
                            tz=timeinput.valid_zone(zone or user.tz))
    if metadata.post_id:
        editing = _editable_post(workspace, user, metadata.post_id)

    usable = compose.count_accounts(workspace, usable_only=True)
    if usable == 0 and editing is None:
        return no_accounts_view(f"{settings.public_url}/accounts", TITLE_NEW)
    metadata.external = usable > 100
    projects = list_projects(workspace)
    project_names = {str(p.id): p.name for p in projects}
    choices = [] if metadata.external else [
        _account_option(a, project_names) for a in compose.accounts_of(workspace, usable_only=True)]

    kept: list[str] = []
    if form is None:
        form = Form(body=text)
        if editing is not None:
            form = _form_of(editing, metadata)
    if editing is not None:
        kept = [f"Slack file {m.slack_file_id}" for m in compose.draft_input_of(editing).media
                if m.source == "slack_file"]
    form.accounts = _labelled(workspace, form.accounts, choices, project_names)
    if form.project_id is None and len(projects) == 1:
        form.project_id = str(projects[0].id)
    zone = _zone(metadata, workspace, form.project_id)
    return compose_view(ComposeModal(
        projects=[Option(str(p.id), p.name) for p in projects], accounts=choices, form=form,
        metadata=metadata, zone=zone, personal_zone=bool(metadata.tz), editing=editing is not None,
        external_accounts=metadata.external, kept_media=kept,
        lengths=_lengths(workspace, form)))


def _editable_post(workspace, user, post_id) -> Post:
    post = posts.get_post(workspace, post_id)
    if post.author_id != user.id and not can(user, "approve"):
        raise PermissionDenied("Only the author or an approver can edit this post.")
    if post.status not in compose.EDITABLE:
        raise ValidationError(f"This post is {post.status.replace('_', ' ')} and can't be edited any more.")
    return post


def _form_of(post: Post, metadata: Metadata) -> Form:
    draft = compose.draft_input_of(post)
    zone = _zone(metadata, post.workspace_id, draft.project_id)
    day, clock = timeinput.local_parts(draft.scheduled_at, zone)
    urls = [m for m in draft.media if m.source == "url"]
    return Form(project_id=draft.project_id, accounts=[Option(a, a) for a in draft.account_ids],
                body=draft.body, overrides=dict(draft.overrides),
                media_url=urls[0].url if urls else "",
                alt_text=next((m.alt_text for m in draft.media if m.alt_text), ""),
                date=day, time=clock, tags=", ".join(draft.tags))


def _account_option(account: SocialAccount, project_names: dict) -> Option:
    name = account_label(networks.adapter(account.platform).label, account.handle, account.status)
    return Option(str(account.id), name, project_names.get(str(account.project_id), ""))


def _labelled(workspace, chosen: list[Option], choices: list[Option], project_names) -> list[Option]:
    """The chosen accounts with their labels from the database (never from the payload), and
    only those of this workspace."""
    if not chosen:
        return []
    known = {c.value: c for c in choices}
    missing = [c.value for c in chosen if c.value not in known]
    if missing:
        for account_id, account in compose.accounts_by_id(workspace, missing).items():
            known[account_id] = _account_option(account, project_names)
    return [known[c.value] for c in chosen if c.value in known]


def _zone(metadata: Metadata, workspace, project_id) -> str:
    """The person's zone; else the project's; else UTC."""
    project_zone = None
    if project_id:
        try:
            project_zone = get_project(workspace, project_id).timezone
        except NotFound:
            pass
    return timeinput.pick_zone(metadata.tz, project_zone)


def _lengths(workspace, form: Form) -> list[Length]:
    if not form.accounts:
        return []
    accounts = compose.accounts_by_id(workspace, [a.value for a in form.accounts[:MAX_OVERRIDES]])
    out = []
    for option in form.accounts[:MAX_OVERRIDES]:
        account = accounts.get(option.value)
        if account is None:
            continue
        adapter = networks.adapter(account.platform)
        text = (form.overrides.get(option.value) or "").strip() or form.body.strip()
        out.append(Length(option.label, adapter.count(text), adapter.capabilities.text_limit))
    return out


# --------------------------------------------------------------------------------------
# The accounts select changed (dispatch_action): add a text input per chosen account


def _accounts_changed_listener(settings):
    @connected
    def compose_accounts_changed(ack, body, client, context):
        ack()
        view = body.get("view") or {}
        if view.get("callback_id") != ids.COMPOSE_VIEW:
            return
        form = read_form(view)
        metadata = Metadata.loads(view.get("private_metadata"))
        try:
            workspace, user = acting_user(body, context)
            updated = modal_for(client, settings, workspace, user, form=form, metadata=metadata)
        except Exception as exc:  # noqa: BLE001
            updated = notice_view(message_for(exc))
        try:
            client.views_update(view_id=view.get("id"), hash=view.get("hash"), view=updated)
        except SlackApiError as exc:
            # hash_conflict: the person changed something meanwhile; their next change
            # refreshes the modal again. Nothing is lost: the submission reads the state.
            log.info("compose refresh skipped: %s", exc.response.get("error"))
    return compose_accounts_changed


# --------------------------------------------------------------------------------------
# Submission


def _submission_listener(settings):
    @connected
    def compose_submitted(ack, body, client, context, view):
        form = read_form(view)
        metadata = Metadata.loads(view.get("private_metadata"))
        title = TITLE_EDIT if metadata.post_id else TITLE_NEW
        try:
            workspace, user = acting_user(body, context)
            require(user, "compose")
            draft, problems = draft_of(client, settings, workspace, user, form, metadata)
            if problems:
                ack(response_action="errors", errors=problems)
                return
            key = None if metadata.post_id else f"slack-view:{view.get('id')}"
            result = compose.compose(user, draft, metadata.post_id,
                                     submit=form.intent == ids.INTENT_SUBMIT, key=key)
        except ValidationError as exc:
            ack(response_action="errors", errors=errors_for(exc.errors, form))
            return
        except HeraldError as exc:
            ack(response_action="update", view=notice_view(exc.message, title))
            return
        except Exception:  # noqa: BLE001
            log.exception("compose submission failed")
            ack(response_action="update", view=notice_view(GENERIC_ERROR, title))
            return
        ack()
        if result.duplicate:
            return
        post = result.post
        if result.announce:
            request_approval(client, post)
        confirm(client, user, post, metadata.channel_id, edited=not result.created)
    return compose_submitted


def draft_of(client, settings, workspace, user, form: Form, metadata: Metadata):
    """(DraftInput, errors by block id). Errors here are the ones only the modal can see:
    half a date, a Slack file that isn't an image or a video."""
    problems: dict[str, str] = {}
    zone = _zone(metadata, workspace, form.project_id)
    scheduled_at = None
    if form.date and form.time:
        try:
            scheduled_at = timeinput.to_utc(form.date, form.time, zone)
        except timeinput.BadTime:
            problems[ids.COMPOSE_DATE_BLOCK] = "Herald can't read that date and time."
    elif form.date:
        problems[ids.COMPOSE_TIME_BLOCK] = "Pick a time too."
    elif form.time:
        problems[ids.COMPOSE_DATE_BLOCK] = "Pick a day too."

    media: list[compose.MediaInput] = []
    if form.media_url:
        media.append(compose.MediaInput(url=form.media_url, source="url", alt_text=form.alt_text))
    if form.files:
        for file in form.files:
            item, problem = _slack_file(client, settings, file, form.alt_text)
            if problem:
                problems[ids.COMPOSE_MEDIA_FILE_BLOCK] = problem
                break
            media.append(item)
    elif metadata.post_id and form.keep_media:
        post = posts.get_post(workspace, metadata.post_id)
        for item in compose.draft_input_of(post).media:
            if item.source == "slack_file":
                item.alt_text = form.alt_text or item.alt_text
                media.append(item)

    chosen = set(form.account_ids)
    draft = compose.DraftInput(
        project_id=form.project_id, account_ids=form.account_ids, body=form.body,
        overrides={k: v for k, v in form.overrides.items() if k in chosen}, media=media,
        scheduled_at=scheduled_at, timezone=zone, tags=form.tag_list())
    return draft, problems


def _slack_file(client, settings, file: dict, alt_text: str):
    """A file shared in Slack as MediaInput; networks fetch it from PUBLIC_URL/media/<id>
    (web/media.py serves it with the bot token). The type comes from files.info."""
    name = str(file.get("name") or file.get("id"))
    try:
        info = client.files_info(file=file["id"])["file"]
    except SlackApiError as exc:
        log.warning("files.info failed for %s: %s", file.get("id"), exc.response.get("error"))
        return None, f"Herald couldn't read “{name}” from Slack; try attaching it again."
    mime = str(info.get("mimetype") or "")
    if not mime.startswith(("image/", "video/")):
        kind = info.get("pretty_type") or mime or "that kind of file"
        return None, f"“{info.get('name') or name}” is {kind}; attach an image or a video."
    media_id = uuid.uuid4()
    return compose.MediaInput(url=f"{settings.public_url}/media/{media_id}", source="slack_file",
                              mime=mime, slack_file_id=str(file["id"]), alt_text=alt_text,
                              size=info.get("size"), id=media_id), None


def confirm(client, user, post: Post, channel_id: str | None, *, edited: bool = False) -> None:
    """Tell the author what happened: ephemerally where they composed, else by DM."""
    text = confirmation_text(post, edited=edited)
    if channel_id:
        try:
            client.chat_postEphemeral(channel=channel_id, user=user.slack_user_id, text=text)
            return
        except SlackApiError as exc:   # not in that channel, a DM the bot can't see, …
            log.info("ephemeral confirmation failed (%s); sending a DM", exc.response.get("error"))
    tell_author(client, post, text)


def confirmation_text(post: Post, *, edited: bool = False) -> str:
    short = posts.short_id(post)
    project = post.project
    when = slack_date(post.scheduled_at)
    if post.status == "scheduled":
        return f"Scheduled `{short}` in {project.name} for {when}."
    if post.status == "pending_approval":
        where = f" in <#{project.approval_channel_id}>" if project.approval_channel_id else \
            " (the project has no approval channel yet; approvers find it in Herald's Home tab)"
        return f"Sent `{short}` for approval{where}. Once approved it goes out {when}."
    verb = "Updated" if edited else "Saved"
    return f"{verb} draft `{short}` in {project.name}. `/social drafts` lists your drafts."
