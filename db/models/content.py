"""What gets published: posts, their per-account targets, media, approvals, and the
publish journal (DESIGN §4)."""
import uuid

from peewee import SQL, BigIntegerField, CharField, FloatField, ForeignKeyField, IntegerField, \
    JSONField, SmallIntegerField, TextField, UUIDField

from db.base import BaseModel, SoftDeleteModel
from db.checks import at_least, one_of
from db.fields import UTCDateTimeField
from db.models.accounts import SocialAccount
from db.models.tenancy import Project, User, Workspace

POST_STATUSES = ("draft", "pending_approval", "scheduled", "publishing", "published",
                 "partially_published", "failed", "needs_review", "missed", "rejected",
                 "cancelled")
TARGET_STATUSES = ("pending", "scheduled", "publishing", "published", "failed", "needs_review",
                   "missed", "cancelled")
MEDIA_SOURCES = ("upload", "slack_file", "url")
DECISIONS = ("approved", "changes_requested", "rejected")
ATTEMPT_STATES = ("sending", "accepted", "rejected", "ambiguous")
ERROR_KINDS = ("rate_limited", "auth_expired", "transient", "permanent", "ambiguous")


class Post(SoftDeleteModel):
    workspace = ForeignKeyField(Workspace, backref="posts", on_delete="CASCADE")
    project = ForeignKeyField(Project, backref="posts", on_delete="RESTRICT")
    author = ForeignKeyField(User, backref="posts", on_delete="RESTRICT")
    body = TextField(default="")
    status = CharField(max_length=24, default="draft", constraints=[one_of("status", POST_STATUSES)])
    scheduled_at = UTCDateTimeField(null=True)
    timezone = CharField(max_length=64, default="UTC")   # the author's zone, for display only
    tags = JSONField(default=list)
    content_hash = CharField(max_length=64, default="")
    approval_channel_id = CharField(max_length=32, null=True)
    approval_message_ts = CharField(max_length=32, null=True)

    class Meta:
        table_name = "posts"
        indexes = ((("workspace", "status", "scheduled_at"), False),)


class PostTarget(BaseModel):
    """One post on one account: its text variant and its delivery state."""

    post = ForeignKeyField(Post, backref="targets", on_delete="CASCADE")
    # Accounts are never deleted while they have targets: the history must stay.
    account = ForeignKeyField(SocialAccount, backref="targets", on_delete="RESTRICT")
    text_override = TextField(null=True)
    options = JSONField(default=dict)                    # TikTok privacy level, first comment, …
    status = CharField(max_length=16, default="pending",
                       constraints=[one_of("status", TARGET_STATUSES)])
    next_attempt_at = UTCDateTimeField(null=True)
    lease_until = UTCDateTimeField(null=True)
    attempts = IntegerField(default=0, constraints=[at_least("attempts", 0)])
    idempotency_key = UUIDField(default=uuid.uuid4, unique=True)
    state = JSONField(default=dict)                      # adapter checkpoints (container ids)
    platform_post_id = CharField(max_length=255, null=True)
    platform_url = TextField(null=True)
    published_at = UTCDateTimeField(null=True)
    last_error = TextField(null=True)

    class Meta:
        table_name = "post_targets"
        indexes = ((("post", "account"), True),)


# The publisher's hot query: "scheduled targets due now", and only those rows are indexed.
PostTarget.add_index(PostTarget.index(PostTarget.next_attempt_at, name="post_targets_due",
                                      where=SQL("\"status\" = 'scheduled'")))
# The sweep's second query: leases that ran out.
PostTarget.add_index(PostTarget.index(PostTarget.lease_until, name="post_targets_leased",
                                      where=SQL("\"status\" = 'publishing'")))


class Media(BaseModel):
    post = ForeignKeyField(Post, backref="media", on_delete="CASCADE")
    position = SmallIntegerField(default=0)
    source = CharField(max_length=16, constraints=[one_of("source", MEDIA_SOURCES)])
    url = TextField(default="")
    slack_file_id = CharField(max_length=32, null=True)
    mime = CharField(max_length=100, default="")
    size = BigIntegerField(null=True)
    width = IntegerField(null=True)
    height = IntegerField(null=True)
    duration = FloatField(null=True)
    sha256 = CharField(max_length=64, null=True)
    alt_text = TextField(default="")

    class Meta:
        table_name = "media"
        indexes = ((("post", "position"), False),)


class Approval(BaseModel):
    post = ForeignKeyField(Post, backref="approvals", on_delete="CASCADE")
    step = SmallIntegerField(default=1)
    approver = ForeignKeyField(User, backref="approvals", on_delete="RESTRICT")
    decision = CharField(max_length=24, constraints=[one_of("decision", DECISIONS)])
    comment = TextField(default="")
    content_hash = CharField(max_length=64)

    class Meta:
        table_name = "approvals"
        # One decision per person per version of the content: a double click can't count twice.
        indexes = ((("post", "step", "approver", "content_hash"), True),)


class PublishAttempt(BaseModel):
    """The write journal: committed in `sending` before any network call."""

    target = ForeignKeyField(PostTarget, backref="attempts_log", on_delete="RESTRICT")
    number = IntegerField(constraints=[at_least("number", 1)])
    idempotency_key = UUIDField()
    state = CharField(max_length=16, default="sending", constraints=[one_of("state", ATTEMPT_STATES)])
    http_status = IntegerField(null=True)
    error_kind = CharField(max_length=16, null=True,
                           constraints=[one_of("error_kind", ERROR_KINDS, null=True)])
    error_code = CharField(max_length=64, null=True)
    error_message = TextField(null=True)
    response_excerpt = TextField(null=True)             # redacted by the platform layer
    started_at = UTCDateTimeField()
    finished_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "publish_attempts"
        indexes = ((("target", "number"), True),)
