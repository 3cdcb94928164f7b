"""Instagram adapter (Instagram Login) against the local fake (tests/fakes/platforms/instagram.py)."""
from __future__ import annotations

import socket
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from platforms.base import (ACCOUNT_METRICS, POST_METRICS, Ambiguous, AuthExpired, Credentials,
                            InvalidGrant, Media, Permanent, PlatformConfig, PublishRequest,
                            RateLimited, Transient)
from platforms.http import utcnow
from platforms.instagram import InstagramAdapter
from platforms.meta import GRAPH_VERSION
from platforms.registry import get_adapter
from tests.fakes.platforms.instagram import InstagramFake

REDIRECT = "https://herald.test/oauth/instagram/callback"
V = GRAPH_VERSION


def make_adapter(fake: InstagramFake, **overrides) -> InstagramAdapter:
    settings = dict(client_id=fake.client_id, client_secret=fake.client_secret, api_url=fake.url,
                    auth_url=fake.url + "/oauth/authorize", redirect_uri=REDIRECT, timeout=2.0,
                    poll_interval=0.01, poll_budget=2.0)
    settings.update(overrides)
    return InstagramAdapter(PlatformConfig(**settings))


@pytest.fixture
def fake():
    with InstagramFake() as server:
        yield server


@pytest.fixture
def adapter(fake):
    adapter = make_adapter(fake)
    yield adapter
    adapter.http.close()


@pytest.fixture
def creds(fake):
    return Credentials(access_token=fake.token_for(fake.user_id), platform_user_id=fake.user_id,
                       extra={"username": "herald.test"})


def image(fake, name="a.jpg", alt="") -> Media:
    return Media(url=fake.add_media(name, b"\xff\xd8jpeg", "image/jpeg"), mime="image/jpeg",
                 kind="image", alt_text=alt)


def video(fake) -> Media:
    return Media(url=fake.add_media("v.mp4", b"mp4-bytes", "video/mp4"), mime="video/mp4",
                 kind="video", duration=12.0)


def post(text: str, media=(), state=None) -> PublishRequest:
    return PublishRequest(target_id="t1", text=text, idempotency_key="k1", media=list(media),
                          state=dict(state or {}))


class Recorder(list):
    """A checkpoint that remembers each state and how many requests the fake had seen."""

    def __init__(self, fake):
        super().__init__()
        self.fake = fake

    def __call__(self, state):
        self.append((dict(state), len(self.fake.calls)))

    @property
    def last(self) -> dict:
        return self[-1][0]


def publish_calls(fake):
    return fake.calls_to(f"/{V}/{fake.user_id}/media_publish", "POST")


def container_calls(fake):
    return fake.calls_to(f"/{V}/{fake.user_id}/media", "POST")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- basics --------------------------------------------------------------------------------

def test_registry_and_capabilities():
    adapter = get_adapter("instagram")
    assert isinstance(adapter, InstagramAdapter)
    assert adapter.api_url == "https://graph.instagram.com"
    assert adapter.auth_url == "https://www.instagram.com/oauth/authorize"
    assert adapter.token_url == "https://api.instagram.com"
    caps = adapter.capabilities
    assert caps.text_limit == 2200 and caps.requires_media and not caps.publish_text
    assert caps.max_images == 10 and not caps.idempotency and caps.reconcile
    assert not caps.delete and caps.refresh and not caps.rotates_refresh_token and not caps.pkce
    assert caps.account_metrics <= set(ACCOUNT_METRICS) and caps.post_metrics <= set(POST_METRICS)


def test_caption_counts_code_points_up_to_2200():
    adapter = InstagramAdapter()
    assert adapter.count("👍" * 10) == 10          # an emoji is one character here
    assert adapter.count("é" * 2200) == 2200
    media = [Media(url="https://x/a.jpg", mime="image/jpeg", kind="image")]
    assert adapter.validate("é" * 2200, media) == []
    assert any("2200" in p for p in adapter.validate("é" * 2201, media))


def test_validation_needs_media_and_limits_hashtags():
    adapter = InstagramAdapter()
    assert any("image or a video" in p for p in adapter.validate("just words", []))
    media = [Media(url="https://x/a.jpg", mime="image/jpeg", kind="image")]
    assert adapter.validate(" ".join(f"#t{i}" for i in range(30)), media) == []
    assert any("hashtags" in p for p in adapter.validate(" ".join(f"#t{i}" for i in range(31)), media))
    assert any("image/png" in p for p in adapter.validate("x", [
        Media(url="https://x/a.png", mime="image/png", kind="image")]))


# -- connect -------------------------------------------------------------------------------

def test_connect_through_the_authorize_page(fake, adapter):
    url = adapter.authorize_url("state-123")
    query = parse_qs(urlparse(url).query)
    assert url.startswith(fake.url + "/oauth/authorize?")
    assert query["client_id"] == [fake.client_id] and query["redirect_uri"] == [REDIRECT]
    assert query["response_type"] == ["code"] and query["state"] == ["state-123"]
    scopes = query["scope"][0].split(",")
    assert {"instagram_business_basic", "instagram_business_content_publish",
            "instagram_business_manage_insights"} <= set(scopes)

    answer = httpx.get(url)                                   # what the browser does
    assert answer.status_code == 302
    back = urlparse(answer.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT
    callback = parse_qs(back.query)
    assert callback["state"] == ["state-123"]

    tokens = adapter.exchange_code(callback["code"][0])
    stored = fake.tokens[tokens.access_token]
    assert stored.kind == "long"                             # the long-lived exchange happened
    assert tokens.expires_at - utcnow() > timedelta(days=59)
    assert tokens.refresh_token is None
    assert "instagram_business_content_publish" in tokens.scopes
    exchange = fake.calls_to("/oauth/access_token", "POST")[0]
    assert exchange.form["grant_type"] == "authorization_code"
    assert exchange.form["redirect_uri"] == REDIRECT and exchange.form["client_secret"]
    assert fake.calls_to("/access_token")[0].query["grant_type"] == "ig_exchange_token"

    me = adapter.identity(tokens)
    assert me.platform_user_id == fake.user_id                # the professional account id
    assert me.handle == "herald.test" and me.display_name == "Herald Test"
    assert me.avatar_url == "https://cdn.example/ig/avatar.jpg"


def test_a_used_code_is_refused(fake, adapter):
    location = httpx.get(adapter.authorize_url("s")).headers["location"]
    code = parse_qs(urlparse(location).query)["code"][0]
    adapter.exchange_code(code)
    with pytest.raises(Permanent) as caught:
        adapter.exchange_code(code)
    assert "Instagram" in caught.value.message


def test_refresh_swaps_the_long_lived_token(fake, adapter, creds):
    fresh = adapter.refresh(creds)
    assert fresh.access_token != creds.access_token
    assert fake.tokens[fresh.access_token].kind == "long"
    assert fresh.expires_at - utcnow() > timedelta(days=59)
    call = fake.calls_to("/refresh_access_token")[0]
    assert call.query["grant_type"] == "ig_refresh_token"
    assert call.query["access_token"] == creds.access_token


def test_refresh_of_an_expired_token_needs_reconnecting(fake, adapter, creds):
    fake.expire(creds.access_token)
    with pytest.raises(InvalidGrant):
        adapter.refresh(creds)


def test_revoke_is_not_offered_and_calls_nothing(fake, adapter, creds):
    adapter.revoke(creds)
    assert fake.calls == []


# -- publish -------------------------------------------------------------------------------

def test_publish_an_image(fake, adapter, creds):
    checkpoints = Recorder(fake)
    published = adapter.publish(post("Hello #herald", [image(fake, alt="A cat")]), creds,
                                checkpoints)

    [create] = container_calls(fake)
    assert create.form["image_url"].endswith("/_media/a.jpg")
    assert create.form["caption"] == "Hello #herald" and create.form["alt_text"] == "A cat"
    container = fake.containers[checkpoints[0][0]["container_id"]]
    assert container.polls == fake.finish_after               # polled until FINISHED
    [publish] = publish_calls(fake)
    assert publish.query["creation_id"] == container.id
    assert checkpoints[0][1] < fake.calls.index(publish)      # checkpoint before publishing
    media = fake.posts[published.platform_post_id]
    assert media["caption"] == "Hello #herald" and container.status == "PUBLISHED"
    assert published.url == media["permalink"]
    assert checkpoints.last == {"container_id": container.id, "media_id": media["id"]}


def test_publish_a_reel(fake, adapter, creds):
    published = adapter.publish(post("Watch", [video(fake)]), creds)
    [create] = container_calls(fake)
    assert create.form["media_type"] == "REELS" and create.form["video_url"].endswith("/v.mp4")
    container = fake.containers[fake.posts[published.platform_post_id]["container_id"]]
    assert container.polls == fake.video_finish_after
    assert fake.posts[published.platform_post_id]["media_type"] == "VIDEO"


def test_publish_a_carousel(fake, adapter, creds):
    checkpoints = Recorder(fake)
    published = adapter.publish(post("Three", [image(fake, f"{n}.jpg") for n in "abc"]), creds,
                                checkpoints)
    creates = container_calls(fake)
    assert [c.form.get("is_carousel_item") for c in creates] == ["true", "true", "true", None]
    children = checkpoints.last["children"]
    assert creates[-1].form["media_type"] == "CAROUSEL"
    assert creates[-1].form["children"] == ",".join(children)
    assert all(fake.containers[c].status == "FINISHED" for c in children)
    assert fake.posts[published.platform_post_id]["media_type"] == "CAROUSEL_ALBUM"


def test_text_alone_is_refused_before_any_call(fake, adapter, creds):
    with pytest.raises(Permanent):
        adapter.publish(post("words only"), creds)
    assert fake.calls == []


def test_container_error_is_permanent_and_not_published(fake, adapter, creds):
    fake.fail_next_container("The video could not be processed")
    with pytest.raises(Permanent) as caught:
        adapter.publish(post("Broken", [video(fake)]), creds)
    assert "could not be processed" in caught.value.message
    assert publish_calls(fake) == []


def test_unreachable_media_fails_in_the_container(fake, adapter, creds):
    missing = Media(url=f"{fake.url}/_media/nope.jpg", mime="image/jpeg", kind="image")
    with pytest.raises(Permanent) as caught:
        adapter.publish(post("x", [missing]), creds)
    assert "download" in caught.value.message


# -- resume from a checkpoint --------------------------------------------------------------

def test_retry_after_a_failed_publish_reuses_the_container(fake, adapter, creds):
    fake.graph_fail(f"/{V}/{fake.user_id}/media_publish", 2, "Service temporarily unavailable",
                    status=503, is_transient=True)
    checkpoints = Recorder(fake)
    with pytest.raises(Transient):
        adapter.publish(post("Again", [image(fake)]), creds, checkpoints)
    state = checkpoints.last
    assert set(state) == {"container_id"}

    published = adapter.publish(post("Again", [image(fake)], state), creds)
    assert len(container_calls(fake)) == 1                    # no second container
    assert len(fake.posts) == 1 and published.platform_post_id in fake.posts


def test_a_published_container_is_not_published_twice(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    fake.fail(f"/{V}/{fake.user_id}/media_publish", hang_after=1.5)
    checkpoints = Recorder(fake)
    with pytest.raises(Ambiguous):
        adapter.publish(post("Maybe", [image(fake)]), creds, checkpoints)
    assert len(fake.posts) == 1                               # it did go out
    state = checkpoints.last                                  # only the container id is known

    published = adapter.publish(post("Maybe", [image(fake)], state), creds)
    assert len(publish_calls(fake)) == 1 and len(container_calls(fake)) == 1
    assert published.platform_post_id == next(iter(fake.posts))


def test_known_media_id_means_no_calls_but_the_permalink(fake, adapter, creds):
    first = adapter.publish(post("Once", [image(fake)]), creds)
    before = len(fake.calls)
    again = adapter.publish(post("Once", [image(fake)], {
        "container_id": fake.posts[first.platform_post_id]["container_id"],
        "media_id": first.platform_post_id}), creds)
    assert again == first
    assert [c.method for c in fake.calls[before:]] == ["GET"]


def test_polling_gives_up_within_budget_then_resumes(fake, creds):
    adapter = make_adapter(fake, poll_budget=0.05)
    fake.video_finish_after = 10**6
    checkpoints = Recorder(fake)
    with pytest.raises(Transient):
        adapter.publish(post("Slow", [video(fake)]), creds, checkpoints)
    assert publish_calls(fake) == []
    container = fake.containers[checkpoints.last["container_id"]]
    container.finish_after = container.polls + 1             # processing completes meanwhile

    adapter.publish(post("Slow", [video(fake)], checkpoints.last), creds)
    assert len(container_calls(fake)) == 1 and len(fake.posts) == 1


# -- reconcile -----------------------------------------------------------------------------

def test_reconcile_a_published_container_finds_the_media(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    since = utcnow() - timedelta(minutes=1)
    fake.fail(f"/{V}/{fake.user_id}/media_publish", hang_after=1.5)
    checkpoints = Recorder(fake)
    with pytest.raises(Ambiguous):
        adapter.publish(post("Did it?", [image(fake)]), creds, checkpoints)

    lookup = adapter.find_published(post("Did it?", [image(fake)], checkpoints.last), creds, since)
    assert lookup.status == "found"
    assert lookup.published.platform_post_id == next(iter(fake.posts))
    assert lookup.published.url.startswith("https://www.instagram.com/p/")


def test_reconcile_a_finished_container_is_not_found(fake, adapter, creds):
    fake.graph_fail(f"/{V}/{fake.user_id}/media_publish", 1, "An unknown error occurred",
                    status=500)
    checkpoints = Recorder(fake)
    with pytest.raises(Transient):
        adapter.publish(post("Not yet", [image(fake)]), creds, checkpoints)
    lookup = adapter.find_published(post("Not yet", state=checkpoints.last), creds,
                                    utcnow() - timedelta(minutes=1))
    assert lookup.status == "not_found" and "FINISHED" in lookup.reason


def test_reconcile_without_state_matches_recent_captions(fake, adapter, creds):
    since = utcnow() - timedelta(minutes=1)
    done = adapter.publish(post("Already there", [image(fake)]), creds)
    found = adapter.find_published(post("Already  there"), creds, since)
    assert found.status == "found" and found.published.platform_post_id == done.platform_post_id
    assert adapter.find_published(post("Something else"), creds, since).status == "not_found"


# -- metrics and delete --------------------------------------------------------------------

def test_account_metrics(fake, adapter, creds):
    adapter.publish(post("One", [image(fake)]), creds)
    metrics = adapter.account_metrics(creds)
    assert metrics.values == {"followers": 1200, "following": 80, "posts": 1, "reach": 640,
                              "impressions": 900, "likes": 25, "engagement": 25 + 4 + 2 + 3 + 1}
    assert metrics.unsupported == {"profile_views"}
    totals = [c for c in fake.calls_to(f"/{V}/{fake.user_id}/insights")
              if c.query.get("metric_type") == "total_value"]
    assert totals and totals[0].query["period"] == "day"


def test_post_metrics(fake, adapter, creds):
    published = adapter.publish(post("Counted", [image(fake)]), creds)
    metrics = adapter.post_metrics(published.platform_post_id, creds)
    assert metrics.values == {"likes": 42, "comments": 5, "shares": 3, "saves": 7, "views": 500,
                              "reach": 300}
    assert metrics.unsupported == {"impressions"}
    assert not set(metrics.values) & metrics.unsupported


def test_delete_is_not_offered(fake, adapter, creds):
    with pytest.raises(Permanent) as caught:
        adapter.delete("17900000000000001", creds)
    assert "doesn't" in caught.value.message
    assert fake.calls == []


# -- errors --------------------------------------------------------------------------------

def test_throttled_publish_waits_for_the_business_usage_header(fake, adapter, creds):
    fake.throttle(f"/{V}/{fake.user_id}/media_publish", code=80002, regain_minutes=7)
    with pytest.raises(RateLimited) as caught:
        adapter.publish(post("Busy", [image(fake)]), creds)
    expected = utcnow() + timedelta(minutes=7)
    assert abs((caught.value.retry_at - expected).total_seconds()) < 5
    assert caught.value.code == "80002"


def test_publishing_cap_is_rate_limited(fake, adapter, creds):
    fake.publish_cap = 0
    with pytest.raises(RateLimited) as caught:
        adapter.publish(post("Too many", [image(fake)]), creds)
    assert caught.value.code == "9/2207042"
    assert caught.value.retry_at - utcnow() > timedelta(minutes=30)


def test_expired_token_is_auth_expired(fake, adapter, creds):
    fake.expire(creds.access_token)
    with pytest.raises(AuthExpired) as caught:
        adapter.publish(post("x", [image(fake)]), creds)
    assert not isinstance(caught.value, InvalidGrant)
    assert creds.access_token not in caught.value.message + (caught.value.detail or "")


def test_server_error_is_transient(fake, adapter, creds):
    fake.fail(f"/{V}/{fake.user_id}/media", method="POST", status=502, body="Bad Gateway")
    with pytest.raises(Transient):
        adapter.publish(post("x", [image(fake)]), creds)


def test_invalid_caption_is_permanent(fake, adapter, creds):
    with pytest.raises(Permanent) as caught:
        adapter.publish(post("x" * 2201, [image(fake)]), creds)
    assert "caption is too long" in caught.value.message


def test_missing_publish_permission_asks_to_reconnect(fake, adapter):
    token = fake.token_for(fake.user_id, scopes=("instagram_business_basic",))
    creds = Credentials(access_token=token, platform_user_id=fake.user_id)
    with pytest.raises(Permanent) as caught:
        adapter.publish(post("x", [image(fake)]), creds)
    assert "reconnect" in caught.value.message


def test_timeout_creating_a_container_is_transient_not_ambiguous(fake, creds):
    """Containers are invisible until published, so a lost answer there can't double-post."""
    adapter = make_adapter(fake, timeout=0.5)
    fake.fail(f"/{V}/{fake.user_id}/media", method="POST", hang_after=1.5)
    with pytest.raises(Transient):
        adapter.publish(post("x", [image(fake)]), creds)
    assert len(fake.containers) == 1 and fake.posts == {}


def test_connect_failure_is_transient(creds):
    adapter = InstagramAdapter(PlatformConfig(api_url=f"http://127.0.0.1:{closed_port()}",
                                              timeout=1.0))
    with pytest.raises(Transient):
        adapter.publish(post("x", [Media(url="https://x/a.jpg", mime="image/jpeg",
                                         kind="image")]), creds)
