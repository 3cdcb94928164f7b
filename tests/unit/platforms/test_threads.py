"""Threads adapter against the local fake (tests/fakes/platforms/threads.py)."""
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
from platforms.meta import THREADS_VERSION
from platforms.registry import get_adapter
from platforms.threads import ThreadsAdapter
from tests.fakes.platforms.threads import ThreadsFake

REDIRECT = "https://herald.test/oauth/threads/callback"
V = THREADS_VERSION


def make_adapter(fake: ThreadsFake, **overrides) -> ThreadsAdapter:
    settings = dict(client_id=fake.client_id, client_secret=fake.client_secret, api_url=fake.url,
                    auth_url=fake.url + "/oauth/authorize", redirect_uri=REDIRECT, timeout=2.0,
                    poll_interval=0.01, poll_budget=2.0)
    settings.update(overrides)
    return ThreadsAdapter(PlatformConfig(**settings))


@pytest.fixture
def fake():
    with ThreadsFake() as server:
        yield server


@pytest.fixture
def adapter(fake):
    adapter = make_adapter(fake)
    yield adapter
    adapter.http.close()


@pytest.fixture
def creds(fake):
    return Credentials(access_token=fake.token_for(fake.user_id), platform_user_id=fake.user_id,
                       extra={"username": "herald.threads"})


def image(fake, name="a.png") -> Media:
    return Media(url=fake.add_media(name, b"\x89PNG", "image/png"), mime="image/png", kind="image")


def video(fake) -> Media:
    return Media(url=fake.add_media("v.mp4", b"mp4-bytes", "video/mp4"), mime="video/mp4",
                 kind="video", duration=8.0)


def post(text: str, media=(), state=None) -> PublishRequest:
    return PublishRequest(target_id="t1", text=text, idempotency_key="k1", media=list(media),
                          state=dict(state or {}))


class Recorder(list):
    def __init__(self, fake):
        super().__init__()
        self.fake = fake

    def __call__(self, state):
        self.append((dict(state), len(self.fake.calls)))

    @property
    def last(self) -> dict:
        return self[-1][0]


def containers_created(fake):
    return fake.calls_to(f"/{V}/{fake.user_id}/threads", "POST")


def publish_calls(fake):
    return fake.calls_to(f"/{V}/{fake.user_id}/threads_publish", "POST")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- basics --------------------------------------------------------------------------------

def test_registry_and_capabilities():
    adapter = get_adapter("threads")
    assert isinstance(adapter, ThreadsAdapter)
    assert adapter.api_url == "https://graph.threads.net"
    assert adapter.auth_url == "https://threads.net/oauth/authorize"
    caps = adapter.capabilities
    assert caps.text_limit == 500 and not caps.requires_media and caps.publish_text
    assert caps.delete and caps.reconcile and not caps.idempotency and caps.max_images == 20
    assert caps.refresh and not caps.rotates_refresh_token and not caps.pkce
    assert caps.account_metrics <= set(ACCOUNT_METRICS) and caps.post_metrics <= set(POST_METRICS)


def test_emoji_count_as_their_utf8_bytes():
    adapter = ThreadsAdapter()
    assert adapter.count("hello") == 5
    assert adapter.count("👍") == 4
    assert adapter.count("hi 👍") == 7
    assert adapter.count("👨‍👩‍👧") == len("👨‍👩‍👧".encode("utf-8")) == 18   # one ZWJ family
    assert adapter.count("é") == 1                     # accented letters stay one character
    assert adapter.validate("a" * 496 + "👍", []) == []          # 500 exactly
    assert any("500" in p for p in adapter.validate("a" * 497 + "👍", []))


# -- connect -------------------------------------------------------------------------------

def test_connect_through_the_authorize_page(fake, adapter):
    url = adapter.authorize_url("st-9")
    query = parse_qs(urlparse(url).query)
    assert url.startswith(fake.url + "/oauth/authorize?")
    assert query["client_id"] == [fake.client_id] and query["state"] == ["st-9"]
    assert query["response_type"] == ["code"] and query["redirect_uri"] == [REDIRECT]
    assert {"threads_basic", "threads_content_publish", "threads_manage_insights",
            "threads_delete"} <= set(query["scope"][0].split(","))

    back = urlparse(httpx.get(url).headers["location"])
    callback = parse_qs(back.query)
    assert callback["state"] == ["st-9"]

    tokens = adapter.exchange_code(callback["code"][0])
    assert fake.tokens[tokens.access_token].kind == "long"
    assert tokens.expires_at - utcnow() > timedelta(days=59)
    assert tokens.extra["user_id"] == fake.user_id
    exchange = fake.calls_to("/oauth/access_token", "POST")[0]
    assert exchange.form["grant_type"] == "authorization_code"
    assert exchange.form["redirect_uri"] == REDIRECT
    long_lived = fake.calls_to("/access_token")[0]
    assert long_lived.query["grant_type"] == "th_exchange_token"
    assert long_lived.query["client_secret"] == fake.client_secret

    me = adapter.identity(tokens)
    assert me.platform_user_id == fake.user_id and me.handle == "herald.threads"
    assert me.display_name == "Herald Threads"
    assert me.avatar_url == "https://cdn.example/th/avatar.jpg"


def test_wrong_redirect_uri_is_refused(fake, adapter):
    location = httpx.get(adapter.authorize_url("s")).headers["location"]
    code = parse_qs(urlparse(location).query)["code"][0]
    other = make_adapter(fake, redirect_uri="https://elsewhere.test/cb")
    with pytest.raises(Permanent) as caught:
        other.exchange_code(code)
    assert "redirect_uri" in caught.value.message


def test_refresh_renews_the_long_lived_token(fake, adapter, creds):
    fresh = adapter.refresh(creds)
    assert fresh.access_token != creds.access_token
    assert fake.tokens[fresh.access_token].kind == "long"
    assert fresh.expires_at - utcnow() > timedelta(days=59)
    assert fake.calls_to("/refresh_access_token")[0].query["grant_type"] == "th_refresh_token"


def test_refresh_of_an_expired_token_needs_reconnecting(fake, adapter, creds):
    fake.expire(creds.access_token)
    with pytest.raises(InvalidGrant):
        adapter.refresh(creds)


def test_revoke_is_not_offered_and_calls_nothing(fake, adapter, creds):
    adapter.revoke(creds)
    assert fake.calls == []


# -- publish -------------------------------------------------------------------------------

def test_publish_text(fake, adapter, creds):
    checkpoints = Recorder(fake)
    published = adapter.publish(post("Hello Threads 👋"), creds, checkpoints)
    [create] = containers_created(fake)
    assert create.form == {"media_type": "TEXT", "text": "Hello Threads 👋"}
    container_id = checkpoints[0][0]["container_id"]
    assert fake.containers[container_id].status == "PUBLISHED"
    [publish] = publish_calls(fake)
    assert publish.query["creation_id"] == container_id
    assert checkpoints[0][1] < fake.calls.index(publish)
    assert fake.posts[published.platform_post_id]["text"] == "Hello Threads 👋"
    assert published.url == fake.posts[published.platform_post_id]["permalink"]


def test_publish_an_image(fake, adapter, creds):
    published = adapter.publish(post("Look", [image(fake)]), creds)
    [create] = containers_created(fake)
    assert create.form["media_type"] == "IMAGE" and create.form["image_url"].endswith("/a.png")
    assert fake.posts[published.platform_post_id]["media_type"] == "IMAGE"


def test_publish_a_video_waits_for_processing(fake, adapter, creds):
    published = adapter.publish(post("Watch", [video(fake)]), creds)
    [create] = containers_created(fake)
    assert create.form["media_type"] == "VIDEO" and create.form["video_url"].endswith("/v.mp4")
    container = fake.containers[fake.posts[published.platform_post_id]["container_id"]]
    assert container.polls == fake.video_finish_after


def test_publish_a_carousel(fake, adapter, creds):
    checkpoints = Recorder(fake)
    adapter.publish(post("Two", [image(fake, "1.png"), image(fake, "2.png")]), creds, checkpoints)
    creates = containers_created(fake)
    assert [c.form.get("is_carousel_item") for c in creates] == ["true", "true", None]
    assert creates[-1].form["children"] == ",".join(checkpoints.last["children"])


def test_container_error_is_permanent(fake, adapter, creds):
    fake.fail_next_container("The video could not be processed")
    with pytest.raises(Permanent) as caught:
        adapter.publish(post("Broken", [video(fake)]), creds)
    assert "Threads" in caught.value.message and "could not be processed" in caught.value.message
    assert publish_calls(fake) == []


# -- resume from a checkpoint --------------------------------------------------------------

def test_retry_with_a_container_in_state_does_not_create_another(fake, adapter, creds):
    fake.throttle(f"/{V}/{fake.user_id}/threads_publish", code=4, regain_minutes=3)
    checkpoints = Recorder(fake)
    with pytest.raises(RateLimited):
        adapter.publish(post("Later"), creds, checkpoints)
    adapter.publish(post("Later", state=checkpoints.last), creds)
    assert len(containers_created(fake)) == 1 and len(fake.posts) == 1


def test_a_published_container_is_not_published_twice(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    fake.fail(f"/{V}/{fake.user_id}/threads_publish", hang_after=1.5)
    checkpoints = Recorder(fake)
    with pytest.raises(Ambiguous):
        adapter.publish(post("Maybe"), creds, checkpoints)
    assert len(fake.posts) == 1                                # the fake did publish it

    published = adapter.publish(post("Maybe", state=checkpoints.last), creds)
    assert len(publish_calls(fake)) == 1 and len(containers_created(fake)) == 1
    assert published.platform_post_id == next(iter(fake.posts))


def test_polling_budget_runs_out_as_transient(fake, creds):
    adapter = make_adapter(fake, poll_budget=0.05)
    fake.finish_after = 10**6
    checkpoints = Recorder(fake)
    with pytest.raises(Transient):
        adapter.publish(post("Slow"), creds, checkpoints)
    assert publish_calls(fake) == [] and "container_id" in checkpoints.last


# -- reconcile -----------------------------------------------------------------------------

def test_reconcile_after_an_ambiguous_publish_finds_it(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    since = utcnow() - timedelta(minutes=1)
    fake.fail(f"/{V}/{fake.user_id}/threads_publish", hang_after=1.5)
    checkpoints = Recorder(fake)
    with pytest.raises(Ambiguous):
        adapter.publish(post("Out there?"), creds, checkpoints)
    lookup = adapter.find_published(post("Out there?", state=checkpoints.last), creds, since)
    assert lookup.status == "found"
    assert lookup.published.platform_post_id == next(iter(fake.posts))


def test_reconcile_an_errored_container_is_not_found(fake, adapter, creds):
    fake.fail_next_container("bad media")
    checkpoints = Recorder(fake)
    with pytest.raises(Permanent):
        adapter.publish(post("x", [video(fake)]), creds, checkpoints)
    lookup = adapter.find_published(post("x", state=checkpoints.last), creds, utcnow())
    assert lookup.status == "not_found" and "ERROR" in lookup.reason


def test_reconcile_without_state_matches_recent_text(fake, adapter, creds):
    since = utcnow() - timedelta(minutes=1)
    done = adapter.publish(post("Recent one"), creds)
    found = adapter.find_published(post("Recent one"), creds, since)
    assert found.status == "found" and found.published.platform_post_id == done.platform_post_id
    assert fake.calls_to(f"/{V}/{fake.user_id}/threads", "GET")[0].query["since"]
    assert adapter.find_published(post("Never posted"), creds, since).status == "not_found"


# -- metrics and delete --------------------------------------------------------------------

def test_account_metrics(fake, adapter, creds):
    metrics = adapter.account_metrics(creds)
    assert metrics.values == {"followers": 870, "likes": 40, "profile_views": 310,
                              "engagement": 40 + 6 + 4 + 2}
    assert metrics.unsupported == {"following", "posts", "impressions", "reach"}
    assert metrics.extra["clicks"] == 9


def test_post_metrics(fake, adapter, creds):
    published = adapter.publish(post("Measured"), creds)
    metrics = adapter.post_metrics(published.platform_post_id, creds)
    assert metrics.values == {"likes": 55, "comments": 8, "shares": 6 + 2, "views": 1000}
    assert metrics.unsupported == {"saves", "impressions", "reach"}
    assert metrics.extra["quotes"] == 1


def test_delete(fake, adapter, creds):
    published = adapter.publish(post("Short-lived"), creds)
    adapter.delete(published.platform_post_id, creds)
    assert published.platform_post_id not in fake.posts
    assert fake.calls_to(f"/{V}/{published.platform_post_id}", "DELETE")


def test_delete_without_the_permission_asks_to_reconnect(fake, adapter):
    token = fake.token_for(fake.user_id, scopes=("threads_basic", "threads_content_publish"))
    creds = Credentials(access_token=token, platform_user_id=fake.user_id)
    published = adapter.publish(post("Stuck"), creds)
    with pytest.raises(Permanent) as caught:
        adapter.delete(published.platform_post_id, creds)
    assert "reconnect" in caught.value.message
    assert published.platform_post_id in fake.posts


# -- errors --------------------------------------------------------------------------------

def test_throttle_with_retry_after_only(fake, adapter, creds):
    fake.throttle(f"/{V}/{fake.user_id}/threads", method="POST", code=17, retry_after=90)
    with pytest.raises(RateLimited) as caught:
        adapter.publish(post("x"), creds)
    assert abs((caught.value.retry_at - (utcnow() + timedelta(seconds=90))).total_seconds()) < 5


def test_expired_token_is_auth_expired(fake, adapter, creds):
    fake.expire(creds.access_token)
    with pytest.raises(AuthExpired) as caught:
        adapter.publish(post("x"), creds)
    assert caught.value.code == "190/463"


def test_server_error_is_transient(fake, adapter, creds):
    fake.graph_fail(f"/{V}/{fake.user_id}/threads", 2, "Service temporarily unavailable",
                    status=500, method="POST", is_transient=True)
    with pytest.raises(Transient):
        adapter.publish(post("x"), creds)
    assert fake.posts == {}


def test_too_long_text_is_permanent(fake, adapter, creds):
    with pytest.raises(Permanent) as caught:
        adapter.publish(post("👍" * 126), creds)             # 504 counted characters
    assert "500" in caught.value.message


def test_timeout_after_the_publish_was_sent_is_ambiguous(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    fake.fail(f"/{V}/{fake.user_id}/threads_publish", hang_after=1.5)
    with pytest.raises(Ambiguous):
        adapter.publish(post("Lost reply"), creds)
    assert [p["text"] for p in fake.posts.values()] == ["Lost reply"]


def test_connect_failure_is_transient(creds):
    adapter = ThreadsAdapter(PlatformConfig(api_url=f"http://127.0.0.1:{closed_port()}",
                                            timeout=1.0))
    with pytest.raises(Transient):
        adapter.publish(post("x"), creds)
