"""TikTok adapter against the local fake (tests/fakes/platforms/tiktok.py)."""
from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from platforms.base import (
    Ambiguous, AuthExpired, Credentials, InvalidGrant, Media, Permanent, Pkce, PlatformConfig,
    PublishRequest, RateLimited, Transient, ACCOUNT_METRICS, POST_METRICS,
)
from platforms.registry import get_adapter
from platforms.tiktok import TikTokAdapter
from tests.fakes.platforms.tiktok import FakeTikTok

REDIRECT = "https://herald.test/oauth/tiktok/callback"
MB = 1024 * 1024


def make_adapter(fake: FakeTikTok, **overrides) -> TikTokAdapter:
    settings = dict(client_id=fake.client_key, client_secret=fake.client_secret,
                    api_url=fake.url, auth_url=fake.url + "/v2/auth/authorize/",
                    redirect_uri=REDIRECT, timeout=2.0, poll_interval=0.01, poll_budget=2.0)
    settings.update(overrides)
    return TikTokAdapter(PlatformConfig(**settings))


@pytest.fixture
def fake():
    with FakeTikTok() as server:
        yield server


@pytest.fixture
def adapter(fake):
    adapter = make_adapter(fake)
    yield adapter
    adapter.http.close()


@pytest.fixture
def creds(fake):
    tokens = fake.issue_token()
    return Credentials(access_token=tokens["access_token"], platform_user_id=fake.open_id,
                       refresh_token=tokens["refresh_token"])


def request_for(text: str, media=(), **kw) -> PublishRequest:
    return PublishRequest(target_id="t1", text=text, idempotency_key="k1", media=list(media), **kw)


def video(fake, data: bytes = b"\x00\x00\x00\x18ftypmp42" * 10, name="v.mp4",
          duration=15.0) -> Media:
    return Media(url=fake.add_media(name, data, "video/mp4"), mime="video/mp4", kind="video",
                 size=len(data), duration=duration)


def photo(fake, name="p.jpg", mime="image/jpeg") -> Media:
    return Media(url=fake.add_media(name, b"\xff\xd8photo", mime), mime=mime, kind="image")


class Recorder(list):
    def __call__(self, state):
        self.append(dict(state))


# -- basics --------------------------------------------------------------------------------

def test_registry_and_capabilities():
    adapter = get_adapter("tiktok")
    assert isinstance(adapter, TikTokAdapter)
    assert adapter.api_url == "https://open.tiktokapis.com"
    assert adapter.authorize_url("s").startswith("https://www.tiktok.com/v2/auth/authorize/?")
    caps = adapter.capabilities
    assert caps.requires_media and not caps.publish_text and not caps.delete
    assert caps.rotates_refresh_token and caps.reconcile and not caps.idempotency
    assert caps.account_metrics <= set(ACCOUNT_METRICS) and caps.post_metrics <= set(POST_METRICS)


def test_validate_requires_media_counts_utf16_and_refuses_png(adapter, fake):
    assert "TikTok needs an image or a video." in adapter.validate("just words", [])
    assert adapter.count("a👍") == 3
    assert adapter.validate("x" * 2200, [video(fake)]) == []
    assert any("2200" in p for p in adapter.validate("👍" * 1101, [video(fake)]))
    assert any("image/png" in p for p in adapter.validate("hi", [photo(fake, mime="image/png")]))


def test_publish_without_media_is_refused_before_any_call(adapter, fake, creds):
    with pytest.raises(Permanent, match="needs an image or a video"):
        adapter.publish(request_for("text only"), creds)
    assert fake.calls == []


# -- connect -------------------------------------------------------------------------------

def test_connect_flow_authorize_exchange_identity(adapter, fake):
    url = adapter.authorize_url("state-xyz")
    query = parse_qs(urlparse(url).query)
    assert urlparse(url).path == "/v2/auth/authorize/"
    assert query["client_key"] == [fake.client_key] and query["redirect_uri"] == [REDIRECT]
    assert set(query["scope"][0].split(",")) >= {"video.publish", "user.info.basic",
                                                  "user.info.stats", "video.list"}

    answer = httpx.get(url)   # the fake consent page redirects straight back
    assert answer.status_code == 302 and answer.headers["location"].startswith(REDIRECT)
    back = parse_qs(urlparse(answer.headers["location"]).query)
    assert back["state"] == ["state-xyz"]

    tokens = adapter.exchange_code(back["code"][0])
    assert tokens.access_token.startswith("act.") and tokens.refresh_token.startswith("rft.")
    assert tokens.extra == {"open_id": fake.open_id}
    assert "video.publish" in tokens.scopes
    assert timedelta(hours=1) < tokens.expires_at - datetime.now(timezone.utc) <= timedelta(hours=2)
    assert tokens.refresh_expires_at - datetime.now(timezone.utc) > timedelta(days=179)

    who = adapter.identity(tokens)
    assert who.platform_user_id == fake.open_id
    assert who.handle == "herald.demo" and who.display_name == "Herald Demo"
    assert who.avatar_url

    with pytest.raises(Permanent, match="sign-in"):   # codes are single-use
        adapter.exchange_code(back["code"][0])


def test_connect_with_pkce_when_the_caller_asks_for_it(adapter, fake):
    pkce = Pkce.generate()
    location = httpx.get(adapter.authorize_url("s", pkce)).headers["location"]
    code = parse_qs(urlparse(location).query)["code"][0]
    assert adapter.exchange_code(code, pkce).access_token
    assert fake.calls_to("/v2/oauth/token/")[0].form["code_verifier"] == pkce.verifier


def test_denied_authorization_redirects_with_error(adapter, fake):
    fake.deny_authorization = True
    location = httpx.get(adapter.authorize_url("s")).headers["location"]
    assert parse_qs(urlparse(location).query)["error"] == ["access_denied"]


# -- publish -------------------------------------------------------------------------------

def test_publish_video_pulled_from_url(adapter, fake, creds):
    states = Recorder()
    published = adapter.publish(request_for("Sunset #travel", [video(fake)]), creds, states)
    [(publish_id, record)] = fake.publishes.items()
    assert record["source"] == "PULL_FROM_URL" and record["title"] == "Sunset #travel"
    assert record["post_info"]["privacy_level"] == "PUBLIC_TO_EVERYONE"   # first allowed
    assert states[0]["publish_id"] == publish_id   # checkpointed before polling
    assert published.platform_post_id == record["video_id"]
    assert published.url == f"https://www.tiktok.com/@herald.demo/video/{record['video_id']}"
    assert len(fake.calls_to("/v2/post/publish/status/fetch/")) == 3   # 2 processing + done
    order = [c.path for c in fake.calls if c.path.startswith("/v2/post/")]
    assert order[:2] == ["/v2/post/publish/creator_info/query/", "/v2/post/publish/video/init/"]


def test_publish_uses_requested_privacy_and_creator_restrictions(adapter, fake, creds):
    fake.comment_disabled = True
    adapter.publish(request_for("private", [video(fake)], options={"privacy_level": "SELF_ONLY"}),
                    creds)
    [record] = fake.publishes.values()
    assert record["post_info"]["privacy_level"] == "SELF_ONLY"
    assert record["post_info"]["disable_comment"] is True


def test_privacy_level_not_offered_fails_before_init(adapter, fake, creds):
    fake.privacy_level_options = ["SELF_ONLY"]
    with pytest.raises(Permanent, match="privacy level PUBLIC_TO_EVERYONE"):
        adapter.publish(request_for("x", [video(fake)],
                                    options={"privacy_level": "PUBLIC_TO_EVERYONE"}), creds)
    assert fake.calls_to("/v2/post/publish/video/init/") == [] and fake.publishes == {}


def test_video_longer_than_the_creator_may_post_fails_before_init(adapter, fake, creds):
    fake.max_video_post_duration_sec = 60
    with pytest.raises(Permanent, match="up to 60 seconds"):
        adapter.publish(request_for("long", [video(fake, duration=90)]), creds)
    assert fake.publishes == {}


def test_unverified_url_falls_back_to_chunked_file_upload(adapter, fake, creds):
    fake.verified_prefixes = []
    data = bytes(range(256)) * (21 * MB // 256)   # 21 MB -> two chunks, the last one 11 MB
    published = adapter.publish(request_for("big one", [video(fake, data)]), creds)
    [record] = fake.publishes.values()   # the refused pull init created nothing
    assert record["source"] == "FILE_UPLOAD" and record["data"] == data
    puts = fake.calls_to("/upload/video/", "PUT")
    assert [p.header("Content-Range") for p in puts] == [
        f"bytes 0-{10 * MB - 1}/{len(data)}", f"bytes {10 * MB}-{len(data) - 1}/{len(data)}"]
    assert published.platform_post_id == record["video_id"]


def test_publish_photos(adapter, fake, creds):
    text = "A" * 100 + "\nsecond line"
    published = adapter.publish(request_for(text, [photo(fake, "1.jpg"), photo(fake, "2.jpg")]),
                                creds)
    [record] = fake.publishes.values()
    assert record["kind"] == "photo" and record["title"] == "A" * 90
    assert record["description"] == text
    body = fake.calls_to("/v2/post/publish/content/init/")[0].json
    assert body["media_type"] == "PHOTO" and body["post_mode"] == "DIRECT_POST"
    assert len(body["source_info"]["photo_images"]) == 2
    assert published.url.endswith(f"/photo/{record['video_id']}")


def test_photos_from_unverified_host_are_permanent(adapter, fake, creds):
    fake.verified_prefixes = []
    with pytest.raises(Permanent, match="isn't verified") as caught:
        adapter.publish(request_for("pics", [photo(fake)]), creds)
    assert caught.value.code == "url_ownership_unverified"


def test_failed_processing_is_permanent_with_the_reason(adapter, fake, creds):
    fake.next_fail_reason = "duration_check_failed"
    states = Recorder()
    with pytest.raises(Permanent, match="too long or too short"):
        adapter.publish(request_for("x", [video(fake)]), creds, states)
    assert "publish_id" not in states[-1]


def test_internal_failure_is_transient_and_a_retry_starts_over(adapter, fake, creds):
    fake.next_fail_reason = "internal"
    states = Recorder()
    req = request_for("x", [video(fake)])
    with pytest.raises(Transient):
        adapter.publish(req, creds, states)
    req.state = states[-1]
    assert "publish_id" not in req.state   # FAILED published nothing, so re-init is safe
    adapter.publish(req, creds, states)
    assert [p["status"] for p in fake.publishes.values()] == ["FAILED", "PUBLISH_COMPLETE"]


def test_resume_after_checkpoint_polls_instead_of_creating_again(fake, creds):
    adapter = make_adapter(fake, poll_budget=0.05)
    fake.processing_polls = 10_000   # slower than our budget
    states = Recorder()
    req = request_for("patience", [video(fake)])
    with pytest.raises(Transient, match="still processing"):
        adapter.publish(req, creds, states)
    [publish_id] = fake.publishes

    fake.publishes[publish_id]["polls_left"] = 0
    req.state = states[-1]
    published = adapter.publish(req, creds, states)
    assert len(fake.calls_to("/v2/post/publish/video/init/")) == 1
    assert len(fake.publishes) == 1
    assert published.platform_post_id == fake.publishes[publish_id]["video_id"]


def test_resume_mid_upload_sends_only_the_missing_chunks(adapter, fake, creds):
    fake.verified_prefixes = []
    fake.refuse_chunks = {1}
    data = b"z" * (21 * MB)
    states = Recorder()
    req = request_for("resumable", [video(fake, data)])
    with pytest.raises(Transient):
        adapter.publish(req, creds, states)
    [record] = fake.publishes.values()
    assert record["received"] == 10 * MB and states[-1]["upload_url"]

    req.state = states[-1]
    adapter.publish(req, creds, states)
    assert len(fake.publishes) == 1 and record["data"] == data
    ranges = [c.header("Content-Range").split("/")[0] for c in fake.calls_to("/upload/video/")]
    assert ranges == [f"bytes 0-{10 * MB - 1}"] + [f"bytes {10 * MB}-{len(data) - 1}"] * 2


def test_public_id_after_moderation_is_resolved_by_post_metrics(adapter, fake, creds):
    fake.public_id_polls = 10_000
    published = adapter.publish(request_for("moderated", [video(fake)]), creds)
    [(publish_id, record)] = fake.publishes.items()
    assert published.platform_post_id == publish_id
    assert published.url == "https://www.tiktok.com/@herald.demo"
    pending = adapter.post_metrics(publish_id, creds)
    assert pending.values == {} and "pending" in pending.extra

    record["public_polls_left"] = 0
    fake.set_video_stats(record["video_id"], view_count=99)
    metrics = adapter.post_metrics(publish_id, creds)
    assert metrics.values["views"] == 99 and metrics.extra["video_id"] == record["video_id"]


# -- tokens --------------------------------------------------------------------------------

def test_refresh_rotates_and_the_old_refresh_token_is_refused(adapter, fake, creds):
    renewed = adapter.refresh(creds)
    assert renewed.refresh_token and renewed.refresh_token != creds.refresh_token
    assert renewed.access_token != creds.access_token
    assert adapter.identity(renewed).platform_user_id == fake.open_id

    with pytest.raises(InvalidGrant, match="reconnect"):
        adapter.refresh(creds)   # the pre-rotation refresh token
    again = adapter.refresh(Credentials(access_token=renewed.access_token,
                                        platform_user_id=fake.open_id,
                                        refresh_token=renewed.refresh_token))
    assert again.refresh_token not in (creds.refresh_token, renewed.refresh_token)


def test_revoke(adapter, fake, creds):
    adapter.revoke(creds)
    assert fake.calls_to("/v2/oauth/revoke/")[0].form["token"] == creds.access_token
    with pytest.raises(AuthExpired):
        adapter.account_metrics(creds)
    with pytest.raises(InvalidGrant):
        adapter.refresh(creds)
    adapter.revoke(creds)   # revoking twice is harmless


# -- metrics, delete, reconcile -----------------------------------------------------------

def test_account_metrics(adapter, fake, creds):
    adapter.publish(request_for("one", [video(fake)]), creds)
    metrics = adapter.account_metrics(creds)
    assert metrics.values == {"followers": 1200, "following": 31, "likes": 5400, "posts": 1}
    assert metrics.unsupported == {"impressions", "reach", "engagement", "profile_views"}


def test_post_metrics(adapter, fake, creds):
    post_id = adapter.publish(request_for("measured", [video(fake)]), creds).platform_post_id
    fake.set_video_stats(post_id, like_count=5, comment_count=2, share_count=1, view_count=300)
    metrics = adapter.post_metrics(post_id, creds)
    assert metrics.values == {"likes": 5, "comments": 2, "shares": 1, "views": 300}
    assert metrics.unsupported == {"saves", "impressions", "reach"}
    with pytest.raises(Permanent, match="can't find"):
        adapter.post_metrics("123", creds)


def test_metrics_without_stats_scope_ask_for_reconnect(adapter, fake):
    tokens = fake.issue_token(scopes=("user.info.basic", "video.publish"))
    creds = Credentials(access_token=tokens["access_token"], platform_user_id=fake.open_id)
    with pytest.raises(AuthExpired, match="permission"):
        adapter.account_metrics(creds)


def test_delete_is_not_offered(adapter, fake, creds):
    with pytest.raises(Permanent, match="TikTok app"):
        adapter.delete("7300000000000000001", creds)
    assert fake.calls == []


def test_reconcile_with_checkpointed_publish_id(adapter, fake, creds):
    since = datetime.now(timezone.utc) - timedelta(minutes=5)
    states = Recorder()
    req = request_for("reconcile me", [video(fake)])
    published = adapter.publish(req, creds, states)
    req.state = states[-1]
    lookup = adapter.find_published(req, creds, since)
    assert lookup.status == "found" and lookup.published.platform_post_id == \
        published.platform_post_id
    assert len(fake.publishes) == 1


def test_reconcile_failed_publish_is_not_found(adapter, fake, creds):
    fake.next_fail_reason = "file_format_check_failed"
    states = Recorder()
    req = request_for("broken", [video(fake)])
    with pytest.raises(Permanent):
        adapter.publish(req, creds, states)
    req.state = states[0]   # the checkpoint taken right after init
    assert adapter.find_published(req, creds, datetime.now(timezone.utc)).status == "not_found"


def test_reconcile_still_processing_is_unknown(fake, creds):
    adapter = make_adapter(fake, poll_budget=0.05)
    fake.processing_polls = 10_000
    states = Recorder()
    req = request_for("slow", [video(fake)])
    with pytest.raises(Transient):
        adapter.publish(req, creds, states)
    req.state = states[-1]
    assert adapter.find_published(req, creds, datetime.now(timezone.utc)).status == "unknown"


def test_reconcile_without_publish_id_searches_recent_posts(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    fake.fail("/v2/post/publish/video/init/", method="POST", hang_after=2.0)
    req = request_for("lost answer", [video(fake)])
    with pytest.raises(Ambiguous):
        adapter.publish(req, creds)
    assert req.state == {}
    [publish_id] = fake.publishes
    assert adapter.find_published(req, creds, since).status == "unknown"   # still processing

    # Time passes: TikTok finishes processing (one status fetch moves the fake along).
    fake.publishes[publish_id]["polls_left"] = 0
    httpx.post(fake.url + "/v2/post/publish/status/fetch/", json={"publish_id": publish_id},
               headers={"Authorization": f"Bearer {creds.access_token}"})
    lookup = adapter.find_published(req, creds, since)
    assert lookup.status == "found"
    assert lookup.published.platform_post_id == fake.publishes[publish_id]["video_id"]


# -- error mapping -------------------------------------------------------------------------

def test_rate_limit_from_the_fake_after_six_inits_a_minute(adapter, fake, creds):
    for n in range(6):
        adapter.publish(request_for(f"post {n}", [video(fake, name=f"{n}.mp4")]), creds)
    with pytest.raises(RateLimited) as caught:
        adapter.publish(request_for("seventh", [video(fake, name="7.mp4")]), creds)
    wait = caught.value.retry_at - datetime.now(timezone.utc)
    assert timedelta(seconds=50) < wait <= timedelta(seconds=60)
    assert caught.value.code == "rate_limit_exceeded" and len(fake.publishes) == 6


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_transient(adapter, fake, creds, status):
    fake.fail("/v2/post/publish/video/init/", status=status, json={
        "data": {}, "error": {"code": "internal_error", "message": "", "log_id": "1"}})
    with pytest.raises(Transient, match=str(status)):
        adapter.publish(request_for("x", [video(fake)]), creds)
    assert fake.publishes == {}


def test_invalid_token_is_auth_expired(adapter, fake, creds):
    fake.expire(creds.access_token)
    with pytest.raises(AuthExpired) as caught:
        adapter.publish(request_for("x", [video(fake)]), creds)
    assert caught.value.code == "access_token_invalid" and caught.value.http_status == 401
    assert creds.access_token not in str(caught.value) + (caught.value.detail or "")


def test_daily_post_cap_is_permanent(adapter, fake, creds):
    fake.daily_post_cap = 0
    with pytest.raises(Permanent, match="daily limit") as caught:
        adapter.publish(request_for("x", [video(fake)]), creds)
    assert caught.value.code == "spam_risk_too_many_posts" and fake.publishes == {}


@pytest.mark.parametrize("status, code, expected", [
    (429, "rate_limit_exceeded", RateLimited),
    (401, "access_token_invalid", AuthExpired),
    (401, "scope_not_authorized", AuthExpired),
    (403, "spam_risk_user_banned_from_posting", Permanent),
    (403, "spam_risk_something_new", Permanent),
    (403, "reached_active_user_cap", Permanent),
    (403, "unaudited_client_can_only_post_to_private_accounts", Permanent),
    (403, "privacy_level_option_mismatch", Permanent),
    (400, "invalid_params", Permanent),
    (500, "internal_error", Transient),
])
def test_error_envelope_mapping(adapter, fake, creds, status, code, expected):
    fake.fail("/v2/post/publish/video/init/", status=status, json={
        "data": {}, "error": {"code": code, "message": "from TikTok", "log_id": "2026x"}})
    with pytest.raises(expected) as caught:
        adapter.publish(request_for("x", [video(fake)]), creds)
    assert type(caught.value) is expected   # e.g. not InvalidGrant for AuthExpired
    assert caught.value.code == code and caught.value.http_status == status
    assert "TikTok" in str(caught.value) and fake.publishes == {}


def test_timeout_after_init_was_sent_is_ambiguous_and_the_post_exists(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    fake.fail("/v2/post/publish/video/init/", method="POST", hang_after=2.0)
    with pytest.raises(Ambiguous, match="TikTok"):
        adapter.publish(request_for("slow", [video(fake)]), creds)
    assert len(fake.publishes) == 1


def test_timeout_while_polling_is_transient(fake, creds):
    adapter = make_adapter(fake, timeout=0.5)
    fake.fail("/v2/post/publish/status/fetch/", method="POST", hang_before=2.0)
    states = Recorder()
    with pytest.raises(Transient):
        adapter.publish(request_for("x", [video(fake)]), creds, states)
    assert states[-1]["publish_id"] in fake.publishes


def test_connect_failure_is_transient(creds):
    with socket.socket() as sock:   # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = TikTokAdapter(PlatformConfig(api_url=f"http://127.0.0.1:{port}", timeout=1.0))
    media = Media(url="http://127.0.0.1/v.mp4", mime="video/mp4", kind="video")
    with pytest.raises(Transient, match="Couldn't reach TikTok"):
        adapter.publish(request_for("nowhere", [media]), creds)
