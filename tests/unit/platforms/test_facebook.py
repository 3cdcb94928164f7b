"""Facebook Pages adapter against the local fake (tests/fakes/platforms/facebook.py)."""
from __future__ import annotations

import socket
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from platforms.base import (ACCOUNT_METRICS, POST_METRICS, Ambiguous, AuthExpired, Credentials,
                            InvalidGrant, Media, Permanent, PlatformConfig, PublishRequest,
                            RateLimited, Transient)
from platforms.facebook import FacebookAdapter
from platforms.http import utcnow
from platforms.meta import GRAPH_VERSION
from platforms.registry import get_adapter
from tests.fakes.platforms.facebook import FacebookFake

REDIRECT = "https://herald.test/oauth/facebook/callback"
V = GRAPH_VERSION


def make_adapter(fake: FacebookFake, **overrides) -> FacebookAdapter:
    settings = dict(client_id=fake.client_id, client_secret=fake.client_secret, api_url=fake.url,
                    auth_url=f"{fake.url}/{V}/dialog/oauth", redirect_uri=REDIRECT, timeout=2.0,
                    poll_interval=0.01, poll_budget=2.0)
    settings.update(overrides)
    return FacebookAdapter(PlatformConfig(**settings))


@pytest.fixture
def fake():
    with FacebookFake() as server:
        yield server


@pytest.fixture
def adapter(fake):
    adapter = make_adapter(fake)
    yield adapter
    adapter.http.close()


@pytest.fixture
def creds(fake):
    """Connected as the Page: Page token as access token, long-lived user token kept to refresh."""
    return Credentials(access_token=fake.page_token_for(), platform_user_id=fake.page_id,
                       refresh_token=fake.token_for(fake.user["id"]),
                       extra={"page_id": fake.page_id, "user_id": fake.user["id"]})


def image(fake, name="a.jpg") -> Media:
    return Media(url=fake.add_media(name, b"\xff\xd8jpeg", "image/jpeg"), mime="image/jpeg",
                 kind="image")


def video(fake) -> Media:
    return Media(url=fake.add_media("v.mp4", b"mp4-bytes", "video/mp4"), mime="video/mp4",
                 kind="video", duration=20.0)


def post(text: str, media=(), state=None, **options) -> PublishRequest:
    return PublishRequest(target_id="t1", text=text, idempotency_key="k1", media=list(media),
                          state=dict(state or {}), options=options)


class Recorder(list):
    def __call__(self, state):
        self.append(dict(state))


def feed_calls(fake):
    return fake.calls_to(f"/{V}/{fake.page_id}/feed", "POST")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- basics --------------------------------------------------------------------------------

def test_registry_and_capabilities():
    adapter = get_adapter("facebook")
    assert isinstance(adapter, FacebookAdapter)
    assert adapter.api_url == "https://graph.facebook.com"
    assert adapter.auth_url == f"https://www.facebook.com/{V}/dialog/oauth"
    caps = adapter.capabilities
    assert caps.text_limit == 63206 and caps.publish_text and not caps.requires_media
    assert caps.delete and caps.reconcile and not caps.idempotency
    assert caps.refresh and not caps.rotates_refresh_token and not caps.pkce
    assert caps.account_metrics <= set(ACCOUNT_METRICS) and caps.post_metrics <= set(POST_METRICS)


def test_text_counts_code_points():
    adapter = FacebookAdapter()
    assert adapter.count("héllo 👍") == 7
    assert adapter.validate("x" * 63206, []) == []
    assert adapter.validate("x" * 63207, [])


# -- connect -------------------------------------------------------------------------------

def test_connect_derives_the_page_token(fake, adapter):
    url = adapter.authorize_url("st-1")
    query = parse_qs(urlparse(url).query)
    assert url.startswith(f"{fake.url}/{V}/dialog/oauth?")
    assert query["client_id"] == [fake.client_id] and query["state"] == ["st-1"]
    assert query["redirect_uri"] == [REDIRECT]
    assert {"pages_show_list", "pages_manage_posts", "pages_read_engagement",
            "read_insights"} <= set(query["scope"][0].split(","))

    back = parse_qs(urlparse(httpx.get(url).headers["location"]).query)
    assert back["state"] == ["st-1"]
    tokens = adapter.exchange_code(back["code"][0])

    page_token = fake.tokens[tokens.access_token]
    assert page_token.kind == "page" and page_token.user == fake.page_id
    assert tokens.expires_at is None                          # Page tokens don't expire
    user_token = fake.tokens[tokens.refresh_token]
    assert user_token.kind == "long"                          # fb_exchange_token happened
    assert tokens.refresh_expires_at - utcnow() > timedelta(days=59)
    assert tokens.extra["page_id"] == fake.page_id and tokens.extra["user_id"] == fake.user["id"]
    assert [p["id"] for p in tokens.extra["pages"]] == list(fake.pages)
    assert "access_token" not in str(tokens.extra)             # no tokens in extra
    calls = fake.calls_to(f"/{V}/oauth/access_token")
    assert calls[0].query["code"] == back["code"][0] and calls[0].query["redirect_uri"] == REDIRECT
    assert calls[1].query["grant_type"] == "fb_exchange_token"
    assert fake.calls_to(f"/{V}/me/accounts")[0].query["access_token"] == tokens.refresh_token

    me = adapter.identity(tokens)
    assert me.platform_user_id == fake.page_id and me.handle == "heraldtest"
    assert me.display_name == "Herald Test Page"
    assert me.avatar_url == "https://cdn.example/fb/page.jpg"
    assert me.extra["user_id"] == fake.user["id"]


def test_dialog_answers_on_any_graph_version(fake):
    answer = httpx.get(f"{fake.url}/v21.0/dialog/oauth", params={
        "client_id": fake.client_id, "redirect_uri": REDIRECT, "state": "s"})
    assert answer.status_code == 302 and answer.headers["location"].startswith(REDIRECT)


def test_refresh_derives_the_page_token_again(fake, adapter, creds):
    fresh = adapter.refresh(creds)
    assert fresh.access_token != creds.access_token
    assert fake.tokens[fresh.access_token].kind == "page"
    assert fresh.refresh_token == creds.refresh_token and fresh.expires_at is None
    assert fake.calls_to(f"/{V}/me/accounts")[0].query["access_token"] == creds.refresh_token


def test_refresh_with_an_expired_user_token_needs_reconnecting(fake, adapter, creds):
    fake.expire(creds.refresh_token)
    with pytest.raises(InvalidGrant):
        adapter.refresh(creds)


def test_refresh_when_the_page_is_gone_needs_reconnecting(fake, adapter, creds):
    del fake.pages[fake.page_id]
    with pytest.raises(InvalidGrant):
        adapter.refresh(creds)


def test_revoke_removes_the_grant_and_its_page_tokens(fake, adapter, creds):
    adapter.revoke(creds)
    [call] = fake.calls_to(f"/{V}/{fake.user['id']}/permissions", "DELETE")
    assert call.query["access_token"] == creds.refresh_token
    with pytest.raises(AuthExpired):
        adapter.publish(post("after revoke"), creds)


# -- publish -------------------------------------------------------------------------------

def test_publish_text_with_a_link(fake, adapter, creds):
    checkpoints = Recorder()
    published = adapter.publish(post("Hello Page", link="https://herald.test/x"), creds,
                                checkpoints)
    [call] = feed_calls(fake)
    assert call.json == {"message": "Hello Page", "link": "https://herald.test/x",
                         "published": True}
    assert call.query["fields"] == "id,permalink_url"
    stored = fake.posts[published.platform_post_id]
    assert published.platform_post_id.startswith(fake.page_id + "_")
    assert published.url == stored["permalink_url"]
    assert checkpoints == [{"post_id": published.platform_post_id}]


def test_publish_one_photo(fake, adapter, creds):
    published = adapter.publish(post("A photo", [image(fake)]), creds)
    [call] = fake.calls_to(f"/{V}/{fake.page_id}/photos", "POST")
    assert call.json["url"].endswith("/a.jpg") and call.json["caption"] == "A photo"
    assert call.json["published"] is True
    assert published.platform_post_id.startswith(fake.page_id + "_")  # the post, not the photo
    assert fake.posts[published.platform_post_id]["kind"] == "photo"
    assert feed_calls(fake) == []


def test_publish_several_photos_as_one_post(fake, adapter, creds):
    checkpoints = Recorder()
    published = adapter.publish(post("Album", [image(fake, "1.jpg"), image(fake, "2.jpg")]),
                                creds, checkpoints)
    uploads = fake.calls_to(f"/{V}/{fake.page_id}/photos", "POST")
    assert [u.json["published"] for u in uploads] == [False, False]
    photo_ids = checkpoints[1]["photo_ids"]
    [call] = feed_calls(fake)
    assert call.json["attached_media"] == [{"media_fbid": i} for i in photo_ids]
    assert fake.posts[published.platform_post_id]["photo_ids"] == photo_ids


def test_retry_reuses_uploaded_photos(fake, adapter, creds):
    fake.graph_fail(f"/{V}/{fake.page_id}/feed", 1, "An unknown error occurred", status=500)
    checkpoints = Recorder()
    photos = [image(fake, "1.jpg"), image(fake, "2.jpg")]
    with pytest.raises(Transient):
        adapter.publish(post("Album", photos), creds, checkpoints)
    adapter.publish(post("Album", photos, checkpoints[-1]), creds)
    assert len(fake.calls_to(f"/{V}/{fake.page_id}/photos", "POST")) == 2
    assert len(fake.page_posts()) == 1


def test_publish_a_video(fake, adapter, creds):
    published = adapter.publish(post("A video", [video(fake)]), creds)
    [call] = fake.calls_to(f"/{V}/{fake.page_id}/videos", "POST")
    assert call.json == {"file_url": call.json["file_url"], "description": "A video",
                         "published": True}
    assert call.json["file_url"].endswith("/v.mp4")
    # Video permalinks come back relative; the adapter makes them absolute.
    assert published.url == (f"https://www.facebook.com/{fake.page_id}/videos/"
                             f"{published.platform_post_id}/")


def test_a_known_post_id_is_not_published_again(fake, adapter, creds):
    first = adapter.publish(post("Only once"), creds)
    again = adapter.publish(post("Only once", state={"post_id": first.platform_post_id}), creds)
    assert again.platform_post_id == first.platform_post_id
    assert len(feed_calls(fake)) == 1


# -- reconcile -----------------------------------------------------------------------------

def test_reconcile_after_an_ambiguous_post_finds_it(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    since = utcnow() - timedelta(minutes=1)
    fake.fail(f"/{V}/{fake.page_id}/feed", method="POST", hang_after=1.5)
    with pytest.raises(Ambiguous):
        adapter.publish(post("Did it land?"), creds)
    [stored] = fake.page_posts()                              # the fake did create it
    lookup = adapter.find_published(post("Did it land?"), creds, since)
    assert lookup.status == "found"
    assert lookup.published.platform_post_id == stored["id"]
    assert lookup.published.url == stored["permalink_url"]


def test_reconcile_without_a_match_is_unknown(fake, adapter, creds):
    adapter.publish(post("Something else"), creds)
    lookup = adapter.find_published(post("Never sent"), creds, utcnow() - timedelta(minutes=1))
    assert lookup.status == "unknown" and lookup.published is None


def test_reconcile_ignores_posts_before_since(fake, adapter, creds):
    adapter.publish(post("Old news"), creds)
    lookup = adapter.find_published(post("Old news"), creds, utcnow() + timedelta(minutes=1))
    assert lookup.status == "unknown"


# -- metrics and delete --------------------------------------------------------------------

def test_account_metrics(fake, adapter, creds):
    metrics = adapter.account_metrics(creds)
    assert metrics.values == {"followers": 5400, "likes": 5100, "reach": 700,
                              "impressions": 150 + 850, "engagement": 64}
    assert metrics.unsupported == {"following", "posts", "profile_views"}
    assert metrics.extra["new_follows"] == 5


def test_post_metrics(fake, adapter, creds):
    published = adapter.publish(post("Counted"), creds)
    metrics = adapter.post_metrics(published.platform_post_id, creds)
    assert metrics.values == {"likes": 31, "comments": 7, "shares": 4, "reach": 420}
    assert metrics.unsupported == {"saves", "views", "impressions"}
    assert metrics.extra["clicks"] == 12


def test_post_metrics_when_nobody_shared(fake, adapter, creds):
    fake.post_stats["shares"] = 0                            # Graph omits `shares` then
    published = adapter.publish(post("Quiet"), creds)
    assert adapter.post_metrics(published.platform_post_id, creds).values["shares"] == 0


def test_video_metrics_skip_what_a_video_node_lacks(fake, adapter, creds):
    published = adapter.publish(post("Clip", [video(fake)]), creds)
    metrics = adapter.post_metrics(published.platform_post_id, creds)
    assert metrics.values == {"likes": 31, "comments": 7}
    assert fake.calls_to(f"/{V}/{published.platform_post_id}/insights") == []


def test_delete(fake, adapter, creds):
    published = adapter.publish(post("Gone soon"), creds)
    adapter.delete(published.platform_post_id, creds)
    assert published.platform_post_id not in fake.posts


def test_delete_of_a_missing_post_is_permanent(fake, adapter, creds):
    with pytest.raises(Permanent):
        adapter.delete(f"{fake.page_id}_999", creds)


# -- errors --------------------------------------------------------------------------------

def test_page_throttle_uses_the_business_usage_header(fake, adapter, creds):
    fake.throttle(f"/{V}/{fake.page_id}/feed", code=32, regain_minutes=12, status=403)
    with pytest.raises(RateLimited) as caught:
        adapter.publish(post("Busy page"), creds)
    expected = utcnow() + timedelta(minutes=12)
    assert abs((caught.value.retry_at - expected).total_seconds()) < 5
    assert "Facebook" in caught.value.message


def test_bare_429_is_rate_limited(fake, adapter, creds):
    fake.fail(f"/{V}/{fake.page_id}/feed", status=429, body="")
    with pytest.raises(RateLimited):
        adapter.publish(post("x"), creds)


def test_duplicate_status_is_permanent(fake, adapter, creds):
    adapter.publish(post("Same words"), creds)
    with pytest.raises(Permanent) as caught:
        adapter.publish(post("Same words"), creds)
    assert "Duplicate" in caught.value.message and caught.value.code == "506"


def test_posting_with_the_user_token_asks_to_reconnect(fake, adapter, creds):
    as_user = Credentials(access_token=creds.refresh_token, platform_user_id=fake.page_id,
                          extra=creds.extra)
    with pytest.raises(Permanent) as caught:
        adapter.publish(post("x"), as_user)
    assert "reconnect" in caught.value.message and caught.value.code == "200"


def test_invalidated_page_token_is_auth_expired(fake, adapter, creds):
    fake.tokens[creds.access_token].revoked = True
    with pytest.raises(AuthExpired) as caught:
        adapter.publish(post("x"), creds)
    assert creds.access_token not in caught.value.message


def test_server_error_is_transient(fake, adapter, creds):
    fake.fail(f"/{V}/{fake.page_id}/feed", status=503, body="Service Unavailable")
    with pytest.raises(Transient):
        adapter.publish(post("x"), creds)
    assert fake.page_posts() == []


def test_invalid_media_is_permanent(fake, adapter, creds):
    missing = Media(url=f"{fake.url}/_media/nope.jpg", mime="image/jpeg", kind="image")
    with pytest.raises(Permanent):
        adapter.publish(post("x", [missing]), creds)


def test_timeout_after_the_post_was_sent_is_ambiguous(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    fake.fail(f"/{V}/{fake.page_id}/videos", hang_after=1.5)
    with pytest.raises(Ambiguous):
        adapter.publish(post("Big video", [video(fake)]), creds)
    assert [p["kind"] for p in fake.page_posts()] == ["video"]


def test_connect_failure_is_transient(creds):
    adapter = FacebookAdapter(PlatformConfig(api_url=f"http://127.0.0.1:{closed_port()}",
                                             timeout=1.0))
    with pytest.raises(Transient):
        adapter.publish(post("x"), creds)
