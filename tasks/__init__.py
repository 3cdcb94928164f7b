"""Background work. `huey_consumer tasks.huey` runs it; tasks receive ids, never tokens.

Importing this package registers the engine's doorbells with core (no database or settings
are touched): core.scheduling rings `publish_target` after a commit that scheduled targets,
and core.notify rings the Slack notifications. The web process imports it at start-up.
"""
from core import notify as _notify
from core import scheduling as _scheduling
from tasks.queue import huey
from tasks import notify, publish, sweep  # noqa: E402,F401  (registers the tasks)

_scheduling.register_ringer(publish.ring)
_notify.register_notifier(notify.announce)

__all__ = ["huey"]
