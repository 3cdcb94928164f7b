"""Every module under bot/listeners/<type>/ with a `register(app, settings)` function is
registered here, so a new listener is one new module (starter-template layout)."""
from __future__ import annotations

import importlib
import pkgutil


def register(app, settings) -> None:
    package = importlib.import_module(__name__)
    for info in sorted(pkgutil.walk_packages(package.__path__, f"{__name__}."), key=lambda i: i.name):
        if info.ispkg:
            continue
        module = importlib.import_module(info.name)
        hook = getattr(module, "register", None)
        if callable(hook):
            hook(app, settings)
