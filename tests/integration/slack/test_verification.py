"""Only requests Slack signed get in: bad signatures and replays older than 5 minutes get 401."""
from __future__ import annotations

import json
import time

from tests.fakes.slack import load_vector


def test_url_verification_answers_the_challenge(slack):
    body = load_vector("url_verification.json")
    response = slack.post(body, "application/json")
    assert response.status_code == 200
    assert response.get_json()["challenge"] == json.loads(body)["challenge"]


def test_a_bad_signature_is_refused(slack):
    response = slack.post(load_vector("url_verification.json"), "application/json",
                          signature="v0=" + "0" * 64)
    assert response.status_code == 401


def test_a_request_older_than_five_minutes_is_refused(slack):
    body = load_vector("url_verification.json")
    assert slack.post(body, "application/json", timestamp=int(time.time()) - 301).status_code == 401
    assert slack.post(body, "application/json", timestamp=int(time.time()) - 290).status_code == 200


def test_a_retried_delivery_is_answered_without_a_second_effect(slack, fake_slack):
    event = {"type": "app_home_opened", "user": "U111", "channel": "D111", "tab": "home",
             "event_ts": "1.2"}
    response = slack.event(event, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert response.status_code == 200
    assert response.headers.get("x-slack-no-retries") == "1"
    assert fake_slack.calls_for("views.publish") == []
