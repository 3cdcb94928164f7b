"""LinkedIn adapter against the local fake (tests/fakes/platforms/linkedin.py)."""
from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from platforms.base import (
    Ambiguous, AuthExpired, Credentials, InvalidGrant, Media, Permanent, PlatformConfig,
    PublishRequest, RateLimited, Transient, ACCOUNT_METRICS, POST_METRICS,
)
from platforms.linkedin import LinkedInAdapter, little_text
from platforms.registry import get_adapter
from tests.fakes.platforms.linkedin import FakeLinkedIn

REDIRECT = "https://herald.test/oauth/linkedin/callback"


def make_adapter(fake: FakeLinkedIn, **overrides) -> LinkedInAdapter:
    settings = dict(client_id=fake.client_id, client_secret=fake.client_secret,
                    api_url=fake.url, auth_url=fake.url + "/oauth/v2", redirect_uri=REDIRECT,
                    timeout=2.0, poll_interval=0.01, poll_budget=2.0)
    settings.update(overrides)
    return LinkedInAdapter(PlatformConfig(**settings))


@pytest.fixture
def fake():
    with FakeLinkedIn() as server:
        yield server


@pytest.fixture
def adapter(fake):
    adapter = make_adapter(fake)
    yield adapter
    adapter.http.close()


@pytest.fixture
def creds(fake):
    tokens = fake.issue_token()
    return Credentials(access_token=tokens["access_token"], platform_user_id=fake.person_urn)


def request_for(text: str, media=(), **kw) -> PublishRequest:
    return PublishRequest(target_id="t1", text=text, idempotency_key="k1", media=list(media), **kw)


def image(fake, name="a.jpg", data=b"\xff\xd8jpeg-bytes", alt="") -> Media:
    return Media(url=fake.add_media(name, data, "image/jpeg"), mime="image/jpeg", kind="image",
                 size=len(data), alt_text=alt)


def video(fake, data: bytes) -> Media:
    return Media(url=fake.add_media("v.mp4", data, "video/mp4"), mime="video/mp4", kind="video",
                 size=len(data), duration=12.0)


class Recorder(list):
    def __call__(self, state):
        self.append(dict(state))


# -- basics --------------------------------------------------------------------------------

def test_registry_and_capabilities():
    adapter = get_adapter("linkedin")
    assert isinstance(adapter, LinkedInAdapter)
    assert adapter.api_url == "https://api.linkedin.com"
    assert adapter.auth_url == "https://www.linkedin.com/oauth/v2"
    caps = adapter.capabilities
    assert caps.text_limit == 3000 and not caps.requires_media and not caps.idempotency
    assert caps.delete and not caps.reconcile and not caps.rotates_refresh_token
    assert caps.account_metrics <= set(ACCOUNT_METRICS) and caps.post_metrics <= set(POST_METRICS)


def test_validate_counts_emoji_as_two_and_enforces_limits(adapter, fake):
    assert adapter.count("é👍") == 3
    assert adapter.validate("x" * 3000, []) == []
    assert any("3000" in p for p in adapter.validate("👍" * 1501, []))
    assert "LinkedIn takes at most 20 images." in adapter.validate(
        "hi", [image(fake, f"{i}.jpg") for i in range(21)])
    assert adapter.validate("hi", [Media(url="u", mime="video/webm", kind="video")])


def test_little_text_escapes_reserved_characters_but_keeps_mentions():
    assert little_text("Q&A (part 1) #launch *now*") == r"Q&A \(part 1\) \#launch \*now\*"
    mention = "@[Acme](urn:li:organization:42)"
    assert little_text(f"hi {mention} [x]") == rf"hi {mention} \[x\]"


# -- connect -------------------------------------------------------------------------------

def test_connect_flow_authorize_exchange_identity(adapter, fake):
    url = adapter.authorize_url("state-123")
    query = parse_qs(urlparse(url).query)
    assert url.startswith(fake.url + "/oauth/v2/authorization?")
    assert query["client_id"] == [fake.client_id] and query["redirect_uri"] == [REDIRECT]
    assert set(query["scope"][0].split()) >= {"openid", "profile", "w_member_social"}

    answer = httpx.get(url)   # the fake consent page redirects straight back
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT)
    back = parse_qs(urlparse(location).query)
    assert back["state"] == ["state-123"]

    tokens = adapter.exchange_code(back["code"][0])
    assert tokens.access_token.startswith("li-at-")
    assert tokens.refresh_token is None   # no programmatic refresh for this app
    assert tokens.expires_at - datetime.now(timezone.utc) > timedelta(days=59)
    assert "w_member_social" in tokens.scopes
    assert "li-at" not in repr(tokens)

    who = adapter.identity(tokens)
    assert who.platform_user_id == "urn:li:person:aBc123"
    assert who.display_name == "Ada Lovelace" and who.handle == "Ada Lovelace"
    assert who.avatar_url.endswith(".jpg")

    with pytest.raises(Permanent):   # codes are single-use
        adapter.exchange_code(back["code"][0])


def test_denied_authorization_redirects_with_error(adapter, fake):
    fake.deny_authorization = True
    location = httpx.get(adapter.authorize_url("s")).headers["location"]
    assert parse_qs(urlparse(location).query)["error"] == ["user_cancelled_authorize"]


# -- publish -------------------------------------------------------------------------------

def test_publish_text(adapter, fake, creds):
    published = adapter.publish(request_for("Hello (world) #1"), creds)
    [post] = fake.posts.values()
    assert published.platform_post_id == post.urn and post.urn.startswith("urn:li:share:")
    assert published.url == f"https://www.linkedin.com/feed/update/{post.urn}/"
    assert post.commentary == r"Hello \(world\) \#1"
    assert post.body["visibility"] == "PUBLIC" and post.body["lifecycleState"] == "PUBLISHED"
    assert post.author == fake.person_urn and "content" not in post.body
    [call] = fake.calls_to("/rest/posts", "POST")
    assert call.header("LinkedIn-Version") == adapter.api_version
    assert call.header("X-Restli-Protocol-Version") == "2.0.0"


def test_publish_one_image(adapter, fake, creds):
    states = Recorder()
    adapter.publish(request_for("pic", [image(fake, alt="a cat")]), creds, states)
    [post] = fake.posts.values()
    [(urn, stored)] = fake.images.items()
    assert post.body["content"] == {"media": {"id": urn, "altText": "a cat"}}
    assert stored["data"] == b"\xff\xd8jpeg-bytes" and stored["status"] == "AVAILABLE"
    assert states[0]["images"] == [urn]
    [put] = fake.calls_to("/_upload/image/*", "PUT")
    assert put.header("Authorization") == f"Bearer {creds.access_token}"


def test_publish_several_images_as_multi_image(adapter, fake, creds):
    adapter.publish(request_for("pics", [image(fake, "1.jpg"), image(fake, "2.jpg")]), creds)
    [post] = fake.posts.values()
    assert [i["id"] for i in post.body["content"]["multiImage"]["images"]] == list(fake.images)


def test_publish_image_when_member_token_cannot_read_images(adapter, fake, creds):
    fake.images_readable = False
    adapter.publish(request_for("pic", [image(fake)]), creds)
    assert len(fake.posts) == 1


def test_publish_video_in_parts(adapter, fake, creds):
    fake.video_part_size = 1000
    data = bytes(range(256)) * 10   # 2560 bytes -> 3 parts
    adapter.publish(request_for("clip", [video(fake, data)]), creds)
    [(urn, stored)] = fake.videos.items()
    assert len(fake.calls_to("/_upload/video/*", "PUT")) == 3
    assert b"".join(stored["parts"][n][0] for n in range(3)) == data
    assert stored["status"] == "AVAILABLE"
    [post] = fake.posts.values()
    assert post.body["content"] == {"media": {"id": urn}}


def test_video_processing_failure_is_permanent_and_posts_nothing(adapter, fake, creds):
    fake.fail_video_processing = True
    with pytest.raises(Permanent, match="LinkedIn couldn't process the video"):
        adapter.publish(request_for("clip", [video(fake, b"x" * 10)]), creds)
    assert fake.posts == {}


def test_resume_after_checkpoint_does_not_upload_or_post_twice(fake, creds):
    adapter = make_adapter(fake, poll_budget=0.05)
    fake.video_processing_polls = 10_000   # slower than our budget
    states = Recorder()
    req = request_for("clip", [video(fake, b"v" * 50)])
    with pytest.raises(Transient, match="still processing"):
        adapter.publish(req, creds, states)
    assert states[-1]["video"] in fake.videos and fake.posts == {}

    fake.video_processing_polls = 0
    for item in fake.videos.values():
        item["polls"] = 0
    req.state = states[-1]
    adapter.publish(req, creds, states)
    assert len(fake.calls_to("/rest/videos", "POST")) == 2   # one init + one finalize, no more
    assert len(fake.posts) == 1


def test_resume_after_ambiguous_post_recognises_its_own_duplicate(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    fake.fail("/rest/posts", method="POST", hang_after=2.0)
    states = Recorder()
    req = request_for("once only")
    with pytest.raises(Ambiguous):
        adapter.publish(req, creds, states)
    [urn] = fake.posts   # the post did land
    req.state = states[-1]
    published = adapter.publish(req, creds, states)
    assert published.platform_post_id == urn and len(fake.posts) == 1


# -- tokens --------------------------------------------------------------------------------

def test_refresh_without_programmatic_refresh_needs_reconnect(adapter, creds):
    with pytest.raises(InvalidGrant, match="reconnect"):
        adapter.refresh(creds)


def test_refresh_keeps_refresh_token_and_does_not_extend_its_lifetime(adapter, fake):
    fake.programmatic_refresh = True
    first = adapter.exchange_code(parse_qs(urlparse(httpx.get(
        adapter.authorize_url("s")).headers["location"]).query)["code"][0])
    assert first.refresh_token and first.refresh_expires_at

    grant = fake.refresh_grants[first.refresh_token]
    grant.expires_at -= 59 * 24 * 3600   # pretend the grant is 59 days old
    creds = Credentials(access_token=first.access_token, platform_user_id=fake.person_urn,
                        refresh_token=first.refresh_token)
    renewed = adapter.refresh(creds)
    assert renewed.access_token != first.access_token
    assert renewed.refresh_token == first.refresh_token   # LinkedIn doesn't rotate
    assert renewed.expires_at - datetime.now(timezone.utc) > timedelta(days=59)
    remaining = renewed.refresh_expires_at - datetime.now(timezone.utc)
    assert timedelta(days=305) < remaining < timedelta(days=307)   # 365 - 59, not reset
    assert adapter.identity(renewed).platform_user_id == fake.person_urn


def test_refused_refresh_raises_invalid_grant(adapter, fake):
    fake.programmatic_refresh = True
    tokens = fake.issue_token()
    fake.refresh_grants[tokens["refresh_token"]].revoked = True
    with pytest.raises(InvalidGrant):
        adapter.refresh(Credentials(access_token=tokens["access_token"],
                                    platform_user_id=fake.person_urn,
                                    refresh_token=tokens["refresh_token"]))


def test_revoke_makes_the_token_unusable(adapter, fake, creds):
    adapter.revoke(creds)
    assert fake.calls_to("/oauth/v2/revoke")[0].form["token"] == creds.access_token
    with pytest.raises(AuthExpired):
        adapter.publish(request_for("after revoke"), creds)
    adapter.revoke(creds)   # revoking twice is harmless


# -- metrics, delete, reconcile -----------------------------------------------------------

def test_post_metrics(adapter, fake, creds):
    urn = adapter.publish(request_for("measured"), creds).platform_post_id
    fake.set_stats(urn, IMPRESSION=120, MEMBERS_REACHED=80, REACTION=7, COMMENT=2, RESHARE=1,
                   POST_SAVE=3)
    metrics = adapter.post_metrics(urn, creds)
    assert metrics.values == {"impressions": 120, "reach": 80, "likes": 7, "comments": 2,
                              "shares": 1, "saves": 3}
    assert metrics.unsupported == {"views"}
    entity = fake.calls_to("/rest/memberCreatorPostAnalytics")[0].query["entity"]
    assert entity == f"(share:{urn})"


def test_account_metrics_mark_what_linkedin_does_not_offer(adapter, fake, creds):
    for text, n in (("one", 10), ("two", 5)):
        fake.set_stats(adapter.publish(request_for(text), creds).platform_post_id,
                       IMPRESSION=n, MEMBERS_REACHED=n - 1, REACTION=1)
    metrics = adapter.account_metrics(creds)
    assert metrics.values == {"impressions": 15, "reach": 13, "likes": 2}
    assert {"followers", "following", "posts", "profile_views"} <= metrics.unsupported
    assert not set(metrics.values) & metrics.unsupported


def test_metrics_without_analytics_scope_is_permanent(adapter, fake):
    tokens = fake.issue_token(scopes=("openid", "profile", "w_member_social"))
    creds = Credentials(access_token=tokens["access_token"], platform_user_id=fake.person_urn)
    with pytest.raises(Permanent, match="permission"):
        adapter.account_metrics(creds)


def test_delete(adapter, fake, creds):
    urn = adapter.publish(request_for("short-lived"), creds).platform_post_id
    adapter.delete(urn, creds)
    assert urn in fake.deleted and urn not in fake.posts
    [call] = fake.calls_to("/rest/posts/*", "DELETE")
    assert call.header("LinkedIn-Version") == adapter.api_version
    adapter.delete(urn, creds)   # already gone: nothing to do


def test_reconcile_is_unknown_without_calling_linkedin(adapter, fake, creds):
    lookup = adapter.find_published(request_for("x"), creds,
                                    datetime.now(timezone.utc) - timedelta(hours=1))
    assert lookup.status == "unknown" and lookup.reason
    assert fake.calls == []


# -- error mapping -------------------------------------------------------------------------

def test_429_without_headers_waits_until_midnight_utc(adapter, fake, creds):
    fake.fail("/rest/posts", method="POST", status=429, json={
        "serviceErrorCode": 101, "status": 429,
        "message": "Resource level throttle APPLICATION DAY limit for calls to this resource "
                   "is reached."})
    with pytest.raises(RateLimited) as caught:
        adapter.publish(request_for("throttled"), creds)
    now = datetime.now(timezone.utc)
    assert caught.value.retry_at == (now + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0)
    assert fake.posts == {}


def test_429_honours_retry_after_when_present(adapter, fake, creds):
    fake.fail("/rest/posts", method="POST", status=429, headers={"Retry-After": "120"},
              json={"status": 429, "message": "throttled"})
    with pytest.raises(RateLimited) as caught:
        adapter.publish(request_for("throttled"), creds)
    wait = caught.value.retry_at - datetime.now(timezone.utc)
    assert timedelta(seconds=100) < wait <= timedelta(seconds=120)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_transient(adapter, fake, creds, status):
    fake.fail("/rest/posts", method="POST", status=status, json={"status": status,
                                                                "message": "Internal"})
    with pytest.raises(Transient, match=str(status)):
        adapter.publish(request_for("retry me"), creds)


def test_expired_token_is_auth_expired(adapter, fake, creds):
    fake.expire(creds.access_token)
    with pytest.raises(AuthExpired) as caught:
        adapter.publish(request_for("late"), creds)
    assert caught.value.http_status == 401
    assert creds.access_token not in str(caught.value) + (caught.value.detail or "")


def test_duplicate_post_is_permanent(adapter, fake, creds):
    adapter.publish(request_for("same words"), creds)
    with pytest.raises(Permanent) as caught:
        adapter.publish(request_for("same words"), creds)
    assert str(caught.value) == "LinkedIn says this post is a duplicate of a recent one."
    assert caught.value.code == "DUPLICATE_POST" and caught.value.http_status == 422
    assert len(fake.posts) == 1


def test_sunset_version_is_permanent(fake, creds):
    adapter = make_adapter(fake)
    adapter.api_version = "202401"
    with pytest.raises(Permanent, match="version 202401"):
        adapter.publish(request_for("old"), creds)
    assert fake.calls_to("/rest/posts")[0] and fake.posts == {}


def test_fake_requires_version_headers(fake, creds):
    bare = httpx.post(fake.url + "/rest/posts", json={},
                      headers={"Authorization": f"Bearer {creds.access_token}"})
    assert bare.status_code == 400 and bare.json()["code"] == "VERSION_MISSING"
    old = httpx.post(fake.url + "/rest/posts", json={}, headers={
        "Authorization": f"Bearer {creds.access_token}", "LinkedIn-Version": "202301",
        "X-Restli-Protocol-Version": "2.0.0"})
    assert old.status_code == 426


def test_timeout_after_send_is_ambiguous_and_the_post_exists(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    fake.fail("/rest/posts", method="POST", hang_after=2.0)
    with pytest.raises(Ambiguous):
        adapter.publish(request_for("slow"), creds)
    assert len(fake.posts) == 1


def test_timeout_while_uploading_media_is_transient_not_ambiguous(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    fake.fail("/_upload/image/*", method="PUT", hang_before=2.0)
    with pytest.raises(Transient):
        adapter.publish(request_for("pic", [image(fake)]), creds)
    assert fake.posts == {}


def test_connect_failure_is_transient(creds):
    with socket.socket() as sock:   # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = LinkedInAdapter(PlatformConfig(api_url=f"http://127.0.0.1:{port}", timeout=1.0))
    with pytest.raises(Transient, match="Couldn't reach LinkedIn"):
        adapter.publish(request_for("nowhere"), creds)
