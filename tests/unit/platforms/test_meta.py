"""What the three Meta adapters share (platforms/meta.py): Graph error classification by
`error.code`, usage headers, insights parsing, and the shared fake behaviour."""
from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from platforms.base import (ACCOUNT_METRICS, AuthExpired, InvalidGrant, Permanent, PlatformConfig,
                            RateLimited, Transient)
from platforms.facebook import FacebookAdapter
from platforms.http import utcnow
from platforms.instagram import InstagramAdapter
from platforms.meta import (DEFAULT_THROTTLE_WAIT, GRAPH_VERSION, PUBLISH_CAP_WAIT,
                            THREADS_VERSION, classify, insight_values, make_metrics,
                            regain_access_at, same_text, usage)
from platforms.registry import adapter_class
from platforms.threads import ThreadsAdapter
from tests.fakes.platforms.facebook import FacebookFake
from tests.fakes.platforms.instagram import InstagramFake
from tests.fakes.platforms.threads import ThreadsFake


def reply(status: int, body=None, headers: dict | None = None, text: str | None = None) -> httpx.Response:
    request = httpx.Request("POST", f"https://graph.facebook.com/{GRAPH_VERSION}/1/feed")
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


def graph(code: int, message: str = "Something", *, subcode=None, transient=False) -> dict:
    error = {"message": message, "type": "OAuthException", "code": code,
             "is_transient": transient, "fbtrace_id": "Axyz"}
    if subcode:
        error["error_subcode"] = subcode
    return {"error": error}


def buc(*minutes: int) -> dict:
    return {"X-Business-Use-Case-Usage": json.dumps({
        "104": [{"type": "pages", "call_count": 100, "total_cputime": 5, "total_time": 9,
                 "estimated_time_to_regain_access": m} for m in minutes]})}


def close_to(moment, expected, seconds: float = 5) -> bool:
    return abs((moment - expected).total_seconds()) < seconds


# -- one version constant, used by adapters and fakes alike ---------------------------------

def test_versions_live_in_one_place():
    assert FacebookAdapter().graph_url("me") == f"https://graph.facebook.com/{GRAPH_VERSION}/me"
    assert InstagramAdapter().graph_url("me") == f"https://graph.instagram.com/{GRAPH_VERSION}/me"
    assert ThreadsAdapter().graph_url("me") == f"https://graph.threads.net/{THREADS_VERSION}/me"
    assert FacebookAdapter().auth_url == f"https://www.facebook.com/{GRAPH_VERSION}/dialog/oauth"
    assert InstagramFake.version == FacebookFake.version == GRAPH_VERSION
    assert ThreadsFake.version == THREADS_VERSION


def test_registry_finds_the_three_adapters():
    assert adapter_class("instagram") is InstagramAdapter
    assert adapter_class("facebook") is FacebookAdapter
    assert adapter_class("threads") is ThreadsAdapter


# -- classification: by error.code, never by HTTP status alone -------------------------------

@pytest.mark.parametrize("status, body, expected", [
    (400, graph(190, "Error validating access token: Session has expired", subcode=463), AuthExpired),
    (500, graph(190), AuthExpired),                          # the code wins over a 5xx status
    (400, graph(4, "(#4) Application request limit reached", transient=True), RateLimited),
    (403, graph(17, "(#17) User request limit reached"), RateLimited),
    (400, graph(32, "(#32) Page request limit reached"), RateLimited),
    (400, graph(613), RateLimited),
    (400, graph(80001), RateLimited),
    (400, graph(80002), RateLimited),
    (400, graph(9, subcode=2207042), RateLimited),           # Instagram publishing cap
    (400, graph(100, "(#100) Invalid parameter"), Permanent),
    (403, graph(100, "(#100) Invalid parameter"), Permanent),
    (400, graph(506, "(#506) Duplicate status message"), Permanent),
    (400, graph(2, "Service temporarily unavailable"), Transient),
    (400, graph(368, "Temporarily blocked", transient=True), Transient),
    (500, graph(1, "An unknown error occurred"), Transient),
    (502, None, Transient),
    (429, None, RateLimited),
    (401, None, AuthExpired),
    (400, {"error_type": "OAuthException", "code": 400, "error_message": "Invalid code"}, Permanent),
])
def test_classification_table(status, body, expected):
    error = classify("Facebook", reply(status, body) if body is not None else reply(status, text=""))
    assert type(error) is expected
    assert "Facebook" in error.message
    assert error.http_status == status


@pytest.mark.parametrize("code", [10, 200, 230, 299])
def test_permission_errors_ask_to_reconnect(code):
    error = classify("Instagram", reply(403, graph(code, f"(#{code}) Permissions error")))
    assert type(error) is Permanent
    assert "reconnect" in error.message and "permissions" in error.message
    assert error.code == str(code)


def test_success_is_not_an_error():
    assert classify("Threads", reply(200, {"id": "1"})) is None


def test_the_code_and_subcode_are_kept_for_the_journal():
    error = classify("Instagram", reply(400, graph(9, subcode=2207042)))
    assert error.code == "9/2207042"


def test_message_is_the_networks_words_without_the_code_prefix():
    error = classify("Instagram", reply(400, graph(100, "(#100) The caption is too long.")))
    assert error.message == "Instagram says: The caption is too long."


def test_user_facing_message_is_preferred():
    body = graph(100, "(#100) Invalid parameter")
    body["error"]["error_user_msg"] = "The aspect ratio isn't supported."
    assert "aspect ratio" in classify("Instagram", reply(400, body)).message


def test_tokens_never_reach_messages_or_details():
    secret = "EAAGm0PX4ZCpsBAKZCZBsecretsecretsecretsecretsecretZDZD"
    body = graph(100, f"(#100) Bad request access_token={secret} for {secret}")
    body["access_token"] = secret
    error = classify("Facebook", reply(400, body))
    assert secret not in error.message
    assert secret not in (error.detail or "")


# -- retry_at: X-Business-Use-Case-Usage, then Retry-After, then a default -------------------

def test_retry_at_comes_from_estimated_time_to_regain_access_in_minutes():
    error = classify("Facebook", reply(400, graph(32), headers=buc(12)))
    assert isinstance(error, RateLimited)
    assert close_to(error.retry_at, utcnow() + timedelta(minutes=12))


def test_largest_regain_time_wins():
    assert close_to(regain_access_at(reply(400, graph(4), headers=buc(3, 0, 9))),
                    utcnow() + timedelta(minutes=9))


def test_zero_regain_time_falls_back_to_retry_after():
    headers = {**buc(0), "Retry-After": "30"}
    error = classify("Threads", reply(400, graph(4), headers=headers))
    assert close_to(error.retry_at, utcnow() + timedelta(seconds=30))


def test_default_wait_without_any_signal():
    error = classify("Threads", reply(400, graph(613)))
    assert close_to(error.retry_at, utcnow() + DEFAULT_THROTTLE_WAIT)


def test_publish_cap_waits_an_hour_by_default():
    error = classify("Instagram", reply(400, graph(9, subcode=2207042)))
    assert close_to(error.retry_at, utcnow() + PUBLISH_CAP_WAIT)


def test_bare_429_uses_regain_time_when_sent():
    error = classify("Instagram", reply(429, text="", headers=buc(4)))
    assert isinstance(error, RateLimited)
    assert close_to(error.retry_at, utcnow() + timedelta(minutes=4))


def test_usage_reads_the_percentages():
    headers = {"X-App-Usage": json.dumps({"call_count": 16, "total_cputime": 5, "total_time": 12}),
               **buc(0)}
    assert usage(reply(200, {}, headers=headers)) == {"app": 16, "business": 100}
    assert usage(reply(200, {}, headers={"X-App-Usage": "not json"})) == {}


# -- insights and metrics ------------------------------------------------------------------

def test_insight_values_reads_all_three_shapes():
    body = {"data": [
        {"name": "likes", "total_value": {"value": 25}},
        {"name": "reach", "values": [{"value": 10}, {"value": 15}]},
        {"name": "page_media_view", "values": [{"value": {"paid": 3, "organic": 7}}]},
    ]}
    assert insight_values(body) == {"likes": 25, "reach": 25, "page_media_view": 10}


def test_unsupported_metrics_are_never_reported_as_zero():
    metrics = make_metrics({"followers": 5, "following": None, "profile_views": 9},
                           ACCOUNT_METRICS, {"followers", "following"})
    assert metrics.values == {"followers": 5}
    assert "profile_views" in metrics.unsupported and "profile_views" not in metrics.values
    assert "following" not in metrics.unsupported        # offered, just not known right now


def test_same_text_ignores_reflowed_whitespace_but_not_words():
    assert same_text("hello  world\n", "hello world")
    assert not same_text("hello world", "hello there")
    assert not same_text("", "")


# -- shared fake behaviour -----------------------------------------------------------------

def test_fake_consent_page_waits_for_a_click():
    with InstagramFake() as fake:
        fake.interactive = True
        adapter = InstagramAdapter(PlatformConfig(client_id=fake.client_id,
                                                  redirect_uri="https://herald.test/cb",
                                                  api_url=fake.url,
                                                  auth_url=fake.url + "/oauth/authorize"))
        url = adapter.authorize_url("s1")
        page = httpx.get(url)
        assert page.status_code == 200 and "id='allow'" in page.text
        allowed = httpx.post(url, data={**{k: v[0] for k, v in parse_qs(urlparse(url).query).items()},
                                        "decision": "allow"})
        assert allowed.status_code == 302
        query = parse_qs(urlparse(allowed.headers["location"]).query)
        assert query["state"] == ["s1"] and query["code"]
        denied = httpx.post(url, data={"client_id": fake.client_id,
                                       "redirect_uri": "https://herald.test/cb", "state": "s1",
                                       "decision": "deny"})
        assert parse_qs(urlparse(denied.headers["location"]).query)["error"] == ["access_denied"]


def test_fake_refuses_unknown_apps_without_redirecting():
    with ThreadsFake() as fake:
        answer = httpx.get(f"{fake.url}/oauth/authorize",
                           params={"client_id": "someone-else", "redirect_uri": "https://x/cb"})
        assert answer.status_code == 400 and "location" not in answer.headers


def test_fake_throttle_is_a_4xx_with_usage_headers():
    with FacebookFake() as fake:
        path = f"/{fake.version}/{fake.page_id}/feed"
        fake.throttle(path, code=32, regain_minutes=12, status=403)
        answer = httpx.post(fake.url + path, params={"access_token": fake.page_token_for()})
        assert answer.status_code == 403 and answer.json()["error"]["code"] == 32
        assert close_to(regain_access_at(answer), utcnow() + timedelta(minutes=12))
        assert json.loads(answer.headers["X-App-Usage"])["call_count"] == 100
        normal = httpx.get(f"{fake.url}/{fake.version}/me",
                           params={"access_token": fake.page_token_for()})
        assert normal.status_code == 200 and "X-Business-Use-Case-Usage" in normal.headers


def test_refresh_refusal_is_invalid_grant():
    with ThreadsFake() as fake:
        adapter = ThreadsAdapter(PlatformConfig(api_url=fake.url, timeout=2))
        from platforms.base import Credentials
        token = fake.token_for(fake.user_id)
        fake.expire(token)
        with pytest.raises(InvalidGrant):
            adapter.refresh(Credentials(access_token=token, platform_user_id=fake.user_id))
