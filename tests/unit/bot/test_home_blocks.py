"""The App Home builder: pure (data in, view out), valid, within Slack's 100 blocks."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from slack_sdk.models.views import View

from bot.blocks import ids
from bot.blocks.home import MAX_BLOCKS, home_view
from core.home import AccountLine, FailureLine, Home, Limits, Listing, PostLine

AT = datetime(2030, 5, 1, 9, 30, tzinfo=timezone.utc)


def post(n: int = 1, **kw) -> PostLine:
    values = dict(id=f"00000000-0000-4000-8000-{n:012d}", short_id=f"{n:08x}", project="Brand",
                  author_slack_id="UAUTHOR", status="pending_approval", scheduled_at=AT,
                  excerpt=f"Post number {n} <b>", networks=["Mastodon", "X"],
                  content_hash=f"{n:064x}")
    values.update(kw)
    return PostLine(**values)


def failure(n: int = 1, **kw) -> FailureLine:
    values = dict(target_id=f"10000000-0000-4000-8000-{n:012d}", post_id="p", short_id="abcd1234",
                  network="X", handle="brand", status="failed", error="Duplicate content",
                  at=AT, can_retry=True, can_cancel=True)
    values.update(kw)
    return FailureLine(**values)


def account(n: int = 1, **kw) -> AccountLine:
    values = dict(id=f"20000000-0000-4000-8000-{n:012d}", network="Mastodon", handle=f"brand{n}",
                  status="active", detail="", health="ok", expires_at=AT)
    values.update(kw)
    return AccountLine(**values)


def elements(view, action_id=None):
    found = []
    for block in view["blocks"]:
        for element in block.get("elements", []) if block["type"] == "actions" else \
                ([block["accessory"]] if "accessory" in block else []):
            if action_id is None or element.get("action_id") == action_id:
                found.append(element)
    return found


def text(view) -> str:
    return json.dumps(view["blocks"])


def valid(view):
    assert view["type"] == "home" and view["callback_id"] == ids.HOME_VIEW
    assert len(view["blocks"]) <= MAX_BLOCKS
    View(**view).to_dict()
    return view


def test_someone_herald_doesnt_know_gets_a_welcome_and_no_data():
    view = valid(home_view(Home(member=False), notice=None, can_compose=True))
    assert "/social" in text(view) and elements(view) == []


def test_an_approver_sees_decision_buttons_with_id_and_hash():
    home = Home(member=True, role="approver", awaiting=Listing([post(1), post(2)], 2))
    view = valid(home_view(home))
    approve = elements(view, ids.APPROVE)
    assert [b["value"] for b in approve] == [f"{post(n).id}:{post(n).content_hash}" for n in (1, 2)]
    assert len(elements(view, ids.REQUEST_CHANGES)) == 2 and len(elements(view, ids.REJECT)) == 2
    assert "Post number 1 &lt;b&gt;" in text(view)


@pytest.mark.parametrize("role", ["editor", "analyst"])
def test_people_who_cant_approve_have_no_approval_section(role):
    view = valid(home_view(Home(member=True, role=role, upcoming=Listing([post(1)], 1))))
    assert "Waiting for your approval" not in text(view)
    assert elements(view, ids.APPROVE) == []


def test_lists_say_how_many_more_there_are():
    home = Home(member=True, role="owner", upcoming=Listing([post(1, status="scheduled")], 31),
                drafts=Listing([post(2, status="draft")], 1))
    view = valid(home_view(home))
    assert "and 30 more" in text(view)
    assert text(view).count("more.") == 1


def test_upcoming_posts_can_be_cancelled_only_when_allowed_and_with_a_confirmation():
    home = Home(member=True, role="editor",
                upcoming=Listing([post(1, status="scheduled", can_cancel=True),
                                  post(2, status="scheduled", can_cancel=False)], 2))
    cancel = elements(valid(home_view(home)), ids.HOME_CANCEL_POST)
    assert [b["value"] for b in cancel] == [post(1).id]
    assert cancel[0]["confirm"]["confirm"]["text"]


def test_failures_offer_retry_and_cancel_as_allowed():
    home = Home(member=True, role="editor", failures=Listing(
        [failure(1), failure(2, status="missed", can_retry=False),
         failure(3, status="needs_review", can_retry=False, can_cancel=False, error="")], 3))
    view = valid(home_view(home))
    assert [b["value"] for b in elements(view, ids.HOME_RETRY_TARGET)] == [failure(1).target_id]
    assert [b["value"] for b in elements(view, ids.HOME_CANCEL_TARGET)] == \
        [failure(1).target_id, failure(2).target_id]
    assert "Duplicate content" in text(view) and "needs review" in text(view)


def test_no_failures_no_failure_section():
    view = valid(home_view(Home(member=True, role="owner")))
    assert "Recent failures" not in text(view)


def test_account_health_shows_status_and_expiry_never_a_token():
    home = Home(member=True, role="owner", accounts=Listing([
        account(1), account(2, health="expiring"),
        account(3, status="needs_reauth", health="needs_reauth", detail="Token revoked"),
    ], 3))
    view = valid(home_view(home, accounts_url="https://herald.example/accounts"))
    rendered = text(view)
    assert f"<!date^{int(AT.timestamp())}^" in rendered
    assert "needs reconnecting" in rendered and "Token revoked" in rendered
    reconnect = elements(view, ids.HOME_RECONNECT_ACCOUNT)
    assert [b["value"] for b in reconnect] == [account(2).id, account(3).id]
    assert all(b["url"] == "https://herald.example/accounts" for b in reconnect)
    # The builder can't leak a token: what it is given has none.
    assert not any("token" in name for name in AccountLine.__dataclass_fields__)


def test_new_post_and_edit_only_when_the_compose_modal_is_there():
    home = Home(member=True, role="editor", drafts=Listing([post(1, status="draft")], 1))
    without = valid(home_view(home, can_compose=False))
    assert elements(without, ids.HOME_EDIT_DRAFT) == [] and elements(without, ids.HOME_NEW_POST) == []
    with_compose = valid(home_view(home, can_compose=True))
    assert [b["value"] for b in elements(with_compose, ids.HOME_EDIT_DRAFT)] == [post(1).id]
    assert len(elements(with_compose, ids.HOME_NEW_POST)) == 1


def test_a_notice_goes_on_top():
    view = valid(home_view(Home(member=True, role="editor"), notice="Approved (1 of 2) <x>"))
    assert "Approved (1 of 2) &lt;x&gt;" in json.dumps(view["blocks"][:3])


def test_full_lists_at_their_caps_fit_in_100_blocks():
    limits = Limits()
    home = Home(member=True, role="owner",
                awaiting=Listing([post(n) for n in range(limits.awaiting)], 500),
                upcoming=Listing([post(n, can_cancel=True) for n in range(limits.upcoming)], 500),
                drafts=Listing([post(n, status="draft") for n in range(limits.drafts)], 500),
                failures=Listing([failure(n) for n in range(limits.failures)], 500),
                accounts=Listing([account(n, health="expired") for n in range(limits.accounts)], 500))
    view = valid(home_view(home, notice="Done", accounts_url="https://h/accounts", can_compose=True))
    assert text(view).count("and 4") >= 5         # "…and 49x more." under every list


def test_even_absurd_lists_are_cut_to_100_blocks():
    home = Home(member=True, role="owner", awaiting=Listing([post(n) for n in range(200)], 200))
    view = valid(home_view(home))
    assert len(view["blocks"]) == MAX_BLOCKS and "cut to fit" in text(view)


def test_the_same_data_renders_the_same_view():
    """What lets the publisher skip unchanged Homes: no clock, no randomness in the output."""
    home = Home(member=True, role="owner", awaiting=Listing([post(1)], 1),
                accounts=Listing([account(1)], 1))
    assert home_view(home) == home_view(home)
