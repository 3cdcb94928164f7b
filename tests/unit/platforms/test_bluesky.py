"""Bluesky adapter against the local fake PDS (tests/fakes/platforms/bluesky.py)."""
from __future__ import annotations

import re
import socket
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from platforms.base import (
    Ambiguous, AuthExpired, Credentials, InvalidGrant, Media, Permanent, PlatformConfig,
    PublishRequest, RateLimited, Transient, ACCOUNT_METRICS, POST_METRICS,
)
from platforms.bluesky import BlueskyAdapter, detect_facets, record_key
from platforms.registry import get_adapter
from tests.fakes.platforms.bluesky import FakeBluesky

APP_PASSWORD = "abcd-efgh-ijkl-mnop"
FAMILY = "👨‍👩‍👧‍👦"   # 7 code points, 25 UTF-8 bytes, 1 grapheme
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_adapter(url: str, **overrides) -> BlueskyAdapter:
    settings = dict(api_url=url, timeout=2.0, poll_interval=0.01, poll_budget=2.0)
    settings.update(overrides)
    return BlueskyAdapter(PlatformConfig(**settings))


@pytest.fixture(scope="module")
def server():
    with FakeBluesky() as running:   # one server per module; each test starts from reset()
        yield running


@pytest.fixture
def fake(server):
    server.reset()
    server.alice = server.add_account("alice.test", APP_PASSWORD, display_name="Alice",
                                      avatar="https://cdn.example/alice.jpg", followers=12,
                                      follows=3)
    server.bob = server.add_account("bob.test", "bobs-password")
    yield server
    assert server.violations == [], "requests broke the lexicons"


@pytest.fixture
def adapter(fake):
    adapter = make_adapter(fake.url)
    yield adapter
    adapter.http.close()


def credentials_from(tokens) -> Credentials:
    return Credentials(access_token=tokens.access_token, platform_user_id=tokens.extra["did"],
                       refresh_token=tokens.refresh_token, extra=dict(tokens.extra))


@pytest.fixture
def creds(adapter):
    return credentials_from(adapter.create_session("alice.test", APP_PASSWORD))


def request_for(text: str, key: str = "item-1", media=(), state=None, **options) -> PublishRequest:
    return PublishRequest(target_id="t1", text=text, idempotency_key=key, media=list(media),
                          options=options, state=dict(state or {}))


def png(fake, name="cat.png", alt="", width=None, height=None) -> Media:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    return Media(url=fake.add_media(name, data, "image/png"), mime="image/png", kind="image",
                 size=len(data), width=width, height=height, alt_text=alt)


# -- registry, capabilities, counting ------------------------------------------------------

def test_registry_builds_the_bluesky_adapter():
    adapter = get_adapter("bluesky")
    assert isinstance(adapter, BlueskyAdapter)
    assert adapter.api_url == "https://bsky.social"
    caps = adapter.capabilities
    assert (caps.connect, caps.rotates_refresh_token, caps.idempotency, caps.reconcile) == \
        ("app_password", True, True, True)
    assert (caps.text_limit, caps.max_bytes, caps.max_images, caps.max_videos) == (300, 3000, 4, 1)


def test_counts_graphemes_and_enforces_both_limits():
    adapter = BlueskyAdapter()
    assert adapter.count(FAMILY) == 1
    assert adapter.count("🇫🇷é") == 2
    assert adapter.validate(FAMILY * 100, []) == []        # 100 graphemes, 2500 bytes
    too_many_chars = adapter.validate("a" * 301, [])
    assert len(too_many_chars) == 1 and "300" in too_many_chars[0]
    # 150 graphemes but 3750 bytes: only the byte rule fails.
    too_many_bytes = adapter.validate(FAMILY * 150, [])
    assert len(too_many_bytes) == 1 and "3000 bytes" in too_many_bytes[0]


def test_validate_checks_media_types_counts_and_sizes():
    adapter = BlueskyAdapter()
    big = Media(url="https://x/a.png", mime="image/png", kind="image", size=2_500_000)
    assert any("2 MB" in p for p in adapter.validate("hi", [big]))
    gif = Media(url="https://x/a.gif", mime="image/gif", kind="image")
    assert any("image/gif" in p for p in adapter.validate("hi", [gif]))
    five = [Media(url=f"https://x/{i}.png", mime="image/png", kind="image") for i in range(5)]
    assert any("4 images" in p for p in adapter.validate("hi", five))


def test_record_key_is_a_deterministic_tid():
    assert record_key("item-1") == record_key("item-1")
    assert record_key("item-1") != record_key("item-2")
    assert all(TID.match(record_key(f"key-{i}")) for i in range(200))


# -- connect ------------------------------------------------------------------------------

def test_connect_with_handle_and_app_password(fake, adapter):
    tokens = adapter.create_session("@Alice.test", APP_PASSWORD)
    assert tokens.access_token and tokens.refresh_token
    assert tokens.extra == {"did": fake.alice, "handle": "alice.test", "pds_url": fake.url}
    now = datetime.now(timezone.utc)
    # Lifetimes come from the JWTs' exp claims: 2 h access, 90 d refresh.
    assert abs(tokens.expires_at - (now + timedelta(hours=2))) < timedelta(minutes=1)
    assert abs(tokens.refresh_expires_at - (now + timedelta(days=90))) < timedelta(minutes=1)
    login = fake.calls_to("/xrpc/com.atproto.server.createSession")[0]
    assert login.json == {"identifier": "Alice.test", "password": APP_PASSWORD}

    me = adapter.identity(tokens)
    assert (me.platform_user_id, me.handle, me.display_name, me.avatar_url) == \
        (fake.alice, "alice.test", "Alice", "https://cdn.example/alice.jpg")


def test_wrong_app_password_is_permanent_and_not_echoed(adapter):
    with pytest.raises(Permanent) as caught:
        adapter.create_session("alice.test", "wrong-password-123")
    assert "app password" in caught.value.message
    assert "wrong-password-123" not in f"{caught.value.message} {caught.value.detail}"


def test_oauth_entry_points_explain_app_passwords(adapter):
    with pytest.raises(Permanent, match="app password"):
        adapter.authorize_url("state")
    with pytest.raises(Permanent, match="app password"):
        adapter.exchange_code("code")


def test_refresh_rotates_and_the_old_refresh_token_is_refused(fake, adapter, creds):
    fresh = adapter.refresh(creds)
    assert fresh.refresh_token != creds.refresh_token
    assert fresh.access_token != creds.access_token
    assert fresh.extra["did"] == fake.alice
    call = fake.calls_to("/xrpc/com.atproto.server.refreshSession")[0]
    assert call.header("Authorization") == f"Bearer {creds.refresh_token}"

    with pytest.raises(InvalidGrant) as caught:
        adapter.refresh(creds)                     # the rotated-out refreshJwt
    assert caught.value.code == "ExpiredToken"
    assert creds.refresh_token not in caught.value.message
    adapter.refresh(credentials_from(fresh))       # the new one works


def test_expired_access_token_is_auth_expired_and_refresh_recovers(fake, adapter, creds):
    fake.expire(creds.access_token)
    with pytest.raises(AuthExpired) as caught:
        adapter.publish(request_for("hello"), creds)
    assert not isinstance(caught.value, InvalidGrant) and caught.value.code == "ExpiredToken"
    assert fake.posts() == []
    published = adapter.publish(request_for("hello"), credentials_from(adapter.refresh(creds)))
    assert published.platform_post_id.startswith(f"at://{fake.alice}/")


@pytest.mark.parametrize("name", ["ExpiredToken", "InvalidToken"])
def test_refresh_refused_is_invalid_grant(fake, adapter, creds, name):
    fake.fail("/xrpc/com.atproto.server.refreshSession", status=400,
              json={"error": name, "message": "Token has been revoked"})
    with pytest.raises(InvalidGrant):
        adapter.refresh(creds)


def test_revoke_deletes_the_session(fake, adapter, creds):
    adapter.revoke(creds)
    call = fake.calls_to("/xrpc/com.atproto.server.deleteSession")[0]
    assert call.header("Authorization") == f"Bearer {creds.refresh_token}"
    with pytest.raises(InvalidGrant):
        adapter.refresh(creds)
    adapter.revoke(creds)                          # already gone: still fine


# -- publish ------------------------------------------------------------------------------

def test_publish_text(fake, adapter, creds):
    published = adapter.publish(request_for("Hello, Bluesky!", langs=["en"]), creds)
    rkey = record_key("item-1")
    assert published.platform_post_id == f"at://{fake.alice}/app.bsky.feed.post/{rkey}"
    assert published.url == f"https://bsky.app/profile/{fake.alice}/post/{rkey}"
    assert published.published_at is not None
    [post] = fake.posts()
    assert post.value["text"] == "Hello, Bluesky!"
    assert post.value["langs"] == ["en"]
    assert "facets" not in post.value and "embed" not in post.value
    body = fake.calls_to("/xrpc/com.atproto.repo.createRecord")[0].json
    assert (body["repo"], body["collection"], body["rkey"]) == (fake.alice, "app.bsky.feed.post", rkey)


def test_facets_use_utf8_byte_offsets_after_emoji_and_accents(fake, adapter, creds):
    text = f"{FAMILY} Grüße @bob.test — see https://example.com/päth?q=1. #Café2024 ok"
    adapter.publish(request_for(text), creds)
    [post] = fake.posts()
    raw = text.encode("utf-8")
    facets = {f["features"][0]["$type"].split("#")[1]: f for f in post.value["facets"]}
    assert set(facets) == {"mention", "link", "tag"}

    def span(fragment: str) -> dict:
        start = raw.index(fragment.encode("utf-8"))
        return {"byteStart": start, "byteEnd": start + len(fragment.encode("utf-8"))}

    assert facets["mention"]["index"] == span("@bob.test")
    assert facets["mention"]["features"][0]["did"] == fake.bob
    assert facets["link"]["index"] == span("https://example.com/päth?q=1")   # no trailing "."
    assert facets["link"]["features"][0]["uri"] == "https://example.com/päth?q=1"
    assert facets["tag"]["index"] == span("#Café2024")
    assert facets["tag"]["features"][0]["tag"] == "Café2024"
    # Code-point offsets would be wrong: the emoji alone is 7 code points but 25 bytes.
    assert facets["mention"]["index"]["byteStart"] != text.index("@bob.test")


def test_detect_facets_skips_what_bluesky_would_not_link():
    text = "mail me@example.com, see example.com, #123 and https://x.org/a/(b) done"
    kinds = [(kind, value) for _, _, kind, value in detect_facets(text)]
    assert kinds == [("link", "https://x.org/a/(b)")]


def test_unresolvable_mention_gets_no_facet(fake, adapter, creds):
    adapter.publish(request_for("hi @nobody.test and @bob.test"), creds)
    [post] = fake.posts()
    mentions = [f["features"][0]["did"] for f in post.value["facets"]]
    assert mentions == [fake.bob]


def test_publish_image_with_alt_text_checkpoints_the_blob(fake, adapter, creds):
    media = png(fake, alt="A cat on a mat", width=800, height=600)
    states = []
    adapter.publish(request_for("Look", media=[media]), creds, checkpoint=states.append)
    upload = fake.calls_to("/xrpc/com.atproto.repo.uploadBlob")[0]
    assert upload.header("Content-Type") == "image/png"
    assert upload.body == fake.media["cat.png"][0]
    [post] = fake.posts()
    embed = post.value["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    [image] = embed["images"]
    assert image["alt"] == "A cat on a mat"
    assert image["aspectRatio"] == {"width": 800, "height": 600}
    assert image["image"]["mimeType"] == "image/png"
    assert image["image"]["ref"]["$link"] in fake.blobs
    assert states and states[-1]["blobs"][0]["blob"] == image["image"]


def test_publish_video_embeds_the_uploaded_mp4(fake, adapter, creds):
    data = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500
    clip = Media(url=fake.add_media("clip.mp4", data, "video/mp4"), mime="video/mp4",
                 kind="video", size=len(data), alt_text="A short clip")
    adapter.publish(request_for("Watch", media=[clip]), creds)
    [post] = fake.posts()
    embed = post.value["embed"]
    assert embed["$type"] == "app.bsky.embed.video"
    assert embed["alt"] == "A short clip"
    assert embed["video"]["mimeType"] == "video/mp4" and embed["video"]["size"] == len(data)


def test_resume_reuses_checkpointed_blobs(fake, adapter, creds):
    media = png(fake, alt="cat")
    states = []
    fake.fail("/xrpc/com.atproto.repo.createRecord", status=429,
              json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"})
    with pytest.raises(RateLimited):
        adapter.publish(request_for("Look", media=[media]), creds, checkpoint=states.append)
    assert fake.posts() == []
    adapter.publish(request_for("Look", media=[media], state=states[-1]), creds)
    assert len(fake.calls_to("/xrpc/com.atproto.repo.uploadBlob")) == 1
    assert len(fake.posts()) == 1


def test_images_and_a_video_together_are_refused_before_uploading(fake, adapter, creds):
    clip = Media(url=fake.add_media("c.mp4", b"mp4", "video/mp4"), mime="video/mp4", kind="video")
    with pytest.raises(Permanent, match="one video"):
        adapter.publish(request_for("x", media=[png(fake), clip]), creds)
    assert fake.calls_to("/xrpc/com.atproto.repo.uploadBlob") == [] and fake.posts() == []


def test_media_that_cannot_be_fetched_is_permanent(fake, adapter, creds):
    missing = Media(url=f"{fake.url}/_media/nope.png", mime="image/png", kind="image")
    with pytest.raises(Permanent, match="download the image"):
        adapter.publish(request_for("x", media=[missing]), creds)
    assert fake.posts() == []


def test_retry_with_the_same_key_creates_no_second_post(fake, adapter, creds):
    first = adapter.publish(request_for("Only once"), creds)
    second = adapter.publish(request_for("Only once"), creds)
    assert second.platform_post_id == first.platform_post_id
    assert len(fake.posts()) == 1
    # The second create was refused (existing rkey) and the adapter found the first post.
    assert len(fake.calls_to("/xrpc/com.atproto.repo.createRecord")) == 2
    assert fake.calls_to("/xrpc/com.atproto.repo.getRecord")


def test_duplicate_refused_as_400_is_also_already_published(fake, adapter, creds):
    first = adapter.publish(request_for("Only once"), creds)
    fake.fail("/xrpc/com.atproto.repo.createRecord", status=400,
              json={"error": "InvalidRequest", "message": "Record already exists"})
    assert adapter.publish(request_for("Only once"), creds).platform_post_id == first.platform_post_id


def test_timeout_after_send_is_ambiguous_and_reconcile_finds_the_post(fake, creds):
    slow = make_adapter(fake.url, timeout=0.5)
    since = datetime.now(timezone.utc)
    fake.fail("/xrpc/com.atproto.repo.createRecord", hang_after=2.0)
    with pytest.raises(Ambiguous):
        slow.publish(request_for("Did it land?"), creds)
    [post] = fake.posts()                          # the PDS did create it
    lookup = slow.find_published(request_for("Did it land?"), creds, since)
    assert lookup.status == "found" and lookup.published.platform_post_id == post.uri
    # Even a blind retry can't post twice: same rkey.
    assert slow.publish(request_for("Did it land?"), creds).platform_post_id == post.uri
    assert len(fake.posts()) == 1
    slow.http.close()


def test_reconcile_not_found(fake, adapter, creds):
    lookup = adapter.find_published(request_for("never sent", key="other"), creds,
                                    datetime.now(timezone.utc))
    assert lookup.status == "not_found" and lookup.published is None


# -- delete and metrics -------------------------------------------------------------------

def test_delete_removes_the_record_and_is_idempotent(fake, adapter, creds):
    published = adapter.publish(request_for("short-lived"), creds)
    adapter.delete(published.platform_post_id, creds)
    assert fake.posts() == []
    assert adapter.find_published(request_for("short-lived"), creds,
                                  datetime.now(timezone.utc)).status == "not_found"
    adapter.delete(published.platform_post_id, creds)
    with pytest.raises(Permanent, match="deleted"):
        adapter.post_metrics(published.platform_post_id, creds)


def test_account_metrics(fake, adapter, creds):
    adapter.publish(request_for("one"), creds)
    metrics = adapter.account_metrics(creds)
    assert metrics.values == {"followers": 12, "following": 3, "posts": 1}
    assert metrics.unsupported == frozenset(ACCOUNT_METRICS) - {"followers", "following", "posts"}


def test_post_metrics_normalised_and_unsupported_listed(fake, adapter, creds):
    published = adapter.publish(request_for("popular"), creds)
    fake.set_counts(published.platform_post_id, likeCount=5, replyCount=2, repostCount=3,
                    quoteCount=1, bookmarkCount=4)
    metrics = adapter.post_metrics(published.platform_post_id, creds)
    assert metrics.values == {"likes": 5, "comments": 2, "shares": 4, "saves": 4}
    assert metrics.unsupported == {"views", "impressions", "reach"}
    assert metrics.unsupported == frozenset(POST_METRICS) - set(metrics.values)
    assert metrics.extra == {"reposts": 3, "quotes": 1}


# -- error mapping ------------------------------------------------------------------------

def test_429_uses_the_ratelimit_reset_header(fake, adapter, creds):
    reset = int(datetime.now(timezone.utc).timestamp()) + 900
    fake.fail("/xrpc/com.atproto.repo.createRecord", status=429,
              json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
              headers={"RateLimit-Limit": "5000", "RateLimit-Remaining": "0",
                       "RateLimit-Reset": str(reset), "RateLimit-Policy": "5000;w=3600"})
    with pytest.raises(RateLimited) as caught:
        adapter.publish(request_for("hi"), creds)
    assert caught.value.retry_at == datetime.fromtimestamp(reset, timezone.utc)
    assert fake.posts() == []


def test_server_error_is_transient_after_checking_nothing_landed(fake, adapter, creds):
    fake.fail("/xrpc/com.atproto.repo.createRecord", status=502,
              json={"error": "InternalServerError", "message": "Internal Server Error"})
    with pytest.raises(Transient) as caught:
        adapter.publish(request_for("hi"), creds)
    assert caught.value.http_status == 502
    assert fake.calls_to("/xrpc/com.atproto.repo.getRecord")
    assert fake.posts() == []


def test_missing_auth_is_auth_expired(fake, adapter, creds):
    fake.fail("/xrpc/com.atproto.repo.createRecord", status=401,
              json={"error": "AuthMissing", "message": "Authentication Required"})
    with pytest.raises(AuthExpired):
        adapter.publish(request_for("hi"), creds)


def test_invalid_record_is_permanent_with_the_networks_reason(fake, adapter, creds):
    with pytest.raises(Permanent) as caught:
        adapter.publish(request_for("a" * 301), creds)   # skipped validate(): the PDS refuses
    assert caught.value.message.startswith("Bluesky refused to publish the post:")
    assert "300 graphemes" in caught.value.message
    assert caught.value.code == "InvalidRequest"
    assert fake.posts() == []
    assert any("300 graphemes" in v for v in fake.violations)
    fake.violations.clear()


def test_connect_failure_is_transient():
    adapter = make_adapter(closed_port_url())
    with pytest.raises(Transient):
        adapter.create_session("alice.test", APP_PASSWORD)
    creds = Credentials(access_token="a", platform_user_id="did:plc:x")
    with pytest.raises(Transient):
        adapter.publish(request_for("hi"), creds)


# -- the fake follows the lexicons ---------------------------------------------------------

def test_fake_rejects_a_facet_outside_the_text(fake, creds):
    record = {"$type": "app.bsky.feed.post", "text": "short", "createdAt": "2026-01-01T00:00:00.000Z",
              "facets": [{"index": {"byteStart": 0, "byteEnd": 99},
                          "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "x"}]}]}
    response = httpx.post(f"{fake.url}/xrpc/com.atproto.repo.createRecord",
                          headers={"Authorization": f"Bearer {creds.access_token}"},
                          json={"repo": creds.platform_user_id, "collection": "app.bsky.feed.post",
                                "record": record})
    assert response.status_code == 400 and response.json()["error"] == "InvalidRequest"
    assert "outside the text" in fake.violations[0]
    fake.violations.clear()


def test_fake_rejects_a_non_tid_rkey_and_a_missing_field(fake, creds):
    auth = {"Authorization": f"Bearer {creds.access_token}"}
    record = {"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2026-01-01T00:00:00Z"}
    bad_key = httpx.post(f"{fake.url}/xrpc/com.atproto.repo.createRecord", headers=auth,
                         json={"repo": creds.platform_user_id, "collection": "app.bsky.feed.post",
                               "rkey": "my-post", "record": record})
    no_date = httpx.post(f"{fake.url}/xrpc/com.atproto.repo.createRecord", headers=auth,
                         json={"repo": creds.platform_user_id, "collection": "app.bsky.feed.post",
                               "record": {"$type": "app.bsky.feed.post", "text": "x"}})
    assert (bad_key.status_code, no_date.status_code) == (400, 400)
    assert "not a TID" in fake.violations[0] and "createdAt" in fake.violations[1]
    fake.violations.clear()
