"""The App Home tab. Pure: core.home.Home in, a `home` view dict out.

Sections: waiting for my approval (with the same Approve / Request changes / Reject buttons
as the approval message, so the same listeners handle them), upcoming posts, my drafts,
recent failures (Retry / Cancel) and connected accounts with their health. Every list is
capped and says "and N more"; the whole view stays under Slack's 100 blocks.

Times are rendered with `<!date^…>` so each reader sees their own zone and the view's content
doesn't change with the clock (which lets the publisher skip unchanged Homes).
"""
from __future__ import annotations

from core.home import AccountLine, FailureLine, Home, Listing, PostLine
from bot.blocks import ids
from bot.blocks.common import button, context, escape, section, slack_date

MAX_BLOCKS = 100

UPCOMING_WORDS = {"pending_approval": ":hourglass_flowing_sand: waiting for approval",
                  "scheduled": ":white_check_mark: scheduled",
                  "publishing": ":rocket: publishing"}
FAILURE_WORDS = {"failed": ":x: failed", "needs_review": ":eyes: needs review",
                 "missed": ":hourglass: missed its time"}
HEALTH_WORDS = {"ok": ":large_green_circle: connected",
                "expiring": ":large_yellow_circle: token expires soon — reconnect to renew it",
                "expired": ":red_circle: token expired — reconnect",
                "needs_reauth": ":red_circle: needs reconnecting",
                "disconnected": ":white_circle: disconnected",
                "error": ":red_circle: error"}


def home_view(home: Home, *, notice: str | None = None, accounts_url: str | None = None,
              can_compose: bool = False) -> dict:
    """`notice`: one line on top (what just happened, for clicks made on the Home itself,
    which have no response_url). `accounts_url`: where Reconnect links go.
    `can_compose`: whether New post / Edit buttons can open the compose modal."""
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": "Herald"}}]
    if can_compose and home.member and home.role != "analyst":
        blocks.append({"type": "actions", "block_id": "home_top", "elements": [
            button("New post", ids.HOME_NEW_POST, "new", style="primary")]})
    if notice:
        blocks.append(section(f":information_source: {escape(notice)}"))
    if not home.member:
        blocks.append(section("Herald drafts, approves and schedules your team's social posts. "
                              "Type `/social` in any channel to draft your first post; "
                              "`/social help` lists everything else."))
        return _view(blocks)

    if home.role in ("owner", "approver"):
        blocks += _heading("Waiting for your approval")
        blocks += _listing(home.awaiting, _awaiting, "Nothing is waiting for you. :tada:")
    blocks += _heading("Upcoming posts")
    blocks += _listing(home.upcoming, _upcoming, "Nothing scheduled yet. Draft one with `/social`.")
    blocks += _heading("Your drafts")
    blocks += _listing(home.drafts, lambda p: _draft(p, can_compose), "No drafts.")
    if home.failures.total:
        blocks += _heading("Recent failures")
        blocks += _listing(home.failures, _failure, "")
    blocks += _heading("Connected accounts")
    blocks += _listing(home.accounts, lambda a: _account(a, accounts_url),
                       "No accounts connected yet." + (f" <{accounts_url}|Connect one on the web>."
                                                       if accounts_url else ""))
    return _view(blocks)


def _view(blocks: list[dict]) -> dict:
    if len(blocks) > MAX_BLOCKS:        # the caps above keep us far below; never send a bad view
        blocks = blocks[:MAX_BLOCKS - 1] + [context("…and more; the list was cut to fit Slack.")]
    return {"type": "home", "callback_id": ids.HOME_VIEW, "blocks": blocks}


def _heading(title: str) -> list[dict]:
    return [{"type": "divider"}, {"type": "header", "text": {"type": "plain_text", "text": title}}]


def _listing(listing: Listing, render, empty: str) -> list[dict]:
    if not listing.items:
        return [context(empty)] if empty else []
    blocks: list[dict] = []
    for item in listing.items:
        blocks += render(item)
    if listing.more:
        blocks.append(context(f"…and {listing.more} more."))
    return blocks


def _where(post: PostLine) -> str:
    networks = ", ".join(escape(n) for n in post.networks) or "no accounts"
    return f"{networks} · :calendar: {slack_date(post.scheduled_at)}"


def _awaiting(post: PostLine) -> list[dict]:
    value = f"{post.id}:{post.content_hash}"
    return [
        section(f"*{escape(post.project)}* · `{post.short_id}` from <@{post.author_slack_id}>\n"
                f"{_where(post)}\n>{escape(post.excerpt) or '_(media only)_'}"),
        {"type": "actions", "block_id": f"home_decide:{post.id}", "elements": [
            button("Approve", ids.APPROVE, value, style="primary"),
            button("Request changes", ids.REQUEST_CHANGES, value),
            button("Reject", ids.REJECT, value, style="danger"),
        ]},
    ]


def _upcoming(post: PostLine) -> list[dict]:
    block = section(f"*{escape(post.project)}* · `{post.short_id}` · "
                    f"{UPCOMING_WORDS.get(post.status, post.status)}\n{_where(post)}\n"
                    f"{escape(post.excerpt)}", block_id=f"home_upcoming:{post.id}")
    if post.can_cancel:
        block["accessory"] = _confirmed(
            button("Cancel", ids.HOME_CANCEL_POST, post.id),
            "Cancel this post?", f"Post {post.short_id} won't be published. This can't be undone.",
            "Cancel post")
    return [block]


def _draft(post: PostLine, can_edit: bool) -> list[dict]:
    block = section(f"*{escape(post.project)}* · `{post.short_id}` · :calendar: "
                    f"{slack_date(post.scheduled_at)}\n{escape(post.excerpt) or '_(empty)_'}",
                    block_id=f"home_draft:{post.id}")
    if can_edit:
        block["accessory"] = button("Edit", ids.HOME_EDIT_DRAFT, post.id)
    return [block]


def _failure(failure: FailureLine) -> list[dict]:
    text = (f"*{escape(failure.network)}* @{escape(failure.handle)} · post `{failure.short_id}` · "
            f"{FAILURE_WORDS.get(failure.status, failure.status)} {slack_date(failure.at)}")
    if failure.error:
        text += f"\n{escape(failure.error)}"
    elif failure.status == "needs_review":
        text += "\nHerald couldn't tell whether it went out; decide in the post's thread."
    blocks = [section(text, block_id=f"home_failure:{failure.target_id}")]
    elements = []
    if failure.can_retry:
        elements.append(button("Retry", ids.HOME_RETRY_TARGET, failure.target_id, style="primary"))
    if failure.can_cancel:
        elements.append(_confirmed(
            button("Cancel", ids.HOME_CANCEL_TARGET, failure.target_id),
            "Give up on this one?", f"Post {failure.short_id} won't be published to "
                                    f"{failure.network}. Other networks aren't affected.",
            "Cancel it"))
    if elements:
        blocks.append({"type": "actions", "block_id": f"home_failure_actions:{failure.target_id}",
                       "elements": elements})
    return blocks


def _account(account: AccountLine, accounts_url: str | None) -> list[dict]:
    text = f"*{escape(account.network)}* @{escape(account.handle)} · {HEALTH_WORDS.get(account.health, account.health)}"
    if account.expires_at is not None and account.health in ("ok", "expiring"):
        text += f"\nToken valid until {slack_date(account.expires_at)}"
    if account.detail and account.status != "active":
        text += f"\n{escape(account.detail)}"
    block = section(text, block_id=f"home_account:{account.id}")
    if accounts_url and account.health != "ok":
        block["accessory"] = button("Reconnect", ids.HOME_RECONNECT_ACCOUNT, account.id,
                                    url=accounts_url)
    return [block]


def _confirmed(element: dict, title: str, text: str, confirm: str) -> dict:
    element["confirm"] = {"title": {"type": "plain_text", "text": title[:100]},
                          "text": {"type": "plain_text", "text": text[:300]},
                          "confirm": {"type": "plain_text", "text": confirm[:30]},
                          "deny": {"type": "plain_text", "text": "Keep it"},
                          "style": "danger"}
    return element
