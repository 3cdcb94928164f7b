"""Publishing App Home tabs, only when what a person would see has changed.

Each published view carries a digest of its own content in `private_metadata`. Slack sends
the currently published view back with every `app_home_opened` event, so on open Herald
renders the Home, compares digests with the view Slack is actually showing, and publishes only
when they differ. No table and no shared cache is needed, and it is right across processes
(web workers, the Huey worker): the truth is the view Slack holds, not a guess about it.

Pushes (re-publishing after a decision, for people who may be looking at their Home) have no
event to compare with; they use a small per-process memory of the last digest published per
(team, user) and skip identical views. A stale memory can only make a push publish (or
skip) needlessly; the next open compares with Slack's view again and corrects it.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from collections import OrderedDict

from slack_sdk.errors import SlackApiError

from bot.blocks.home import home_view
from core import home as core_home
from core import workspaces
from core.errors import NotFound
from db.models import User, Workspace

log = logging.getLogger(__name__)

DIGEST_PREFIX = "herald-home:1:"
PUSH_LIMIT = 25                    # approvers re-published after one decision, at most

_accounts_url: str | None = None   # set at registration from PUBLIC_URL


def configure(public_url: str | None) -> None:
    global _accounts_url
    _accounts_url = f"{public_url.rstrip('/')}/accounts" if public_url else None


@functools.lru_cache(maxsize=1)
def compose_available() -> bool:
    """Whether Home offers New post / Edit: both open the compose modal through
    bot.listeners.views.compose.open_compose (built by the compose work). Without it, Home
    shows no button that would do nothing."""
    try:
        from bot.listeners.views.compose import open_compose  # noqa: F401
    except ImportError:
        return False
    return True


class _Digests:
    """(team id, slack user id) -> digest of the Home this process last published."""

    def __init__(self, size: int = 10_000):
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key):
        with self._lock:
            return self._data.get(key)

    def put(self, key, digest: str) -> None:
        with self._lock:
            self._data[key] = digest
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


published = _Digests()


def digest_of(view: dict) -> str:
    content = {k: v for k, v in view.items() if k not in ("private_metadata", "id", "hash", "state")}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def digest_in(view: dict | None) -> str | None:
    """The digest Herald stored in a published Home view (from an app_home_opened event)."""
    metadata = (view or {}).get("private_metadata") or ""
    return metadata[len(DIGEST_PREFIX):] if metadata.startswith(DIGEST_PREFIX) else None


def render(workspace: Workspace | None, user: User | None, notice: str | None = None) -> dict:
    data = core_home.gather(workspace, user) if workspace is not None else core_home.Home(member=False)
    view = home_view(data, notice=notice, accounts_url=_accounts_url,
                     can_compose=compose_available())
    view["private_metadata"] = DIGEST_PREFIX + digest_of(view)
    return view


def publish(client, team_id: str, slack_user_id: str, *, workspace: Workspace | None = None,
            user: User | None = None, shown: dict | None = None, from_event: bool = False,
            notice: str | None = None) -> bool:
    """Render this person's Home and publish it if it differs from what they see.

    from_event: `shown` is the view Slack sent with app_home_opened (None: nothing published
    yet, so publish). Otherwise compare with this process's memory. Returns True if published.
    A workspace or person Herald doesn't know yet gets the welcome Home (no rows are created
    just because someone opened a tab).
    """
    if workspace is None:
        try:
            workspace = workspaces.get_workspace(team_id)
        except NotFound:
            workspace = None
    if user is None and workspace is not None:
        user = workspaces.find_user(workspace, slack_user_id)
    view = render(workspace, user, notice)
    digest = digest_in(view)
    key = (team_id, slack_user_id)
    before = digest_in(shown) if from_event else published.get(key)
    if before == digest:
        return False
    try:
        client.views_publish(user_id=slack_user_id, view=view)
    except SlackApiError as exc:
        log.warning("App Home for %s not published: %s", slack_user_id, exc.response.get("error"))
        return False
    published.put(key, digest)
    return True


def refresh_after_change(client, workspace: Workspace, post=None, *, actor: User | None = None,
                         notice: str | None = None) -> None:
    """Re-publish the Homes a change touched: the person who acted (with `notice` when they
    acted on the Home itself), the post's author (drafts, upcoming), and the approvers whose
    "waiting for your approval" list may have changed. Everyone else's Home is brought up to
    date the next time they open it. Never raises: the change itself is already committed."""
    people: dict[str, User] = {}
    if actor is not None:
        people[actor.slack_user_id] = actor
    if post is not None:
        author = core_home.author_of(post)
        people.setdefault(author.slack_user_id, author)
        for approver in core_home.approvers(workspace, PUSH_LIMIT):
            people.setdefault(approver.slack_user_id, approver)
    for slack_user_id, person in people.items():
        try:
            publish(client, workspace.team_id, slack_user_id, workspace=workspace, user=person,
                    notice=notice if actor is not None and person.id == actor.id else None)
        except Exception:
            log.exception("App Home refresh failed for %s", slack_user_id)
