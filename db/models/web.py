"""The admin site's own rows: one-time sign-in links sent by `/social admin`."""
from peewee import CharField, ForeignKeyField

from db.base import BaseModel
from db.fields import UTCDateTimeField
from db.models.tenancy import User, Workspace


class SigninLink(BaseModel):
    """A single-use link. Only the SHA-256 of the token is stored; the token itself lives
    in the Slack message that carried it and nowhere else."""

    workspace = ForeignKeyField(Workspace, backref="signin_links", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="signin_links", on_delete="CASCADE")
    token_hash = CharField(max_length=64, unique=True)
    expires_at = UTCDateTimeField()
    used_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "signin_links"

    def __repr__(self) -> str:
        return f"<SigninLink user={self.user_id} expires_at={self.expires_at} used_at={self.used_at}>"
