"""/media/<id> serves files attached from Slack to the networks that fetch them, and nothing
else: only Slack files of live posts, fetched with the bot token that never leaves the server."""
from __future__ import annotations

import uuid

import pytest

from db.models import Media

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 100


@pytest.fixture
def attached(make, fake_slack):
    ws = make.workspace("T111")
    author = make.user(ws, role="editor")
    post = make.post(ws, make.project(ws), author, status="scheduled")
    fake_slack.add_file("F0MEDIA", PNG, "image/png", name="launch.png")
    media = Media.create(post=post, source="slack_file", slack_file_id="F0MEDIA", mime="image/png",
                         url="http://herald.test/media/x")
    return post, media


def test_a_slack_file_of_a_live_post_is_served(herald, attached, fake_slack):
    post, media = attached
    response = herald.test_client().get(f"/media/{media.id}")
    assert response.status_code == 200
    assert response.data == PNG and response.content_type == "image/png"
    assert "xoxb" not in str(response.headers)
    (download,) = fake_slack.calls_to("/files-pri/*")
    assert download.header("Authorization") == "Bearer xoxb-herald-test"


@pytest.mark.parametrize("media_id", [str(uuid.uuid4()), "garbage", "1 OR 1=1"])
def test_unknown_ids_are_not_found(herald, attached, media_id):
    assert herald.test_client().get(f"/media/{media_id}").status_code == 404


def test_files_of_cancelled_posts_and_plain_urls_are_not_served(herald, attached):
    post, media = attached
    url_media = Media.create(post=post, source="url", url="https://cdn.example.com/a.png",
                             mime="image/png", position=1)
    assert herald.test_client().get(f"/media/{url_media.id}").status_code == 404
    post.status = "cancelled"
    post.save()
    assert herald.test_client().get(f"/media/{media.id}").status_code == 404


def test_a_file_slack_will_not_hand_over_is_a_clear_failure(herald, attached, fake_slack):
    post, media = attached
    fake_slack.fail("/files-pri/*", status=403, body="<html>no</html>")
    response = herald.test_client().get(f"/media/{media.id}")
    assert response.status_code == 502 and b"Traceback" not in response.data
