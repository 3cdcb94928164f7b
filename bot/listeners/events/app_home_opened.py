"""App Home: on `app_home_opened` (Home tab only) publish the person's Home — unless it is
exactly what Slack already shows them (bot/home.py compares digests with the event's view)."""
from __future__ import annotations

from bot import home
from bot.context import connected, team_of


def register(app, settings) -> None:
    home.configure(settings.public_url)
    app.event("app_home_opened")(home_opened)


@connected
def home_opened(event, body, client, context):
    if event.get("tab") != "home" or not event.get("user"):
        return                         # the Messages tab fires this event too
    team_id = getattr(context, "team_id", None) or body.get("team_id") or team_of(body, context)[0]
    home.publish(client, team_id, event["user"], shown=event.get("view"), from_event=True)
