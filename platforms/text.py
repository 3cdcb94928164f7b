"""How each network counts text. Counting is the networks' rule, not ours: X uses the
twitter-text algorithm (via the maintained twitter-text-parser package), Bluesky counts
grapheme clusters, Threads counts emoji by their UTF-8 bytes, TikTok counts UTF-16 units."""
from __future__ import annotations

import unicodedata

import regex
from twitter_text import parse_tweet

_GRAPHEME = regex.compile(r"\X")
_EMOJI = regex.compile(r"\p{Extended_Pictographic}")


def x_weighted(text: str) -> int:
    """X's weighted length: URLs 23, CJK and emoji 2, Latin 1 (twitter-text v3)."""
    return parse_tweet(text).weightedLength


def graphemes(text: str) -> int:
    """User-perceived characters: a family emoji or a flag counts once."""
    return len(_GRAPHEME.findall(unicodedata.normalize("NFC", text)))


def utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def code_points(text: str) -> int:
    return len(text)


def threads_length(text: str) -> int:
    """Threads: characters, but each emoji counts as its UTF-8 byte length."""
    total = 0
    for cluster in _GRAPHEME.findall(text):
        total += utf8_bytes(cluster) if _EMOJI.search(cluster) else len(cluster)
    return total
