"""Background work. `huey_consumer tasks.huey` runs it; tasks receive ids, never tokens."""
from tasks.queue import huey

__all__ = ["huey"]
