"""Small factories for tests: real rows through the real services where one exists."""
from __future__ import annotations

import itertools
from datetime import timedelta

from core import workspaces
from db.fields import utcnow
from db.models import OAuthToken, Post, PostTarget, Project, SocialAccount

_seq = itertools.count(1)


class Factories:
    def workspace(self, team_id: str | None = None, name: str = "Acme"):
        return workspaces.ensure_workspace(team_id or f"T{next(_seq):06d}", name)

    def user(self, workspace, role: str = "editor", slack_user_id: str | None = None,
             real_name: str | None = None, tz: str | None = "Europe/Berlin"):
        n = next(_seq)
        return workspaces.ensure_user(workspace, slack_user_id or f"U{n:06d}",
                                      real_name=real_name or f"Person {n}", tz=tz, role=role)

    def project(self, workspace, name: str | None = None, **kw):
        return Project.create(workspace=workspace, name=name or f"Brand {next(_seq)}", **kw)

    def account(self, workspace, platform: str = "mastodon", project=None, **kw):
        n = next(_seq)
        account = SocialAccount.create(workspace=workspace, project=project, platform=platform,
                                       platform_user_id=kw.pop("platform_user_id", f"{n}"),
                                       handle=kw.pop("handle", f"brand{n}"), **kw)
        return account

    def token(self, account, access: str = "access-secret", refresh: str | None = "refresh-secret"):
        return OAuthToken.create(account=account, access_token=access, refresh_token=refresh,
                                 expires_at=utcnow() + timedelta(hours=2))

    def post(self, workspace, project, author, body: str = "Hello", status: str = "draft", **kw):
        return Post.create(workspace=workspace, project=project, author=author, body=body,
                           status=status, **kw)

    def target(self, post, account, **kw):
        return PostTarget.create(post=post, account=account, **kw)
