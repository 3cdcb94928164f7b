"""Helpers for the admin-site tests: sign a test client in through a real one-time link and
post forms with the CSRF token the page gave out."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from core import signin
from core.workspaces import ensure_workspace

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token field"
    return match.group(1)


class Browser:
    """A Flask test client that behaves like a person with a browser."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.pages: list[str] = []          # every HTML body seen, for leak checks

    def get(self, path, **kw):
        response = self.client.get(path, **kw)
        self.pages.append(response.get_data(as_text=True))
        return response

    def post(self, path, data=None, *, csrf_from_page: str | None = None, **kw):
        data = dict(data or {})
        if csrf_from_page is not None:
            data["csrf_token"] = csrf_from(self.get(csrf_from_page).get_data(as_text=True))
        response = self.client.post(path, data=data, **kw)
        self.pages.append(response.get_data(as_text=True))
        return response

    def sign_in(self, user, next: str | None = None):
        url = signin.issue_link(user, self.app.config["HERALD"])
        path = urlsplit(url).path + (f"?next={next}" if next else "")
        page = self.get(path)
        assert page.status_code == 200, page.get_data(as_text=True)
        form = {"csrf_token": csrf_from(page.get_data(as_text=True))}
        if next:
            form["next"] = next
        response = self.client.post(path, data=form)
        self.pages.append(response.get_data(as_text=True))
        return response


@pytest.fixture
def site(herald):
    return herald


@pytest.fixture
def home_workspace(db):
    """The herald fixture's single workspace (team T111)."""
    return ensure_workspace("T111", "Acme")


@pytest.fixture
def browser(site):
    return Browser(site)


@pytest.fixture
def browser_factory(site):
    return lambda: Browser(site)
