"""Pure builders: the compose modal, the /social lists, and date/time ↔ zone helpers."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from slack_sdk.models.views import View

from bot import timeinput
from bot.blocks import ids
from bot.blocks.compose import (MAX_OVERRIDES, ComposeModal, Form, Length, Metadata, Option,
                                account_label, compose_view, errors_for, loading_view,
                                no_accounts_view, notice_view, plain_text_of, read_form)
from bot.blocks.lists import AccountRow, PostRow, accounts_message, drafts_message, help_message, \
    queue_message


def modal(**kw) -> ComposeModal:
    values = dict(projects=[Option("p1", "Brand")],
                  accounts=[Option("a1", "X @brand", "Brand"), Option("a2", "Mastodon @brand", "Brand")],
                  form=Form(), metadata=Metadata(channel_id="C1", tz="America/New_York"),
                  zone="America/New_York")
    values.update(kw)
    return ComposeModal(**values)


def valid(view: dict) -> dict:
    View(**view).to_dict()             # Block Kit limits and element shapes
    assert len(view["title"]["text"]) <= 24 and len(view["blocks"]) <= 100
    assert len(view.get("private_metadata", "")) <= 3000
    return view


def by_id(view: dict) -> dict:
    return {b.get("block_id"): b for b in view["blocks"]}


def test_a_new_modal_is_valid_and_preselects_the_only_project():
    view = valid(compose_view(modal()))
    blocks = by_id(view)
    assert view["callback_id"] == ids.COMPOSE_VIEW and view["submit"]["text"] == "Save"
    assert blocks[ids.COMPOSE_PROJECT_BLOCK]["element"]["initial_option"]["value"] == "p1"
    accounts = blocks[ids.COMPOSE_ACCOUNTS_BLOCK]
    assert accounts["dispatch_action"] is True and accounts["element"]["type"] == "multi_static_select"
    assert [o["value"] for o in accounts["element"]["options"]] == ["a1", "a2"]
    assert "initial_options" not in accounts["element"]
    assert blocks[ids.COMPOSE_INTENT_BLOCK]["element"]["initial_option"]["value"] == ids.INTENT_SUBMIT
    assert blocks[ids.COMPOSE_TIME_BLOCK]["element"]["timezone"] == "America/New_York"
    assert not any(k.startswith(ids.COMPOSE_OVERRIDE_BLOCK_PREFIX) for k in blocks if k)
    assert ids.COMPOSE_KEEP_MEDIA_BLOCK not in blocks and ids.COMPOSE_LENGTHS_BLOCK not in blocks


def test_several_projects_group_the_accounts_and_nothing_is_preselected():
    view = valid(compose_view(modal(
        projects=[Option("p1", "Brand"), Option("p2", "Other")],
        accounts=[Option("a1", "X @brand", "Brand"), Option("a3", "X @other", "Other"),
                  Option("a4", "Bluesky @free", "")])))
    element = by_id(view)[ids.COMPOSE_ACCOUNTS_BLOCK]["element"]
    assert [g["label"]["text"] for g in element["option_groups"]] == ["Brand", "Other", "Not in a project"]
    assert "initial_option" not in by_id(view)[ids.COMPOSE_PROJECT_BLOCK]["element"]


def test_prefilled_form_round_trips_through_the_view_state():
    form = Form(project_id="p1", accounts=[Option("a1", "X @brand")], body="Hello",
                overrides={"a1": "Hi X"}, media_url="https://example.com/a.png", alt_text="A",
                date="2030-01-15", time="09:00", tags="one, two", intent=ids.INTENT_DRAFT)
    view = valid(compose_view(modal(form=form, editing=True,
                                    lengths=[Length("X @brand", 4, 280)])))
    assert view["title"]["text"] == "Edit post"
    blocks = by_id(view)
    assert blocks[f"{ids.COMPOSE_OVERRIDE_BLOCK_PREFIX}a1"]["element"]["initial_value"] == "Hi X"
    assert blocks[ids.COMPOSE_LENGTHS_BLOCK]["elements"][0]["text"] == "X @brand 4/280"
    # What Slack would send back for those initial values:
    values = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        kind = element["type"]
        entry = {"type": kind}
        if "initial_value" in element:
            entry["value"] = element["initial_value"]
        if "initial_option" in element:
            entry["selected_option"] = element["initial_option"]
        if "initial_options" in element:
            entry["selected_options"] = element["initial_options"]
        if "initial_date" in element:
            entry["selected_date"] = element["initial_date"]
        if "initial_time" in element:
            entry["selected_time"] = element["initial_time"]
        values[block["block_id"]] = {element["action_id"]: entry}
    back = read_form({"state": {"values": values}})
    assert back == form


def test_overrides_are_capped_to_keep_the_modal_under_100_blocks():
    chosen = [Option(f"a{n}", f"Mastodon @n{n}") for n in range(60)]
    view = valid(compose_view(modal(accounts=chosen, form=Form(accounts=chosen))))
    overrides = [b for b in view["blocks"]
                 if b.get("block_id", "").startswith(ids.COMPOSE_OVERRIDE_BLOCK_PREFIX)]
    assert len(overrides) == MAX_OVERRIDES
    assert "first 20 accounts" in json.dumps(view)


def test_external_accounts_select_keeps_chosen_accounts_as_initial_options():
    view = valid(compose_view(modal(accounts=[], external_accounts=True,
                                    form=Form(accounts=[Option("a9", "X @far")]),
                                    metadata=Metadata(external=True))))
    element = by_id(view)[ids.COMPOSE_ACCOUNTS_BLOCK]["element"]
    assert element["type"] == "multi_external_select" and element["min_query_length"] == 0
    assert element["initial_options"] == [{"text": {"type": "plain_text", "text": "X @far"}, "value": "a9"}]
    assert "options" not in element


def test_editing_with_a_slack_file_offers_to_keep_it():
    view = valid(compose_view(modal(kept_media=["Slack file F1"], editing=True)))
    keep = by_id(view)[ids.COMPOSE_KEEP_MEDIA_BLOCK]["element"]
    assert keep["initial_options"] == keep["options"]
    unticked = read_form({"state": {"values": {ids.COMPOSE_KEEP_MEDIA_BLOCK: {
        ids.COMPOSE_KEEP_MEDIA: {"type": "checkboxes", "selected_options": []}}}}})
    assert unticked.keep_media is False
    assert read_form({"state": {"values": {}}}).keep_media is True


def test_long_prefills_are_cut_to_what_slack_accepts():
    view = valid(compose_view(modal(form=Form(body="x" * 5000))))
    assert len(by_id(view)[ids.COMPOSE_BODY_BLOCK]["element"]["initial_value"]) == 3000


def test_other_views_are_valid():
    for view in (loading_view(), notice_view("Only editors can do that."),
                 no_accounts_view("https://herald.example/accounts")):
        valid(view)
        assert "submit" not in view
    assert "Loading" in json.dumps(loading_view())


def test_metadata_is_small_json_and_tolerates_garbage():
    meta = Metadata(post_id="0b5f", channel_id="C1", tz="Europe/Berlin", external=True)
    raw = meta.dumps()
    assert json.loads(raw) == {"p": "0b5f", "c": "C1", "z": "Europe/Berlin", "x": 1}
    assert Metadata.loads(raw) == meta
    assert Metadata.loads("not json") == Metadata()
    assert Metadata.loads('["a list"]') == Metadata()
    assert Metadata.loads(json.dumps({"p": {"nested": 1}, "c": "C" * 500})).post_id is None
    assert len(Metadata.loads(json.dumps({"c": "C" * 500})).channel_id) == 64


def test_read_form_ignores_junk_and_defaults_to_submit():
    form = read_form({"state": {"values": {
        ids.COMPOSE_ACCOUNTS_BLOCK: {ids.COMPOSE_ACCOUNTS: {"selected_options": ["junk", {"value": ""},
                                                                                 {"value": "a1"}]}},
        ids.COMPOSE_INTENT_BLOCK: {ids.COMPOSE_INTENT: {"selected_option": {"value": "delete-everything"}}},
        ids.COMPOSE_TAGS_BLOCK: {ids.COMPOSE_TAGS: {"value": " a, ,b\nc "}},
        f"{ids.COMPOSE_OVERRIDE_BLOCK_PREFIX}a1": {ids.COMPOSE_OVERRIDE: {"value": "   "}},
    }}})
    assert form.account_ids == ["a1"] and form.intent == ids.INTENT_SUBMIT
    assert form.tag_list() == ["a", "b", "c"] and form.overrides == {}


def test_core_field_errors_map_to_block_ids():
    form = Form(accounts=[Option("a1", "X @b")], media_url="https://e.com/x.pdf")
    errors = errors_for({"project": "P", "accounts": "A", "body": "B", "schedule": "S", "tags": "T",
                         "media": "M", "override:a1": "O", "override:zz": "Z", "__all__": "G"}, form)
    assert errors == {ids.COMPOSE_PROJECT_BLOCK: "P", ids.COMPOSE_ACCOUNTS_BLOCK: "A",
                      ids.COMPOSE_BODY_BLOCK: "B Z G", ids.COMPOSE_DATE_BLOCK: "S",
                      ids.COMPOSE_TAGS_BLOCK: "T", ids.COMPOSE_MEDIA_URL_BLOCK: "M",
                      f"{ids.COMPOSE_OVERRIDE_BLOCK_PREFIX}a1": "O"}
    assert errors_for({"media": "M"}, Form()) == {ids.COMPOSE_MEDIA_FILE_BLOCK: "M"}


def test_account_labels():
    assert account_label("X", "brand") == "X @brand"
    assert account_label("Bluesky", "a.bsky.social", "needs_reauth") == \
        "Bluesky @a.bsky.social (needs reconnecting)"
    assert account_label("Sandbox", "") == "Sandbox"
    assert len(account_label("Mastodon", "x" * 200)) == 75


def test_plain_text_of_a_slack_message():
    assert plain_text_of("<https://a.example/x?y=1|a.example> &amp; <mailto:m@e.com|mail> <#C1|news> "
                         "<!here> <@U1>") == "https://a.example/x?y=1 & mailto:m@e.com #news @here @U1"


# --------------------------------------------------------------------------------------
# Lists


def row(**kw) -> PostRow:
    values = dict(post_id="0b5f" * 8, short_id="0b5f0b5f", status="scheduled",
                  scheduled_at=datetime(2030, 1, 15, 14, tzinfo=timezone.utc), project="Brand",
                  body="Hello <world> & all", author_slack_id="U2", networks=["X"])
    values.update(kw)
    return PostRow(**values)


def test_queue_message_shows_ids_localised_times_and_escapes_text():
    text, blocks = queue_message([row()], [row(short_id="11112222", author_slack_id="U9")])
    dump = json.dumps(blocks)
    assert "`0b5f0b5f`" in dump and "`11112222`" in dump and "<@U9>" in dump
    assert f"<!date^{int(datetime(2030, 1, 15, 14, tzinfo=timezone.utc).timestamp())}^" in dump
    assert "Hello &lt;world&gt; &amp; all" in dump
    assert len(blocks) <= 50 and text.startswith("Upcoming posts")


def test_long_lists_stay_under_the_message_block_limit():
    _, blocks = queue_message([row()] * 40, [row()] * 40)
    assert len(blocks) <= 50
    _, blocks = drafts_message([row(status="draft")] * 40)
    assert len(blocks) <= 50


def test_drafts_message_has_an_edit_button_per_draft():
    _, blocks = drafts_message([row(status="draft", scheduled_at=None)])
    button = blocks[1]["accessory"]
    assert (button["action_id"], button["value"]) == (ids.DRAFT_EDIT, "0b5f" * 8)
    assert "no time set" in blocks[1]["text"]["text"]
    assert "no drafts" in drafts_message([])[0]


def test_accounts_and_help_messages():
    text, blocks = accounts_message([AccountRow("X", "brand", "active", "Brand", "Renews automatically"),
                                     AccountRow("Bluesky", "b", "needs_reauth")], "https://h/accounts")
    dump = json.dumps(blocks)
    assert "*X* @brand" in dump and "Renews automatically" in dump and "needs reconnecting" in dump
    assert "<https://h/accounts|" in dump and text == "2 connected accounts"
    assert "/social drafts" in json.dumps(help_message()[1])


# --------------------------------------------------------------------------------------
# Time zones


def test_wall_clock_in_a_zone_becomes_utc():
    assert timeinput.to_utc("2030-01-15", "09:00", "America/New_York") == \
        datetime(2030, 1, 15, 14, 0, tzinfo=timezone.utc)             # EST, UTC-5
    assert timeinput.to_utc("2030-07-15", "09:00", "America/New_York") == \
        datetime(2030, 7, 15, 13, 0, tzinfo=timezone.utc)             # EDT, UTC-4
    assert timeinput.to_utc("2030-01-15", "09:00", "Not/AZone") == \
        datetime(2030, 1, 15, 9, 0, tzinfo=timezone.utc)              # unknown zone: UTC


def test_dst_gaps_and_folds_resolve_to_the_earlier_offset():
    # 02:30 on 2030-03-10 doesn't exist in New York (clocks jump 02:00 → 03:00)
    assert timeinput.to_utc("2030-03-10", "02:30", "America/New_York") == \
        datetime(2030, 3, 10, 7, 30, tzinfo=timezone.utc)
    # 01:30 on 2030-11-03 happens twice; the first (EDT) is taken
    assert timeinput.to_utc("2030-11-03", "01:30", "America/New_York") == \
        datetime(2030, 11, 3, 5, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("day, clock", [("2030-02-30", "09:00"), ("tomorrow", "09:00"),
                                        ("2030-01-15", "25:00"), ("2030-01-15", None)])
def test_unreadable_dates_raise_bad_time(day, clock):
    with pytest.raises(timeinput.BadTime):
        timeinput.to_utc(day, clock, "UTC")


def test_local_parts_and_zone_choice():
    instant = datetime(2030, 1, 15, 14, 0, tzinfo=timezone.utc)
    assert timeinput.local_parts(instant, "America/New_York") == ("2030-01-15", "09:00")
    assert timeinput.local_parts(instant, "Asia/Tokyo") == ("2030-01-15", "23:00")
    assert timeinput.local_parts(None, "UTC") == (None, None)
    assert timeinput.pick_zone(None, "", "Bad/Zone", "Europe/Berlin") == "Europe/Berlin"
    assert timeinput.pick_zone(None) == "UTC"
