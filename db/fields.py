"""Column types Herald relies on for correctness.

- UTCDateTimeField: every instant is an aware UTC datetime. TIMESTAMPTZ on Postgres; on
  SQLite a fixed-width UTC text form, so that string order is time order in WHERE clauses.
  Naive datetimes are refused rather than silently guessed.
- EncryptedTextField: tokens at rest, MultiFernet over TOKEN_KEYS. Values come back as
  `Secret`, which never prints its content and refuses to be pickled (so it can't end up in
  a Huey task payload).
"""
from __future__ import annotations

import hmac
from datetime import datetime, timezone

from cryptography.fernet import InvalidToken, MultiFernet
from peewee import Field, SqliteDatabase, TextField

_SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f+00:00"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _on_sqlite(field: Field) -> bool:
    db = field.model._meta.database
    return isinstance(getattr(db, "obj", db), SqliteDatabase)


class UTCDateTimeField(Field):
    field_type = "TIMESTAMPTZ"

    def db_value(self, value):
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"{self.name} takes a datetime, not {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{self.name} got a naive datetime; Herald stores aware UTC instants")
        value = value.astimezone(timezone.utc)
        return value.strftime(_SQLITE_FORMAT) if _on_sqlite(self) else value

    def python_value(self, value):
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:  # only reachable for rows written outside Herald
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# --------------------------------------------------------------------------------------
# Secrets

class TokenKeyError(Exception):
    """A stored secret can't be decrypted with any key in TOKEN_KEYS."""


class Secret:
    """A decrypted token. `reveal()` is the only way to the text."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other) -> bool:
        other = other.reveal() if isinstance(other, Secret) else other
        return isinstance(other, str) and hmac.compare_digest(self._value.encode(), other.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):
        raise TypeError("a Secret can't be pickled; pass the row's id instead")


class _Keyring:
    """The process-wide MultiFernet; core.crypto configures it from TOKEN_KEYS."""

    ring: MultiFernet | None = None


keyring = _Keyring()


def configure_keyring(ring: MultiFernet) -> None:
    keyring.ring = ring


def _ring() -> MultiFernet:
    if keyring.ring is None:
        raise TokenKeyError("No token keys configured (core.crypto.configure was not called).")
    return keyring.ring


class EncryptedTextField(TextField):
    """TEXT holding a Fernet token. No equality queries: every encryption differs."""

    def db_value(self, value):
        if value is None:
            return None
        plain = value.reveal() if isinstance(value, Secret) else value
        if not isinstance(plain, str):
            raise TypeError(f"{self.name} takes text")
        return _ring().encrypt(plain.encode("utf-8")).decode("ascii")

    def python_value(self, value):
        if value is None:
            return None
        try:
            return Secret(_ring().decrypt(value.encode("ascii")).decode("utf-8"))
        except InvalidToken:
            raise TokenKeyError(
                f"Can't decrypt {self.model._meta.table_name}.{self.column_name}: it was encrypted "
                "with a key that is not in TOKEN_KEYS. Put the old key back in TOKEN_KEYS (after "
                "the new one) and run `flask --app web tokens rotate`.") from None
