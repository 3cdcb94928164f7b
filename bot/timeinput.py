"""Date and time inputs ↔ instants.

Slack's datepicker and timepicker send wall-clock values with no zone ("2025-01-15",
"09:00"). Herald reads them in the person's Slack time zone (users.info `tz`), falling back
to the project's zone and then UTC, and stores an aware UTC instant. Going the other way,
a stored instant is shown in the same zone to prefill the pickers.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)


class BadTime(ValueError):
    """A date or time input Herald can't read (only a forged payload sends one)."""


def valid_zone(name: str | None) -> str | None:
    if not name or not isinstance(name, str):
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def pick_zone(*candidates: str | None) -> str:
    """The first real IANA zone among candidates (user's Slack tz, project's, …), else UTC."""
    for candidate in candidates:
        zone = valid_zone(candidate)
        if zone:
            return zone
    return "UTC"


def slack_zone(client, slack_user_id: str) -> str | None:
    """The person's time zone from users.info, or None when Slack doesn't say (tz can be
    null) or can't be asked. Never raises: a zone is a nicety, the fallbacks are fine."""
    try:
        user = client.users_info(user=slack_user_id)["user"]
    except Exception:  # noqa: BLE001 — SlackApiError, network errors: fall back
        log.warning("users.info failed for %s; using the fallback time zone", slack_user_id)
        return None
    return valid_zone((user or {}).get("tz"))


def to_utc(day: str, clock: str, zone: str) -> datetime:
    """'YYYY-MM-DD' + 'HH:MM' on the wall clock of `zone` → aware UTC.

    A wall time that doesn't exist (the hour skipped when clocks go forward) or exists twice
    (the hour repeated when they go back) resolves the way zoneinfo does with fold=0: the
    earlier offset."""
    try:
        d = date.fromisoformat(day)
        hours, minutes = (int(part) for part in clock.split(":")[:2])
        t = time(hours, minutes)
    except (TypeError, ValueError, AttributeError) as exc:
        raise BadTime(f"can't read {day!r} {clock!r}") from exc
    local = datetime.combine(d, t).replace(tzinfo=ZoneInfo(pick_zone(zone)))
    return local.astimezone(timezone.utc)


def local_parts(instant: datetime | None, zone: str) -> tuple[str | None, str | None]:
    """An aware instant as ('YYYY-MM-DD', 'HH:MM') on the wall clock of `zone`."""
    if instant is None:
        return None, None
    local = instant.astimezone(ZoneInfo(pick_zone(zone)))
    return local.date().isoformat(), local.strftime("%H:%M")

