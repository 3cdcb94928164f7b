"""X adapter against the local fake (tests/fakes/platforms/x.py), which validates every
request against XSPEC; the `fake` fixture fails any test whose requests broke the spec."""
from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from platforms.base import (ACCOUNT_METRICS, POST_METRICS, Ambiguous, AuthExpired, Credentials,
                            InvalidGrant, Media, Permanent, Pkce, PlatformConfig, PublishRequest,
                            RateLimited, Transient)
from platforms.registry import get_adapter
from platforms.x import CHUNK_BYTES, DUPLICATE_MESSAGE, SCOPES, XAdapter
from tests.fakes.platforms.x import FakeX

REDIRECT = "https://herald.test/oauth/x/callback"


def make_adapter(fake: FakeX, **overrides) -> XAdapter:
    settings = dict(client_id=fake.client_id, client_secret=fake.client_secret, api_url=fake.url,
                    auth_url=fake.url + "/i/oauth2/authorize", redirect_uri=REDIRECT,
                    timeout=2.0, poll_interval=0.01, poll_budget=2.0)
    settings.update(overrides)
    return XAdapter(PlatformConfig(**settings))


@pytest.fixture
def fake():
    with FakeX() as server:
        yield server
    # Every request the adapter sent matched XSPEC (or XDOCS for the OAuth endpoints).
    assert [str(v) for v in server.violations] == []


@pytest.fixture
def adapter(fake):
    adapter = make_adapter(fake)
    yield adapter
    adapter.http.close()


@pytest.fixture
def creds(fake):
    tokens = fake.issue_tokens()
    return Credentials(access_token=tokens["access_token"], platform_user_id=fake.default_user,
                       refresh_token=tokens["refresh_token"], extra={"handle": "heraldbot"})


def req(text: str, media=(), **kw) -> PublishRequest:
    return PublishRequest(target_id="t1", text=text, idempotency_key="k1", media=list(media), **kw)


def image(fake, name="a.png", data=b"\x89PNG\r\n\x1a\nimage-bytes", alt="") -> Media:
    return Media(url=fake.add_media(name, data, "image/png"), mime="image/png", kind="image",
                 size=len(data), alt_text=alt)


def video(fake, data: bytes) -> Media:
    return Media(url=fake.add_media("v.mp4", data, "video/mp4"), mime="video/mp4", kind="video",
                 size=len(data), duration=10.0)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- connect ------------------------------------------------------------------------------


def test_connect_authorize_fake_page_exchange_and_identity(fake, adapter):
    pkce = Pkce.generate()
    url = adapter.authorize_url("state-123", pkce)
    query = parse_qs(urlparse(url).query)
    assert url.startswith(fake.url + "/i/oauth2/authorize?")
    assert query["scope"] == [" ".join(SCOPES)] and "offline.access" in query["scope"][0]
    assert "%20" in url and "+" not in url.split("scope=")[1].split("&")[0]
    assert query["code_challenge"] == [pkce.challenge]
    assert query["code_challenge_method"] == ["S256"]

    page = httpx.get(url)                       # the browser step
    assert page.status_code == 302
    back = urlparse(page.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT
    params = parse_qs(back.query)
    assert params["state"] == ["state-123"]

    tokens = adapter.exchange_code(params["code"][0], pkce)
    assert tokens.access_token in fake.access_tokens
    assert tokens.refresh_token in fake.refresh_tokens
    assert timedelta(hours=1, minutes=59) < tokens.expires_at - datetime.now(timezone.utc) \
        <= timedelta(hours=2)
    assert set(tokens.scopes) == set(SCOPES)
    token_call = fake.calls_to("/2/oauth2/token")[-1]
    assert token_call.header("Authorization").startswith("Basic ")   # confidential client
    assert token_call.form["code_verifier"] == pkce.verifier
    assert "client_id" not in token_call.form

    who = adapter.identity(tokens)
    assert (who.platform_user_id, who.handle, who.display_name) == \
        ("2244994945", "heraldbot", "Herald Bot")
    assert who.avatar_url.startswith("https://pbs.twimg.com/")


def test_public_client_sends_client_id_instead_of_basic_auth():
    with FakeX(client_secret="") as fake:
        adapter = make_adapter(fake, client_secret="")
        pkce = Pkce.generate()
        location = httpx.get(adapter.authorize_url("s", pkce)).headers["location"]
        tokens = adapter.exchange_code(parse_qs(urlparse(location).query)["code"][0], pkce)
        call = fake.calls_to("/2/oauth2/token")[-1]
        assert call.header("Authorization") is None
        assert call.form["client_id"] == fake.client_id
        assert tokens.refresh_token
        assert fake.violations == []


def test_code_exchange_with_the_wrong_verifier_is_refused(fake, adapter):
    pkce = Pkce.generate()
    location = httpx.get(adapter.authorize_url("s", pkce)).headers["location"]
    with pytest.raises(Permanent) as err:
        adapter.exchange_code(parse_qs(urlparse(location).query)["code"][0], Pkce.generate())
    assert "X" in err.value.message and err.value.http_status == 400


def test_wrong_client_secret_is_a_permanent_configuration_problem(fake):
    adapter = make_adapter(fake, client_secret="wrong")
    pkce = Pkce.generate()
    location = httpx.get(adapter.authorize_url("s", pkce)).headers["location"]
    with pytest.raises(Permanent) as err:
        adapter.exchange_code(parse_qs(urlparse(location).query)["code"][0], pkce)
    assert "credentials" in err.value.message
    assert "wrong" not in err.value.message


def test_refresh_rotates_and_the_old_refresh_token_is_refused(fake, adapter, creds):
    old = creds.refresh_token
    fresh = adapter.refresh(creds)
    assert fresh.refresh_token and fresh.refresh_token != old
    assert fresh.access_token in fake.access_tokens
    assert old in fake.used_refresh_tokens

    with pytest.raises(InvalidGrant) as err:
        adapter.refresh(creds)                   # the old one again
    assert "reconnect" in err.value.message
    assert old not in err.value.message

    creds.refresh_token = fresh.refresh_token
    assert adapter.refresh(creds).refresh_token not in (old, fresh.refresh_token)


def test_refresh_without_a_refresh_token_needs_reconnect(adapter, fake):
    with pytest.raises(InvalidGrant):
        adapter.refresh(Credentials(access_token="a", platform_user_id="1"))
    assert fake.calls_to("/2/oauth2/token") == []


def test_revoke_revokes_both_tokens_and_the_access_token_stops_working(fake, adapter, creds):
    adapter.revoke(creds)
    assert set(fake.revoked) == {creds.access_token, creds.refresh_token}
    with pytest.raises(AuthExpired):
        adapter.account_metrics(creds)
    adapter.revoke(creds)                        # revoking again is harmless


# -- publish --------------------------------------------------------------------------------


def test_publish_text(fake, adapter, creds):
    saved = []
    result = adapter.publish(req("Hello from Herald"), creds, saved.append)
    tweet = fake.tweets[result.platform_post_id]
    assert tweet.original == "Hello from Herald" and tweet.author_id == fake.default_user
    assert result.url == f"https://x.com/heraldbot/status/{tweet.id}"
    assert saved[-1]["post_id"] == tweet.id
    assert fake.calls_to("/2/tweets", "POST")[0].json == {"text": "Hello from Herald"}


def test_url_without_a_known_handle_uses_the_web_status_form(fake, adapter, creds):
    creds.extra = {}
    result = adapter.publish(req("no handle"), creds)
    assert result.url == f"https://x.com/i/web/status/{result.platform_post_id}"


def test_publish_image_uploads_once_then_posts_with_its_media_id(fake, adapter, creds):
    result = adapter.publish(req("with a picture", [image(fake, alt="A red kite")]), creds)
    uploads = fake.calls_to("/2/media/upload", "POST")
    assert len(uploads) == 1 and uploads[0].form["media_category"] == "tweet_image"
    (media_id,) = fake.tweets[result.platform_post_id].media_ids
    assert fake.uploads[media_id].alt_text == "A red kite"
    assert fake.uploads[media_id].segments[0].startswith(b"\x89PNG")


def test_publish_video_chunks_finalizes_polls_and_posts(fake, adapter, creds):
    data = bytes(range(256)) * (CHUNK_BYTES // 256) + b"tail"
    saved = []
    result = adapter.publish(req("a video", [video(fake, data)]), creds, saved.append)
    (media_id,) = fake.tweets[result.platform_post_id].media_ids
    upload = fake.uploads[media_id]
    assert upload.state == "succeeded" and upload.segments[0] + upload.segments[1] == data
    init = fake.calls_to("/2/media/upload/initialize")[0].json
    assert init == {"media_type": "video/mp4", "total_bytes": len(data),
                    "media_category": "tweet_video"}
    assert [c.form["segment_index"] for c in fake.calls_to("/2/media/upload/*/append")] == ["0", "1"]
    statuses = fake.calls_to("/2/media/upload", "GET")
    assert len(statuses) == fake.processing_polls + 1
    assert statuses[0].query == {"media_id": media_id, "command": "STATUS"}
    # checkpoints: upload id before appending, finalized, media done, then the post
    assert saved[0] == {"video": {"id": media_id, "finalized": False}}
    assert saved[1] == {"video": {"id": media_id, "finalized": True}}
    assert saved[-1]["media_ids"] == [media_id] and saved[-1]["post_id"] == result.platform_post_id


def test_video_processing_failure_is_permanent_and_posts_nothing(fake, adapter, creds):
    fake.video_outcome = "failed"
    with pytest.raises(Permanent) as err:
        adapter.publish(req("bad video", [video(fake, b"x" * 1000)]), creds)
    assert "couldn't process the video" in err.value.message
    assert fake.tweets == {}


def test_slow_video_stops_at_the_poll_budget_and_resumes_without_reuploading(fake, creds):
    fake.video_outcome = "stuck"
    adapter = make_adapter(fake, poll_budget=0.1)
    saved = []
    with pytest.raises(Transient):
        adapter.publish(req("slow video", [video(fake, b"x" * 1000)]), creds, saved.append)
    assert fake.tweets == {}
    fake.video_outcome = "succeeded"
    result = adapter.publish(req("slow video", [video(fake, b"x" * 1000)], state=saved[-1]), creds)
    assert len(fake.calls_to("/2/media/upload/initialize")) == 1
    assert fake.tweets[result.platform_post_id].media_ids == [saved[-1]["video"]["id"]]


def test_a_retry_with_a_created_post_in_state_never_posts_again(fake, adapter, creds):
    first = adapter.publish(req("once"), creds)
    again = adapter.publish(req("once", state={"post_id": first.platform_post_id}), creds)
    assert again.platform_post_id == first.platform_post_id
    assert len(fake.calls_to("/2/tweets", "POST")) == 1


def test_a_retry_reuses_media_uploaded_by_an_earlier_attempt(fake, adapter, creds):
    first = image(fake, "one.png")
    second = image(fake, "two.png")
    fake.fail("/2/tweets", method="POST", status=503, json={
        "title": "Service Unavailable", "type": "about:blank", "status": 503, "detail": "busy"})
    saved = []
    with pytest.raises(Ambiguous):
        adapter.publish(req("two pictures", [first, second]), creds, saved.append)
    result = adapter.publish(req("two pictures", [first, second], state=saved[-1]), creds)
    assert len(fake.calls_to("/2/media/upload", "POST")) == 2
    assert fake.tweets[result.platform_post_id].media_ids == saved[-1]["media_ids"]


# -- reconcile ------------------------------------------------------------------------------


def test_timeout_after_send_is_ambiguous_and_reconcile_finds_the_post(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    since = datetime.now(timezone.utc)
    text = "Launch day & more: https://example.com/very/long/path"
    fake.fail("/2/tweets", method="POST", hang_after=2.0)
    with pytest.raises(Ambiguous):
        adapter.publish(req(text), creds)
    (tweet,) = fake.tweets.values()              # the fake did create it
    assert "t.co" in tweet.text and "&amp;" in tweet.text

    found = adapter.find_published(req(text), creds, since)
    assert found.status == "found"
    assert found.published.platform_post_id == tweet.id
    assert found.published.url.endswith(f"/status/{tweet.id}")
    timeline = fake.calls_to(f"/2/users/{fake.default_user}/tweets")[0]
    assert timeline.query["start_time"].endswith("Z") and timeline.query["max_results"] == "100"


def test_reconcile_matches_a_media_post_despite_the_appended_link(fake, adapter, creds):
    since = datetime.now(timezone.utc)
    result = adapter.publish(req("picture post", [image(fake)]), creds)
    found = adapter.find_published(req("picture post", [image(fake, "b.png")]), creds, since)
    assert found.status == "found" and found.published.platform_post_id == result.platform_post_id


def test_reconcile_not_found_ignores_other_text_and_older_posts(fake, adapter, creds):
    since = datetime.now(timezone.utc)
    fake.add_tweet("same words", created_at=since - timedelta(hours=2))
    fake.add_tweet("different words")
    assert adapter.find_published(req("same words"), creds, since).status == "not_found"


def test_reconcile_follows_pagination(fake, adapter, creds):
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    target = fake.add_tweet("needle")
    for n in range(120):
        fake.add_tweet(f"hay {n}")
    found = adapter.find_published(req("needle"), creds, since)
    assert found.status == "found" and found.published.platform_post_id == target.id
    assert len(fake.calls_to(f"/2/users/{fake.default_user}/tweets")) == 2


def test_reconcile_of_a_media_only_post_is_unknown(adapter, creds, fake):
    assert adapter.find_published(req("", [image(fake)]), creds,
                                  datetime.now(timezone.utc)).status == "unknown"


# -- delete and metrics -----------------------------------------------------------------------


def test_delete_removes_the_post_and_a_second_delete_is_fine(fake, adapter, creds):
    result = adapter.publish(req("short-lived"), creds)
    adapter.delete(result.platform_post_id, creds)
    assert result.platform_post_id not in fake.tweets
    adapter.delete(result.platform_post_id, creds)


def test_account_metrics_and_unsupported(fake, adapter, creds):
    metrics = adapter.account_metrics(creds)
    assert metrics.values == {"followers": 1200, "following": 180, "posts": 3400}
    assert metrics.unsupported == frozenset(ACCOUNT_METRICS) - {"followers", "following", "posts"}
    assert "likes" not in metrics.values and metrics.extra["like_count"] == 560
    assert fake.calls_to("/2/users/me")[0].query == {"user.fields": "public_metrics"}


def test_post_metrics_and_unsupported(fake, adapter, creds):
    result = adapter.publish(req("measure me"), creds)
    metrics = adapter.post_metrics(result.platform_post_id, creds)
    assert metrics.values == {"likes": 17, "comments": 2, "shares": 3, "saves": 4,
                              "impressions": 910}
    assert metrics.unsupported == frozenset(POST_METRICS) - set(metrics.values)
    assert "views" in metrics.unsupported and "views" not in metrics.values
    assert metrics.extra == {"quote_count": 1}


def test_metrics_accept_the_xspec_names(fake, adapter, creds):
    fake.fail("/2/users/me", status=200, json={"data": {
        "id": "2244994945", "name": "Herald Bot", "username": "heraldbot",
        "public_metrics": {"followers_count": 5, "following_count": 6, "post_count": 7}}})
    assert adapter.account_metrics(creds).values["posts"] == 7
    fake.fail("/2/tweets/*", status=200, json={"data": {"id": "1", "text": "t", "public_metrics": {
        "repost_count": 9, "reply_count": 1, "like_count": 2, "quote_count": 0,
        "bookmark_count": 0, "impression_count": 40}}})
    assert adapter.post_metrics("1", creds).values["shares"] == 9


def test_metrics_for_a_deleted_post_say_so(adapter, creds):
    with pytest.raises(Permanent) as err:
        adapter.post_metrics("123", creds)
    assert "can't find that post" in err.value.message


# -- error mapping ------------------------------------------------------------------------------


def test_429_waits_until_x_rate_limit_reset(fake, adapter, creds):
    reset = int(time.time()) + 600
    fake.rate_limited("/2/tweets", reset, method="POST")
    with pytest.raises(RateLimited) as err:
        adapter.publish(req("too fast"), creds)
    assert err.value.retry_at == datetime.fromtimestamp(reset, timezone.utc)
    assert fake.tweets == {}


def test_429_with_the_24_hour_post_cap_spent_waits_for_that_reset(fake, adapter, creds):
    window, day = int(time.time()) + 300, int(time.time()) + 40000
    fake.fail("/2/tweets", method="POST", status=429, json={"title": "Too Many Requests",
              "type": "about:blank", "status": 429, "detail": "Too Many Requests"},
              headers={"x-rate-limit-reset": str(window), "x-user-limit-24hour-remaining": "0",
                       "x-user-limit-24hour-reset": str(day)})
    with pytest.raises(RateLimited) as err:
        adapter.publish(req("capped"), creds)
    assert err.value.retry_at == datetime.fromtimestamp(day, timezone.utc)


def test_v1_style_rate_limit_body_is_understood(fake, adapter, creds):
    reset = int(time.time()) + 120
    fake.fail("/2/users/me", status=429, json={"errors": [{"code": 88, "message": "Rate limit exceeded"}]},
              headers={"x-rate-limit-reset": str(reset)})
    with pytest.raises(RateLimited) as err:
        adapter.account_metrics(creds)
    assert err.value.retry_at == datetime.fromtimestamp(reset, timezone.utc)


def test_monthly_usage_cap_is_permanent_and_daily_cap_waits(fake, adapter, creds):
    fake.usage_capped("/2/tweets", "Monthly")
    with pytest.raises(Permanent) as err:
        adapter.publish(req("over the cap"), creds)
    assert "monthly usage cap" in err.value.message and err.value.code == "usage-capped"
    reset = int(time.time()) + 3600
    fake.usage_capped("/2/tweets", "Daily", reset=reset)
    with pytest.raises(RateLimited) as err:
        adapter.publish(req("over the cap"), creds)
    assert err.value.retry_at == datetime.fromtimestamp(reset, timezone.utc)


def test_duplicate_text_is_permanent_with_a_plain_message(fake, adapter, creds):
    adapter.publish(req("Same thing twice"), creds)
    with pytest.raises(Permanent) as err:
        adapter.publish(req("Same thing twice"), creds)
    assert err.value.message == DUPLICATE_MESSAGE
    assert err.value.http_status == 403 and err.value.code == "duplicate"
    assert len(fake.tweets) == 1


def test_expired_access_token_is_auth_expired(fake, adapter, creds):
    fake.expire(creds.access_token)
    with pytest.raises(AuthExpired) as err:
        adapter.publish(req("late"), creds)
    assert creds.access_token not in str(err.value) + (err.value.detail or "")
    assert fake.tweets == {}


def test_5xx_on_create_is_ambiguous_but_elsewhere_transient(fake, adapter, creds):
    problem = {"title": "Internal Server Error", "type": "about:blank", "status": 500,
               "detail": "oops"}
    fake.fail("/2/tweets", method="POST", status=500, json=problem)
    with pytest.raises(Ambiguous) as err:
        adapter.publish(req("server trouble"), creds)
    assert "may or may not exist" in err.value.message
    fake.fail("/2/users/me", status=503, json=problem)
    with pytest.raises(Transient):
        adapter.account_metrics(creds)
    fake.fail("/2/media/upload", method="POST", status=502, json=problem)
    with pytest.raises(Transient):
        adapter.publish(req("picture", [image(fake)]), creds)
    assert fake.tweets == {}


def test_timeout_on_a_read_is_transient(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    fake.fail("/2/users/me", hang_after=2.0)
    with pytest.raises(Transient):
        adapter.account_metrics(creds)


def test_connect_failure_is_transient(creds):
    adapter = XAdapter(PlatformConfig(api_url=f"http://127.0.0.1:{closed_port()}", timeout=0.5))
    with pytest.raises(Transient) as err:
        adapter.publish(req("nobody home"), creds)
    assert "X" in err.value.message


def test_bad_request_is_permanent_and_names_x(fake, adapter, creds):
    fake.fail("/2/tweets", method="POST", status=400, json={
        "title": "Invalid Request", "type": "https://api.x.com/2/problems/invalid-request",
        "status": 400, "detail": "One or more parameters to your request was invalid."})
    with pytest.raises(Permanent) as err:
        adapter.publish(req("bad"), creds)
    assert err.value.message.startswith("X rejected the request (400)")
    assert err.value.code == "invalid-request"


# -- text ------------------------------------------------------------------------------------------


def test_character_counting_follows_twitter_text(adapter):
    assert adapter.count("https://example.com/very/long/path") == 23
    assert adapter.count("😀") == 2
    assert adapter.validate("a" * 280, []) == []
    problems = adapter.validate("a" * 281, [])
    assert len(problems) == 1 and "280" in problems[0] and "281" in problems[0]
    assert adapter.validate("see " + "https://example.com/" + "x" * 300, []) == []


def test_validate_media_rules(adapter, fake):
    pics = [image(fake, f"{n}.png") for n in range(5)]
    assert any("at most 4 images" in p for p in adapter.validate("hi", pics))
    mixed = [image(fake), video(fake, b"v")]
    assert any("can't mix" in p for p in adapter.validate("hi", mixed))


# -- the fake itself --------------------------------------------------------------------------------


def test_the_fake_refuses_requests_that_break_the_spec(fake, creds):
    auth = {"Authorization": f"Bearer {creds.access_token}"}
    bad_body = httpx.post(fake.url + "/2/tweets", json={"text": "x", "status": "legacy"},
                          headers=auth)
    old_param = httpx.get(fake.url + "/2/tweets/1", params={"tweet.fields": "public_metrics"},
                          headers=auth)
    bad_segment = httpx.post(fake.url + "/2/media/upload/1/append", headers=auth,
                             files={"media": ("c", b"x")}, data={"segment_index": "1000"})
    unknown = httpx.get(fake.url + "/2/not/an/endpoint", headers=auth)
    no_bearer = httpx.get(fake.url + "/2/users/me")
    responses = (bad_body, old_param, bad_segment, unknown, no_bearer)
    assert [r.status_code for r in responses] == [400] * 5
    problems = [str(v) for v in fake.violations]
    assert "additional" in problems[0].lower() and "status" in problems[0]
    assert "tweet.fields" in problems[1]
    assert "999" in problems[2]
    assert "not an operation" in problems[3]
    assert "security" in problems[4].lower()
    assert fake.tweets == {}
    fake.violations.clear()


def test_registry_and_real_hosts_by_default():
    adapter = get_adapter("x")
    assert isinstance(adapter, XAdapter)
    assert adapter.api_url == "https://api.x.com"
    assert adapter.authorize_url("s", Pkce.generate()).startswith("https://x.com/i/oauth2/authorize?")
    caps = adapter.capabilities
    assert (caps.text_limit, caps.pkce, caps.rotates_refresh_token, caps.idempotency,
            caps.reconcile, caps.delete) == (280, True, True, False, True, True)
