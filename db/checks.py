"""CHECK constraints built from the same tuples the code uses, so the two can't disagree."""
from peewee import Check


def one_of(column: str, values: tuple[str, ...], null: bool = False):
    allowed = ", ".join("'%s'" % v for v in values)
    clause = f'"{column}" IN ({allowed})'
    return Check(f'"{column}" IS NULL OR {clause}' if null else clause)


def at_least(column: str, minimum: int):
    return Check(f'"{column}" >= {minimum}')
