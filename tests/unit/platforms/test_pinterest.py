"""Pinterest adapter against the local fake (tests/fakes/platforms/pinterest.py), which
validates every request against PSPEC; the `fake` fixture fails any test whose requests broke
the spec."""
from __future__ import annotations

import base64
import socket
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from platforms.base import (ACCOUNT_METRICS, POST_METRICS, Ambiguous, AuthExpired, Credentials,
                            InvalidGrant, Media, Permanent, PlatformConfig, PublishRequest,
                            RateLimited, Transient)
from platforms.pinterest import SCOPES, PinterestAdapter
from platforms.registry import get_adapter
from tests.fakes.platforms.pinterest import FakePinterest

REDIRECT = "https://herald.test/oauth/pinterest/callback"


def make_adapter(fake: FakePinterest, **overrides) -> PinterestAdapter:
    settings = dict(client_id=fake.client_id, client_secret=fake.client_secret, api_url=fake.url,
                    auth_url=fake.url + "/oauth/", redirect_uri=REDIRECT,
                    timeout=2.0, poll_interval=0.01, poll_budget=2.0)
    settings.update(overrides)
    return PinterestAdapter(PlatformConfig(**settings))


@pytest.fixture
def fake():
    with FakePinterest() as server:
        yield server
    # Every request the adapter sent matched PSPEC (or the hand rules for the authorize page
    # and the upload store).
    assert [str(v) for v in server.violations] == []


@pytest.fixture
def adapter(fake):
    adapter = make_adapter(fake)
    yield adapter
    adapter.http.close()


@pytest.fixture
def creds(fake):
    tokens = fake.issue_tokens()
    return Credentials(access_token=tokens["access_token"], platform_user_id=fake.account["id"],
                       refresh_token=tokens["refresh_token"], extra={"board_id": fake.board_id})


def req(text: str, media=(), **kw) -> PublishRequest:
    return PublishRequest(target_id="t1", text=text, idempotency_key="k1", media=list(media), **kw)


def image(fake, name="a.jpg", alt="") -> Media:
    data = b"\xff\xd8\xff\xe0jpeg-bytes"
    return Media(url=fake.add_media(name, data, "image/jpeg"), mime="image/jpeg", kind="image",
                 size=len(data), alt_text=alt)


def video(fake, data: bytes = b"\x00\x00\x00\x18ftypmp42" + b"v" * 5000) -> Media:
    return Media(url=fake.add_media("v.mp4", data, "video/mp4"), mime="video/mp4", kind="video",
                 size=len(data), duration=8.0)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- connect --------------------------------------------------------------------------------


def test_connect_authorize_fake_page_exchange_and_identity(fake, adapter):
    url = adapter.authorize_url("state-9")
    assert url.startswith(fake.url + "/oauth/?")
    query = parse_qs(urlparse(url).query)
    assert query["scope"] == [",".join(SCOPES)]
    assert query["response_type"] == ["code"] and "code_challenge" not in query

    page = httpx.get(url)                        # the browser step
    assert page.status_code == 302
    back = urlparse(page.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT
    params = parse_qs(back.query)
    assert params["state"] == ["state-9"]

    tokens = adapter.exchange_code(params["code"][0])
    assert tokens.access_token in fake.access_tokens
    assert tokens.refresh_token in fake.refresh_tokens
    assert timedelta(days=29) < tokens.expires_at - datetime.now(timezone.utc) <= timedelta(days=30)
    assert timedelta(days=59) < tokens.refresh_expires_at - datetime.now(timezone.utc) \
        <= timedelta(days=60)
    assert set(tokens.scopes) == set(SCOPES)
    call = fake.calls_to("/v5/oauth/token")[0]
    expected = base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
    assert call.header("Authorization") == f"Basic {expected}"
    assert call.form["grant_type"] == "authorization_code" and call.form["redirect_uri"] == REDIRECT

    who = adapter.identity(tokens)
    assert (who.platform_user_id, who.handle, who.display_name) == \
        (fake.account["id"], "heraldpins", "Herald Pins")
    assert who.avatar_url == fake.account["profile_image"]
    assert who.extra["board_id"] == fake.board_id
    assert [b["name"] for b in who.extra["boards"]] == ["Launches", "Drafts"]


def test_exchange_with_a_bad_code_or_wrong_secret_is_permanent(fake):
    with pytest.raises(Permanent) as err:
        make_adapter(fake).exchange_code("not-a-code")
    assert err.value.http_status == 400
    with pytest.raises(Permanent) as err:
        make_adapter(fake, client_secret="wrong").exchange_code("not-a-code")
    assert "credentials" in err.value.message and "wrong" not in err.value.message


def test_refresh_returns_a_new_refresh_token_and_the_old_one_is_refused(fake, adapter, creds):
    old = creds.refresh_token
    fresh = adapter.refresh(creds)
    assert fresh.refresh_token and fresh.refresh_token != old
    assert fresh.refresh_expires_at > datetime.now(timezone.utc) + timedelta(days=59)
    assert fake.calls_to("/v5/oauth/token")[0].form == {"grant_type": "refresh_token",
                                                        "refresh_token": old}
    with pytest.raises(InvalidGrant) as err:
        adapter.refresh(creds)
    assert "reconnect" in err.value.message and old not in err.value.message
    creds.refresh_token = fresh.refresh_token
    assert adapter.refresh(creds).access_token in fake.access_tokens


def test_revoke_revokes_both_tokens_with_hints(fake, adapter, creds):
    adapter.revoke(creds)
    assert fake.revoked == [(creds.refresh_token, "refresh_token"),
                            (creds.access_token, "access_token")]
    with pytest.raises(AuthExpired):
        adapter.account_metrics(creds)


# -- publish ------------------------------------------------------------------------------------


def test_publish_image_pin(fake, adapter, creds):
    saved = []
    result = adapter.publish(req("Our spring launch", [image(fake, alt="A kite")],
                                 options={"title": "Spring", "link": "https://herald.test/s"}),
                             creds, saved.append)
    pin = fake.pins[result.platform_post_id]
    assert (pin.board_id, pin.title, pin.description, pin.link, pin.alt_text) == \
        (fake.board_id, "Spring", "Our spring launch", "https://herald.test/s", "A kite")
    assert pin.media_source == {"source_type": "image_url", "url": fake.url + "/_media/a.jpg"}
    assert result.url == f"https://www.pinterest.com/pin/{pin.id}/"
    assert saved == [{"post_id": pin.id}]
    assert fake.calls_to("/_media/*") == []      # Pinterest pulls images itself


def test_publish_several_images_as_one_carousel_pin(fake, adapter, creds):
    result = adapter.publish(req("three", [image(fake, f"{n}.jpg") for n in range(3)]), creds)
    source = fake.pins[result.platform_post_id].media_source
    assert source["source_type"] == "multiple_image_urls"
    assert [i["url"].rsplit("/", 1)[-1] for i in source["items"]] == ["0.jpg", "1.jpg", "2.jpg"]


def test_publish_video_registers_uploads_polls_and_pins(fake, adapter, creds):
    clip = video(fake)
    saved = []
    result = adapter.publish(req("a video pin", [clip]), creds, saved.append)
    pin = fake.pins[result.platform_post_id]
    media_id = pin.media_source["media_id"]
    assert pin.media_source["source_type"] == "video_id"
    assert "cover_image_key_frame_time" in pin.media_source
    assert fake.uploads[media_id].status == "succeeded"
    assert fake.uploads[media_id].data == httpx.get(clip.url).content
    upload_call = fake.calls_to("/_upload/*")[0]
    assert upload_call.header("Authorization") is None          # no token to S3
    assert len(fake.calls_to(f"/v5/media/{media_id}")) == fake.processing_polls + 1
    assert saved[0] == {"video": {"media_id": media_id, "uploaded": False}}
    assert saved[1] == {"video": {"media_id": media_id, "uploaded": True}}
    assert saved[-1]["post_id"] == pin.id


def test_video_processing_failure_is_permanent(fake, adapter, creds):
    fake.video_outcome = "failed"
    with pytest.raises(Permanent) as err:
        adapter.publish(req("broken", [video(fake)]), creds)
    assert "couldn't process the video" in err.value.message
    assert fake.pins == {}


def test_slow_video_stops_at_the_budget_then_resumes_without_reuploading(fake, creds):
    fake.video_outcome = "stuck"
    adapter = make_adapter(fake, poll_budget=0.1)
    saved = []
    with pytest.raises(Transient):
        adapter.publish(req("slow", [video(fake)]), creds, saved.append)
    fake.video_outcome = "succeeded"
    fake.uploads[saved[-1]["video"]["media_id"]].status = "succeeded"
    result = adapter.publish(req("slow", [video(fake)], state=saved[-1]), creds)
    assert len(fake.calls_to("/v5/media", "POST")) == 1
    assert len(fake.calls_to("/_upload/*")) == 1
    assert fake.pins[result.platform_post_id].media_source["media_id"] == saved[-1]["video"]["media_id"]


def test_a_retry_with_a_created_pin_in_state_never_pins_again(fake, adapter, creds):
    first = adapter.publish(req("once", [image(fake)]), creds)
    again = adapter.publish(req("once", [image(fake)], state={"post_id": first.platform_post_id}),
                            creds)
    assert again.platform_post_id == first.platform_post_id
    assert len(fake.calls_to("/v5/pins", "POST")) == 1


def test_board_comes_from_options_before_the_account_default(fake, adapter, creds):
    other = list(fake.boards)[1]
    result = adapter.publish(req("elsewhere", [image(fake)], options={"board_id": other}), creds)
    assert fake.pins[result.platform_post_id].board_id == other


def test_without_board_or_media_or_with_a_long_title_nothing_is_sent(fake, adapter, creds):
    with pytest.raises(Permanent) as err:
        adapter.publish(req("no media"), creds)
    assert "image or a video" in err.value.message
    with pytest.raises(Permanent) as err:
        adapter.publish(req("t", [image(fake)], options={"title": "x" * 101}), creds)
    assert "100" in err.value.message
    creds.extra = {}
    with pytest.raises(Permanent) as err:
        adapter.publish(req("no board", [image(fake)]), creds)
    assert "board" in err.value.message
    assert fake.calls_to("/v5/*") == []


# -- reconcile ---------------------------------------------------------------------------------


def test_timeout_after_send_is_ambiguous_and_reconcile_finds_the_pin(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    since = datetime.now(timezone.utc)
    fake.fail("/v5/pins", method="POST", hang_after=2.0)
    with pytest.raises(Ambiguous):
        adapter.publish(req("Did it land?", [image(fake)]), creds)
    (pin,) = fake.pins.values()                  # the fake did create it
    found = adapter.find_published(req("Did it land?", [image(fake)]), creds, since)
    assert found.status == "found"
    assert found.published.platform_post_id == pin.id
    assert found.published.url == f"https://www.pinterest.com/pin/{pin.id}/"


def test_reconcile_not_found_ignores_older_and_different_pins(fake, adapter, creds):
    since = datetime.now(timezone.utc)
    fake.add_pin("Did it land?", created_at=since - timedelta(hours=3))
    fake.add_pin("Something else")
    assert adapter.find_published(req("Did it land?", [image(fake)]), creds, since).status == "not_found"


def test_reconcile_pages_through_the_board(fake, adapter, creds):
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    target = fake.add_pin("needle")
    for n in range(120):
        fake.add_pin(f"hay {n}")
    found = adapter.find_published(req("needle", [image(fake)]), creds, since)
    assert found.status == "found" and found.published.platform_post_id == target.id
    assert len(fake.calls_to(f"/v5/boards/{fake.board_id}/pins")) == 2


def test_reconcile_without_a_board_is_unknown(adapter, creds, fake):
    creds.extra = {}
    assert adapter.find_published(req("x", [image(fake)]), creds,
                                  datetime.now(timezone.utc)).status == "unknown"


# -- delete and metrics ---------------------------------------------------------------------------


def test_delete_then_delete_again(fake, adapter, creds):
    result = adapter.publish(req("bye", [image(fake)]), creds)
    adapter.delete(result.platform_post_id, creds)
    assert fake.pins == {}
    adapter.delete(result.platform_post_id, creds)   # 404 "Pin not found." means done


def test_account_metrics_with_analytics(fake, adapter, creds):
    metrics = adapter.account_metrics(creds)
    assert metrics.values == {"followers": 410, "following": 77, "posts": 339,
                              "impressions": 5120, "engagement": 310}
    assert metrics.unsupported == frozenset(ACCOUNT_METRICS) - set(metrics.values)
    assert metrics.extra["monthly_views"] == 16300
    call = fake.calls_to("/v5/user_account/analytics")[0]
    assert call.query["metric_types"].split(",")[:2] == ["IMPRESSION", "ENGAGEMENT"]


def test_account_without_analytics_access_reports_only_what_it_has(fake, adapter, creds):
    fake.analytics_allowed = False
    metrics = adapter.account_metrics(creds)
    assert metrics.values == {"followers": 410, "following": 77, "posts": 339}
    assert "impressions" not in metrics.unsupported      # offered, just not to this account
    assert "analytics" in metrics.extra


def test_post_metrics_for_an_image_pin(fake, adapter, creds):
    result = adapter.publish(req("measure", [image(fake)]), creds)
    metrics = adapter.post_metrics(result.platform_post_id, creds)
    assert metrics.values == {"impressions": 240, "likes": 10, "comments": 2, "saves": 20}
    assert metrics.unsupported == {"shares", "reach", "views"}
    assert fake.calls_to("/v5/pins/*/analytics")[0].query["metric_types"] == "SAVE"


def test_post_metrics_for_a_video_pin_include_views(fake, adapter, creds):
    result = adapter.publish(req("watch", [video(fake)]), creds)
    metrics = adapter.post_metrics(result.platform_post_id, creds)
    assert metrics.values["views"] == 31
    assert metrics.unsupported == {"shares", "reach"}
    assert set(metrics.values) | metrics.unsupported == set(POST_METRICS)


# -- error mapping ----------------------------------------------------------------------------------


def test_429_is_rate_limited_using_retry_after_or_a_default(fake, adapter, creds):
    fake.rate_limited("/v5/pins", method="POST", headers={"Retry-After": "120"})
    before = datetime.now(timezone.utc)
    with pytest.raises(RateLimited) as err:
        adapter.publish(req("fast", [image(fake)]), creds)
    assert timedelta(seconds=118) <= err.value.retry_at - before <= timedelta(seconds=122)
    assert err.value.code == "8"
    fake.rate_limited("/v5/user_account")
    with pytest.raises(RateLimited) as err:
        adapter.account_metrics(creds)
    assert err.value.retry_at > datetime.now(timezone.utc)
    assert fake.pins == {}


def test_429_with_an_epoch_reset_header_waits_until_then(fake, adapter, creds):
    reset = int(datetime.now(timezone.utc).timestamp()) + 900
    fake.rate_limited("/v5/user_account", headers={"x-ratelimit-reset": str(reset)})
    with pytest.raises(RateLimited) as err:
        adapter.account_metrics(creds)
    assert err.value.retry_at == datetime.fromtimestamp(reset, timezone.utc)


def test_expired_token_is_auth_expired(fake, adapter, creds):
    fake.expire(creds.access_token)
    with pytest.raises(AuthExpired) as err:
        adapter.publish(req("late", [image(fake)]), creds)
    assert creds.access_token not in err.value.message + (err.value.detail or "")


def test_5xx_on_create_is_ambiguous_but_elsewhere_transient(fake, adapter, creds):
    fake.fail("/v5/pins", method="POST", status=500, json={"code": 0, "message": "Internal"})
    with pytest.raises(Ambiguous):
        adapter.publish(req("oops", [image(fake)]), creds)
    fake.fail("/v5/user_account", status=503, json={"code": 0, "message": "Unavailable"})
    with pytest.raises(Transient):
        adapter.account_metrics(creds)
    fake.fail("/v5/media", method="POST", status=502, json={"code": 0, "message": "Bad gateway"})
    with pytest.raises(Transient):
        adapter.publish(req("video", [video(fake)]), creds)


def test_documented_4xx_codes_are_permanent_and_readable(fake, adapter, creds):
    with pytest.raises(Permanent) as err:
        adapter.publish(req("x", [image(fake)], options={"board_id": "999"}), creds)
    assert err.value.message == "Pinterest couldn't find it: Board not found."
    assert err.value.code == "40"
    fake.fail("/v5/pins", method="POST", status=403,
              json={"code": 29, "message": "You are not permitted to access that resource."})
    with pytest.raises(Permanent) as err:
        adapter.publish(req("x", [image(fake)]), creds)
    assert err.value.message.startswith("Pinterest refused")


def test_timeout_on_a_read_is_transient(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    fake.fail("/v5/user_account", hang_after=2.0)
    with pytest.raises(Transient):
        adapter.account_metrics(creds)


def test_connect_failure_is_transient(creds, fake):
    adapter = PinterestAdapter(PlatformConfig(api_url=f"http://127.0.0.1:{closed_port()}",
                                              timeout=0.5))
    with pytest.raises(Transient) as err:
        adapter.publish(req("nobody home", [image(fake)]), creds)
    assert "Pinterest" in err.value.message


# -- text ---------------------------------------------------------------------------------------------


def test_description_limit_and_media_rules(adapter, fake):
    pic = [image(fake)]
    assert adapter.validate("a" * 800, pic) == []
    assert any("800" in p for p in adapter.validate("a" * 801, pic))
    assert any("image or a video" in p for p in adapter.validate("text only", []))
    assert any("at most 5 images" in p for p in
               adapter.validate("many", [image(fake, f"{n}.jpg") for n in range(6)]))
    assert adapter.count("😀") == 1


# -- the fake itself ----------------------------------------------------------------------------------


def test_the_fake_refuses_requests_that_break_the_spec(fake, creds):
    auth = {"Authorization": f"Bearer {creds.access_token}"}
    long_title = httpx.post(fake.url + "/v5/pins", headers=auth, json={
        "board_id": fake.board_id, "title": "x" * 101,
        "media_source": {"source_type": "image_url", "url": "https://e.test/a.jpg"}})
    bad_source = httpx.post(fake.url + "/v5/pins", headers=auth, json={
        "board_id": fake.board_id, "media_source": {"source_type": "image_link"}})
    no_basic = httpx.post(fake.url + "/v5/oauth/token",
                          data={"grant_type": "refresh_token", "refresh_token": "r"})
    no_bearer = httpx.get(fake.url + "/v5/user_account")
    assert [r.status_code for r in (long_title, bad_source, no_basic, no_bearer)] == [400] * 4
    problems = [str(v) for v in fake.violations]
    assert "too long" in problems[0]
    assert "image_link" in problems[1]
    assert "basic" in problems[2].lower()
    assert "security" in problems[3].lower() and "pinterest_oauth2" in problems[3]
    assert fake.pins == {}
    fake.violations.clear()


def test_registry_and_real_hosts_by_default():
    adapter = get_adapter("pinterest")
    assert isinstance(adapter, PinterestAdapter)
    assert adapter.api_url == "https://api.pinterest.com"
    assert adapter.authorize_url("s").startswith("https://www.pinterest.com/oauth/?")
    caps = adapter.capabilities
    assert (caps.text_limit, caps.requires_media, caps.pkce, caps.rotates_refresh_token,
            caps.reconcile) == (800, True, False, True, True)
