"""Listeners; each module registers itself (see bot/listeners/__init__.py)."""
