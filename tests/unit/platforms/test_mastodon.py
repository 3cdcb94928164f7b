"""Mastodon adapter against the local fake instance (tests/fakes/platforms/mastodon.py)."""
from __future__ import annotations

import re
import socket
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from platforms.base import (
    Ambiguous, AuthExpired, Credentials, InvalidGrant, Media, Permanent, Pkce, PlatformConfig,
    PublishRequest, RateLimited, Transient, ACCOUNT_METRICS, POST_METRICS,
)
from platforms.mastodon import DEFAULT_SCOPES, MastodonAdapter, comparable, plain_text
from platforms.registry import get_adapter
from tests.fakes.platforms.mastodon import FakeMastodon, iso6

REDIRECT = "https://herald.test/oauth/mastodon/callback"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_adapter(**overrides) -> MastodonAdapter:
    settings = dict(redirect_uri=REDIRECT, timeout=2.0, poll_interval=0.01, poll_budget=2.0)
    settings.update(overrides)
    return MastodonAdapter(PlatformConfig(**settings))


@pytest.fixture(scope="module")
def server():
    with FakeMastodon() as running:   # one server per module; each test starts from reset()
        yield running


@pytest.fixture
def fake(server):
    server.reset()
    server.alice = server.add_account("alice", display_name="Alice",
                                      avatar="https://files.example/alice.png", followers=7,
                                      following=2)
    return server


@pytest.fixture
def adapter():
    adapter = make_adapter()
    yield adapter
    adapter.http.close()


@pytest.fixture
def creds(fake):
    token = fake.issue_token(fake.alice, "read write")
    return Credentials(access_token=token, platform_user_id=fake.alice,
                       extra={"instance_url": fake.url, "client_id": "test-client",
                              "client_secret": "test-secret"})


def request_for(text: str, key: str = "item-1", media=(), state=None, **options) -> PublishRequest:
    return PublishRequest(target_id="t1", text=text, idempotency_key=key, media=list(media),
                          options=options, state=dict(state or {}))


def image(fake, name="cat.png", alt="") -> Media:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    return Media(url=fake.add_media(name, data, "image/png"), mime="image/png", kind="image",
                 size=len(data), alt_text=alt)


def video(fake, name="clip.mp4", alt="") -> Media:
    data = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 300
    return Media(url=fake.add_media(name, data, "video/mp4"), mime="video/mp4", kind="video",
                 size=len(data), alt_text=alt)


# -- registry, capabilities, counting ------------------------------------------------------

def test_registry_builds_the_mastodon_adapter():
    adapter = get_adapter("mastodon")
    assert isinstance(adapter, MastodonAdapter)
    assert adapter.api_url == ""                     # no global host
    caps = adapter.capabilities
    assert (caps.connect, caps.pkce, caps.idempotency, caps.refresh, caps.reconcile) == \
        ("instance_oauth", True, True, False, True)
    assert (caps.text_limit, caps.max_images, caps.max_videos) == (500, 4, 1)


def test_counting_links_as_23_and_graphemes():
    adapter = MastodonAdapter()
    assert adapter.count("👨‍👩‍👧‍👦") == 1
    long_link = "https://example.com/" + "p" * 200
    assert adapter.count(f"see {long_link}") == 4 + 23
    assert adapter.validate("a" * 470 + " " + long_link, []) == []   # 494 counted, 691 raw
    problems = adapter.validate("a" * 501, [])
    assert len(problems) == 1 and "500" in problems[0]
    assert any("mix" in p for p in adapter.validate("x", [
        Media(url="u1", mime="image/png", kind="image"), Media(url="u2", mime="video/mp4", kind="video")]))


def test_the_instance_sets_its_own_limit(fake):
    fake.max_characters = 1000
    bound = make_adapter().for_instance(fake.url)
    caps = bound.configure_from_instance()
    assert caps.text_limit == 1000 and bound.capabilities.text_limit == 1000
    assert bound.validate("a" * 900, []) == []
    assert make_adapter().validate("a" * 900, []) != []   # other adapters keep the default


# -- connect ------------------------------------------------------------------------------

def test_connect_register_authorize_exchange_identity(fake, adapter):
    client_id, client_secret = adapter.register_app(fake.url, REDIRECT)
    registration = fake.calls_to("/api/v1/apps")[0].json
    assert registration["redirect_uris"] == REDIRECT
    assert registration["scopes"] == " ".join(DEFAULT_SCOPES)

    bound = adapter.for_instance(fake.url + "/", client_id, client_secret)
    pkce = Pkce.generate()
    url = bound.authorize_url("state-123", pkce)
    query = parse_qs(urlparse(url).query)
    assert url.startswith(f"{fake.url}/oauth/authorize?")
    assert query["code_challenge"] == [pkce.challenge]
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [REDIRECT] and query["state"] == ["state-123"]

    # The person's browser: the authorize page, then the Authorize button.
    page = httpx.get(url)
    assert page.status_code == 200 and 'id="authorize"' in page.text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    form = {k: v.replace("&amp;", "&") for k, v in form.items()}
    approved = httpx.post(f"{fake.url}/oauth/authorize", data={**form, "decision": "approve"})
    assert approved.status_code == 302
    callback = urlparse(approved.headers["Location"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == REDIRECT
    params = parse_qs(callback.query)
    assert params["state"] == ["state-123"]

    tokens = bound.exchange_code(params["code"][0], pkce)
    assert tokens.access_token and tokens.refresh_token is None and tokens.expires_at is None
    assert tokens.scopes == DEFAULT_SCOPES
    assert tokens.extra["instance_url"] == fake.url and tokens.extra["client_id"] == client_id
    token_call = fake.calls_to("/oauth/token")[0]
    assert token_call.form["code_verifier"] == pkce.verifier

    me = bound.identity(tokens)
    assert me.platform_user_id == fake.alice
    assert me.handle == f"alice@{urlparse(fake.url).netloc}"
    assert (me.display_name, me.avatar_url) == ("Alice", "https://files.example/alice.png")


def test_exchange_refuses_a_wrong_verifier_and_a_reused_code(fake, adapter):
    client_id, secret = adapter.register_app(fake.url, REDIRECT)
    bound = adapter.for_instance(fake.url, client_id, secret)

    def code_for(pkce: Pkce) -> str:
        query = parse_qs(urlparse(bound.authorize_url("s", pkce)).query)
        answer = httpx.post(f"{fake.url}/oauth/authorize",
                            data={**{k: v[0] for k, v in query.items()}, "decision": "approve"})
        return parse_qs(urlparse(answer.headers["Location"]).query)["code"][0]

    pkce = Pkce.generate()
    with pytest.raises(Permanent, match="connect again"):
        bound.exchange_code(code_for(pkce), Pkce.generate())
    code = code_for(pkce)
    bound.exchange_code(code, pkce)
    with pytest.raises(Permanent, match="connect again"):
        bound.exchange_code(code, pkce)


def test_authorize_needs_the_instance_app_first(adapter):
    with pytest.raises(Permanent, match="register_app"):
        adapter.authorize_url("s")


def test_register_app_on_something_that_is_not_mastodon(fake, adapter):
    fake.fail("/api/v1/apps", status=404, body="<html>nope</html>")
    with pytest.raises(Permanent, match="doesn't look like a Mastodon instance"):
        adapter.register_app(fake.url, REDIRECT)


def test_refresh_returns_the_same_token_until_it_is_refused(fake, adapter, creds):
    tokens = adapter.refresh(creds)
    assert tokens.access_token == creds.access_token and tokens.expires_at is None
    fake.tokens.clear()                                      # revoked on the instance
    with pytest.raises(InvalidGrant, match="reconnect"):
        adapter.refresh(creds)


def test_revoke(fake, adapter, creds):
    adapter.revoke(creds)
    call = fake.calls_to("/oauth/revoke")[0]
    assert call.form == {"client_id": "test-client", "client_secret": "test-secret",
                         "token": creds.access_token}
    with pytest.raises(AuthExpired):
        adapter.account_metrics(creds)
    adapter.revoke(creds)                                    # idempotent
    with pytest.raises(Permanent, match="app registration"):
        adapter.revoke(Credentials(access_token="t", platform_user_id="1",
                                   extra={"instance_url": fake.url}))


# -- publish ------------------------------------------------------------------------------

def test_publish_text_with_idempotency_key(fake, adapter, creds):
    published = adapter.publish(request_for("Hello, fediverse!", visibility="unlisted"), creds)
    [status] = fake.live_statuses()
    assert published.platform_post_id == status.id
    assert published.url == f"{fake.url}/@alice/{status.id}"
    assert published.published_at is not None
    assert status.text == "Hello, fediverse!" and status.body["visibility"] == "unlisted"
    call = fake.calls_to("/api/v1/statuses", "POST")[0]
    assert call.header("Idempotency-Key") == "item-1"


def test_publish_image_with_alt_text(fake, adapter, creds):
    states = []
    cat = image(fake, alt="A cat on a mat")
    adapter.publish(request_for("Look", media=[cat]), creds, checkpoint=states.append)
    upload = fake.calls_to("/api/v2/media", "POST")[0]
    assert upload.form["description"] == "A cat on a mat"
    assert fake.calls_to("/api/v1/media/*", "GET") == []    # images are processed at once
    [status] = fake.live_statuses()
    [attachment] = status.body["media_attachments"]
    assert attachment["type"] == "image" and attachment["description"] == "A cat on a mat"
    assert states[-1]["media"] == [{"url": cat.url, "id": attachment["id"]}]


def test_publish_video_polls_202_206_200(fake, adapter, creds):
    states = []
    adapter.publish(request_for("Watch", media=[video(fake, alt="clip")]), creds,
                    checkpoint=states.append)
    polls = fake.calls_to("/api/v1/media/*", "GET")
    assert len(polls) == 3                                  # 206, 206, then 200 with a url
    [status] = fake.live_statuses()
    [attachment] = status.body["media_attachments"]
    assert attachment["type"] == "video" and attachment["url"]
    # The media id was checkpointed before the first poll.
    assert states[0]["media"][0]["id"] == attachment["id"]
    first_poll = fake.calls.index(polls[0])
    upload = fake.calls.index(fake.calls_to("/api/v2/media", "POST")[0])
    assert upload < first_poll


def test_poll_budget_spent_is_transient_and_a_retry_resumes(fake, creds):
    fake.processing_polls = 10**6
    impatient = make_adapter(poll_budget=0.05)
    states = []
    with pytest.raises(Transient, match="still processing"):
        impatient.publish(request_for("Watch", media=[video(fake)]), creds, checkpoint=states.append)
    assert fake.live_statuses() == []
    fake.finish_processing()
    impatient.publish(request_for("Watch", media=[video(fake)], state=states[-1]), creds)
    assert len(fake.calls_to("/api/v2/media", "POST")) == 1   # not uploaded twice
    assert len(fake.live_statuses()) == 1
    impatient.http.close()


def test_vanished_media_is_uploaded_again(fake, adapter, creds):
    state = {"media": [{"url": image(fake).url, "id": "999"}]}
    adapter.publish(request_for("Look", media=[image(fake)], state=state), creds)
    assert len(fake.calls_to("/api/v2/media", "POST")) == 1
    assert len(fake.live_statuses()[0].body["media_attachments"]) == 1


def test_retry_with_the_same_key_creates_no_second_post(fake, adapter, creds):
    first = adapter.publish(request_for("Only once"), creds)
    second = adapter.publish(request_for("Only once"), creds)
    assert second.platform_post_id == first.platform_post_id
    assert len(fake.live_statuses()) == 1
    keys = [c.header("Idempotency-Key") for c in fake.calls_to("/api/v1/statuses", "POST")]
    assert keys == ["item-1", "item-1"]


def test_fake_forgets_idempotency_keys_after_an_hour(fake, adapter, creds):
    first = adapter.publish(request_for("Hourly"), creds)
    fake.advance(3601)
    assert adapter.publish(request_for("Hourly"), creds).platform_post_id != first.platform_post_id


def test_timeout_after_send_is_ambiguous_then_reconciled(fake, creds):
    slow = make_adapter(timeout=0.5)
    since = datetime.now(timezone.utc)
    fake.fail("/api/v1/statuses", method="POST", hang_after=2.0)
    with pytest.raises(Ambiguous):
        slow.publish(request_for("Did it land?"), creds)
    [status] = fake.live_statuses()                          # it did
    lookup = slow.find_published(request_for("Did it land?"), creds, since)
    assert lookup.status == "found" and lookup.published.platform_post_id == status.id
    # And the documented safe retry: same key, same status.
    assert slow.publish(request_for("Did it land?"), creds).platform_post_id == status.id
    assert len(fake.live_statuses()) == 1
    slow.http.close()


def test_find_published_matches_rendered_html(fake, adapter, creds):
    text = ("Hello @bob@other.example & friends\nRead "
            "https://example.com/a/really/long/path/that/is/over/thirty/chars #News")
    since = datetime.now(timezone.utc)
    adapter.publish(request_for("something else", key="other"), creds)
    published = adapter.publish(request_for(text), creds)
    content = fake.live_statuses()[-1].body["content"]
    assert "<br />" in content and "invisible" in content and "other.example" not in content
    lookup = adapter.find_published(request_for(text), creds, since)
    assert lookup.status == "found" and lookup.published.platform_post_id == published.platform_post_id


def test_find_published_not_found(fake, adapter, creds):
    adapter.publish(request_for("an older post"), creds)
    lookup = adapter.find_published(request_for("never sent", key="k2"), creds,
                                    datetime.now(timezone.utc) - timedelta(minutes=1))
    assert lookup.status == "not_found"
    # Posts from before `since` don't count, even with the same text.
    later = adapter.find_published(request_for("an older post"), creds,
                                   datetime.now(timezone.utc) + timedelta(hours=1))
    assert later.status == "not_found"


def test_find_published_pages_back_through_recent_posts(fake, adapter, creds):
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    adapter.publish(request_for("the one"), creds)
    for i in range(45):
        adapter.publish(request_for(f"filler {i}", key=f"f{i}"), creds)
    lookup = adapter.find_published(request_for("the one"), creds, since)
    assert lookup.status == "found"
    assert len(fake.calls_to(f"/api/v1/accounts/{fake.alice}/statuses")) == 2


def test_html_normalisation_helpers():
    assert plain_text("<p>a &amp; b<br />c</p><p>d</p>") == "a & b\nc\n\nd"
    assert comparable("hi @bob@x.social\n\n there") == comparable("hi @bob there")


# -- delete and metrics -------------------------------------------------------------------

def test_delete_and_delete_again(fake, adapter, creds):
    published = adapter.publish(request_for("short-lived"), creds)
    adapter.delete(published.platform_post_id, creds)
    assert fake.live_statuses() == []
    adapter.delete(published.platform_post_id, creds)       # 404: already gone
    with pytest.raises(Permanent):
        adapter.post_metrics(published.platform_post_id, creds)


def test_account_metrics(fake, adapter, creds):
    adapter.publish(request_for("one"), creds)
    metrics = adapter.account_metrics(creds)
    assert metrics.values == {"followers": 7, "following": 2, "posts": 1}
    assert metrics.unsupported == frozenset(ACCOUNT_METRICS) - {"followers", "following", "posts"}


def test_post_metrics_normalised_and_unsupported_listed(fake, adapter, creds):
    published = adapter.publish(request_for("popular"), creds)
    fake.set_counts(published.platform_post_id, favourites_count=9, replies_count=2,
                    reblogs_count=3, quotes_count=1)
    metrics = adapter.post_metrics(published.platform_post_id, creds)
    assert metrics.values == {"likes": 9, "comments": 2, "shares": 4}
    assert metrics.unsupported == {"saves", "views", "impressions", "reach"}
    assert metrics.unsupported == frozenset(POST_METRICS) - set(metrics.values)


# -- error mapping ------------------------------------------------------------------------

def test_429_uses_the_iso_reset_header(fake, adapter, creds):
    reset = datetime.now(timezone.utc).replace(microsecond=123456) + timedelta(minutes=5)
    fake.fail("/api/v1/statuses", method="POST", status=429, json={"error": "Too many requests"},
              headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                       "X-RateLimit-Reset": iso6(reset.timestamp())})
    with pytest.raises(RateLimited) as caught:
        adapter.publish(request_for("hi"), creds)
    assert caught.value.retry_at == reset
    assert fake.live_statuses() == []


def test_server_error_is_transient(fake, adapter, creds):
    fake.fail("/api/v1/statuses", method="POST", status=503, json={"error": "unavailable"})
    with pytest.raises(Transient) as caught:
        adapter.publish(request_for("hi"), creds)
    assert caught.value.http_status == 503


def test_invalid_token_is_auth_expired(fake, adapter, creds):
    creds.access_token = "not-a-token"
    with pytest.raises(AuthExpired) as caught:
        adapter.publish(request_for("hi"), creds)
    assert not isinstance(caught.value, InvalidGrant)
    assert "not-a-token" not in f"{caught.value.message} {caught.value.detail}"


def test_validation_failure_is_permanent_with_the_reason(fake, adapter, creds):
    with pytest.raises(Permanent) as caught:
        adapter.publish(request_for("a" * 501), creds)
    assert caught.value.http_status == 422
    assert caught.value.message == ("Mastodon refused to publish the post: "
                                    "Validation failed: Text character limit of 500 exceeded")


def test_connect_failure_is_transient():
    adapter = make_adapter()
    creds = Credentials(access_token="t", platform_user_id="1",
                        extra={"instance_url": closed_port_url()})
    with pytest.raises(Transient):
        adapter.publish(request_for("hi"), creds)
    with pytest.raises(Transient):
        adapter.register_app(closed_port_url(), REDIRECT)


def test_account_calls_need_an_instance():
    with pytest.raises(Permanent, match="instance"):
        make_adapter().publish(request_for("hi"), Credentials(access_token="t", platform_user_id="1"))
