"""Metrics over time, per account and per published target."""
from peewee import BigIntegerField, CharField, DateField, FloatField, ForeignKeyField, \
    IntegerField, JSONField

from db.base import BaseModel
from db.fields import UTCDateTimeField
from db.models.accounts import SocialAccount
from db.models.content import PostTarget


class MetricsSnapshot(BaseModel):
    account = ForeignKeyField(SocialAccount, backref="snapshots", on_delete="CASCADE")
    taken_at = UTCDateTimeField()
    # NULL means the network doesn't offer the metric (never 0 for "unknown").
    followers = BigIntegerField(null=True)
    following = BigIntegerField(null=True)
    posts = BigIntegerField(null=True)
    reach = BigIntegerField(null=True)
    impressions = BigIntegerField(null=True)
    engagement = BigIntegerField(null=True)
    profile_views = BigIntegerField(null=True)
    extra = JSONField(default=dict)

    class Meta:
        table_name = "metrics_snapshots"
        indexes = ((("account", "taken_at"), False),)


class AccountDaily(BaseModel):
    account = ForeignKeyField(SocialAccount, backref="daily", on_delete="CASCADE")
    date = DateField()
    followers = BigIntegerField(null=True)
    growth = BigIntegerField(null=True)
    engagement_rate = FloatField(null=True)

    class Meta:
        table_name = "account_daily"
        indexes = ((("account", "date"), True),)


class PostMetrics(BaseModel):
    target = ForeignKeyField(PostTarget, backref="metrics", on_delete="CASCADE")
    taken_at = UTCDateTimeField()
    likes = BigIntegerField(null=True)
    comments = BigIntegerField(null=True)
    shares = BigIntegerField(null=True)
    saves = BigIntegerField(null=True)
    views = BigIntegerField(null=True)
    impressions = BigIntegerField(null=True)
    reach = BigIntegerField(null=True)
    extra = JSONField(default=dict)

    class Meta:
        table_name = "post_metrics"
        indexes = ((("target", "taken_at"), False),)


class AudienceInsight(BaseModel):
    account = ForeignKeyField(SocialAccount, backref="audience", on_delete="CASCADE")
    taken_at = UTCDateTimeField()
    dimension = CharField(max_length=32)                 # country, city, age, gender, …
    breakdown = JSONField(default=dict)

    class Meta:
        table_name = "audience_insights"
        indexes = ((("account", "dimension", "taken_at"), False),)


class FollowerChange(BaseModel):
    account = ForeignKeyField(SocialAccount, backref="follower_changes", on_delete="CASCADE")
    date = DateField()
    gained = IntegerField(default=0)
    lost = IntegerField(default=0)

    class Meta:
        table_name = "follower_changes"
        indexes = ((("account", "date"), True),)
