"""Platform name -> adapter class. Imports are lazy so one network's module can't slow or
break start-up for the others."""
from __future__ import annotations

import importlib

from platforms.base import Adapter, PlatformConfig

ADAPTERS = {
    "x": "platforms.x:XAdapter",
    "linkedin": "platforms.linkedin:LinkedInAdapter",
    "instagram": "platforms.instagram:InstagramAdapter",
    "facebook": "platforms.facebook:FacebookAdapter",
    "threads": "platforms.threads:ThreadsAdapter",
    "tiktok": "platforms.tiktok:TikTokAdapter",
    "pinterest": "platforms.pinterest:PinterestAdapter",
    "bluesky": "platforms.bluesky:BlueskyAdapter",
    "mastodon": "platforms.mastodon:MastodonAdapter",
    "sandbox": "platforms.sandbox:SandboxAdapter",
}
NETWORKS = tuple(name for name in ADAPTERS if name != "sandbox")


def adapter_class(name: str) -> type[Adapter]:
    try:
        module, cls = ADAPTERS[name].split(":")
    except KeyError:
        raise KeyError(f"unknown platform {name!r}") from None
    return getattr(importlib.import_module(module), cls)


def get_adapter(name: str, config: PlatformConfig | None = None, **kw) -> Adapter:
    return adapter_class(name)(config, **kw)
