"""Token encryption keys (TOKEN_KEYS) and their rotation.

The first key encrypts; every key decrypts. To rotate: put a new key first in TOKEN_KEYS
everywhere, deploy, run `flask --app web tokens rotate`, then drop the old key.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from db import database, is_postgres
from db.fields import EncryptedTextField, configure_keyring

log = logging.getLogger(__name__)


def configure(token_keys: tuple[str, ...] | list[str]) -> MultiFernet:
    if not token_keys:
        raise ValueError("TOKEN_KEYS is empty")
    ring = MultiFernet([Fernet(k) for k in token_keys])
    configure_keyring(ring)
    return ring


def encrypted_columns(models) -> list[tuple[type, list[EncryptedTextField]]]:
    found = []
    for model in models:
        fields = [f for f in model._meta.sorted_fields if isinstance(f, EncryptedTextField)]
        if fields:
            found.append((model, fields))
    return found


@dataclass
class RotationReport:
    rotated: int = 0
    current: int = 0
    failed: list[str] = field(default_factory=list)   # "table.column id" that no key decrypts

    def __str__(self) -> str:
        text = f"{self.rotated} re-encrypted, {self.current} already under the first key"
        if self.failed:
            text += f", {len(self.failed)} unreadable with TOKEN_KEYS: " + ", ".join(self.failed[:10])
        return text


def rotate_all(token_keys, models=None, batch_size: int = 500) -> RotationReport:
    """Re-encrypt every stored secret under the first key, a batch per transaction.

    Works on the raw ciphertext (never through the fields, which would decrypt and
    re-encrypt with a fresh timestamp); rows already under the first key are left alone, so
    re-running after an interruption only finishes the remainder.
    """
    if models is None:
        from db.models import ALL_MODELS
        models = ALL_MODELS
    primary = Fernet(token_keys[0])
    ring = MultiFernet([Fernet(k) for k in token_keys])
    report = RotationReport()
    db = database
    p = db.param
    lock = " FOR UPDATE" if is_postgres(db) else ""
    for model, fields in encrypted_columns(models):
        table = model._meta.table_name
        columns = ", ".join(f'"{f.column_name}"' for f in fields)
        last = None
        while True:
            with db.atomic():
                where = f'WHERE "id" > {p} ' if last is not None else ""
                rows = db.execute_sql(
                    f'SELECT "id", {columns} FROM "{table}" {where}ORDER BY "id" LIMIT {batch_size}{lock}',
                    (last,) if last is not None else ()).fetchall()
                for row in rows:
                    row_id, values = row[0], row[1:]
                    for f, value in zip(fields, values):
                        if value is None:
                            continue
                        token = value.encode("ascii")
                        try:
                            primary.decrypt(token)
                            report.current += 1
                            continue
                        except InvalidToken:
                            pass
                        try:
                            rotated = ring.rotate(token).decode("ascii")
                        except InvalidToken:
                            report.failed.append(f"{table}.{f.column_name} {row_id}")
                            continue
                        db.execute_sql(f'UPDATE "{table}" SET "{f.column_name}" = {p} WHERE "id" = {p}',
                                       (rotated, row_id))
                        report.rotated += 1
            if len(rows) < batch_size:
                break
            last = rows[-1][0]
        log.info("tokens rotate: %s done", table)
    return report
