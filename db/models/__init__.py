"""Every table, grouped by area. ALL_MODELS is in dependency order (create/truncate)."""
from db.models.accounts import ACCOUNT_STATUSES, PLATFORMS, OAuthToken, SocialAccount
from db.models.analytics import AccountDaily, AudienceInsight, FollowerChange, MetricsSnapshot, \
    PostMetrics
from db.models.audit import AuditLog
from db.models.automation import Automation, Consent, Event
from db.models.connect import ConnectState, MastodonApp
from db.models.content import ATTEMPT_STATES, DECISIONS, ERROR_KINDS, MEDIA_SOURCES, \
    POST_STATUSES, TARGET_STATUSES, Approval, Media, Post, PostTarget, PublishAttempt
from db.models.slack import SlackBot, SlackInstallation, SlackOAuthState
from db.models.tenancy import APPROVAL_POLICIES, ROLES, Membership, Project, User, Workspace
from db.models.web import SigninLink

ALL_MODELS = [
    Workspace, User, Membership, Project,
    SocialAccount, OAuthToken,
    Post, PostTarget, Media, Approval, PublishAttempt,
    MetricsSnapshot, AccountDaily, PostMetrics, AudienceInsight, FollowerChange,
    Automation, Consent, Event,
    AuditLog,
    SlackInstallation, SlackBot, SlackOAuthState,
    ConnectState, MastodonApp,
    SigninLink,
]

__all__ = [m.__name__ for m in ALL_MODELS] + [
    "ALL_MODELS", "ACCOUNT_STATUSES", "APPROVAL_POLICIES", "ATTEMPT_STATES", "DECISIONS",
    "ERROR_KINDS", "MEDIA_SOURCES", "PLATFORMS", "POST_STATUSES", "ROLES", "TARGET_STATUSES",
]
