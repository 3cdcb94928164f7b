"""/media/<id>: files people attached from Slack, served to the networks that fetch them.

Networks pull media by URL without credentials, so the random media id is the capability; the
file comes from Slack with the workspace's bot token, which never leaves the server. Only
files of live posts are served.
"""
from __future__ import annotations

import logging

import httpx
from flask import Blueprint, Response, abort, current_app, stream_with_context
from slack_sdk.errors import SlackApiError

from bot.app import web_client
from bot.clients import bot_token_for
from core.ids import parse_id
from db.models import Media, Post

log = logging.getLogger(__name__)
bp = Blueprint("media", __name__)
SERVED = ("draft", "pending_approval", "scheduled", "publishing", "needs_review", "failed",
          "partially_published")


@bp.get("/media/<media_id>")
def slack_file(media_id: str):
    settings = current_app.config["HERALD"]
    row = (Media.select(Media, Post).join(Post)
           .where((Media.id == parse_id(media_id)) & (Media.source == "slack_file")
                  & Post.deleted_at.is_null() & Post.status.in_(SERVED))
           .first()) if parse_id(media_id) else None
    token = row and bot_token_for(settings, row.post.workspace_id)
    if not token:
        abort(404)
    try:
        info = web_client(settings, token).files_info(file=row.slack_file_id)["file"]
    except SlackApiError as exc:
        log.warning("media %s: files.info failed: %s", row.id, exc.response.get("error"))
        abort(404)
    url = info.get("url_private_download") or info.get("url_private")
    client = httpx.Client(timeout=30, follow_redirects=True)
    upstream = client.send(client.build_request("GET", url, headers={"Authorization": f"Bearer {token}"}),
                           stream=True)
    if upstream.status_code != 200:
        upstream.close()
        client.close()
        log.warning("media %s: Slack answered %s", row.id, upstream.status_code)
        abort(502)

    def body():
        try:
            yield from upstream.iter_bytes()
        finally:
            upstream.close()
            client.close()

    headers = {"Cache-Control": "private, max-age=300"}
    if upstream.headers.get("content-length"):
        headers["Content-Length"] = upstream.headers["content-length"]
    return Response(stream_with_context(body()), content_type=row.mime or info.get("mimetype"),
                    headers=headers)
