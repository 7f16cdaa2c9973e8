"""Tweet text normalisation, the Python twin of the dbt model ``stg_tweets``.

The model is trained on text cleaned by SQL (dbt_project/macros/text_cleaning.sql) but
served on text cleaned here, so the two must agree byte for byte; tests/dbt checks that
on tricky strings. Every pattern below is therefore written to mean the same thing in
Python's ``re`` and in RE2 (DuckDB's regex engine): explicit character classes instead
of ``\\s``/``\\w`` (whose meaning differs between the engines), ``re.ASCII`` where ``\\b``
is used, no case-insensitive flags (their Unicode case folding differs too).

Cleaning, in this order:
1. decode HTML entities in one left-to-right pass (``&amp;lt;`` becomes ``&lt;``, not
   ``<``): ``&amp; &lt; &gt; &quot; &apos;`` and numeric ``&#NNN;`` / ``&#xHH;`` when
   they name a valid code point (otherwise the entity is left as written);
2. replace URLs (``http://``, ``https://``, ``www.``) by the token ``http``;
3. replace ``@mentions`` by ``@user``;
4. collapse runs of whitespace (the characters ``str.isspace`` accepts) to one space;
5. trim spaces at both ends.
"""

from __future__ import annotations

import hashlib
import re

# Named entities that Sentiment140 actually contains escaped; anything else stays as is.
_NAMED_ENTITIES: dict[str, str] = {
    "amp": "&",
    "lt": "<",
    "gt": ">",
    "quot": '"',
    "apos": "'",
}
# Digit limits keep the value inside a 32-bit integer on the SQL side.
_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,7})|#[xX]([0-9A-Fa-f]{1,6})|(amp|lt|gt|quot|apos));")

# Exactly the code points for which str.isspace() is true (Python 3.11); spelled out so
# the RE2 class in the SQL macro can list the same set.
_WS_CLASS = "\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_WS_RE = re.compile(f"[{_WS_CLASS}]+")

# Scheme URLs need no word boundary ("://" is signal enough); "www." does, so that
# "awww.." stays a word. The body runs to the next whitespace.
_URL_RE = re.compile(
    f"[Hh][Tt][Tt][Pp][Ss]?://[^{_WS_CLASS}]*|\\b[Ww][Ww][Ww]\\.[A-Za-z0-9][^{_WS_CLASS}]*",
    re.ASCII,
)
# "\B@" = the "@" does not follow a word character, so e-mail addresses are kept.
_MENTION_RE = re.compile(r"\B@[A-Za-z0-9_]+", re.ASCII)

_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def _decode_entity(match: re.Match[str]) -> str:
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        return _NAMED_ENTITIES[name]
    code_point = int(decimal) if decimal is not None else int(hexadecimal, 16)
    # Invalid code points (0, surrogates, > U+10FFFF) cannot be encoded as UTF-8, which
    # DuckDB's chr() rejects; keeping the entity literally is the one safe choice.
    if 1 <= code_point <= _MAX_CODE_POINT and code_point not in _SURROGATES:
        return chr(code_point)
    return match.group(0)


def decode_entities(text: str) -> str:
    """Decode the supported HTML entities in a single pass (see the module docstring)."""
    if "&" not in text:
        return text
    return _ENTITY_RE.sub(_decode_entity, text)


def clean_text(text: str) -> str:
    """Normalise a tweet exactly as dbt's ``stg_tweets.text`` does."""
    cleaned = decode_entities(text)
    cleaned = _URL_RE.sub("http", cleaned)
    cleaned = _MENTION_RE.sub("@user", cleaned)
    cleaned = _WS_RE.sub(" ", cleaned)
    # Only spaces can remain at the ends after the collapse, as with DuckDB's trim().
    return cleaned.strip(" ")


def text_hash(cleaned: str) -> str:
    """MD5 hex digest of the UTF-8 bytes, equal to DuckDB's ``md5(cleaned)``.

    Used as a cache key (embeddings) and for duplicate detection, not for security.
    """
    return hashlib.md5(cleaned.encode("utf-8"), usedforsecurity=False).hexdigest()


# Contract values of raw.tweets.label_raw; '2'/'neutral' are kept as unlabelled rows.
_LABELS: dict[str, int | None] = {
    "0": 0,
    "negative": 0,
    "1": 1,
    "4": 1,
    "positive": 1,
    "2": None,
    "neutral": None,
}


def map_label(label_raw: str | None) -> int | None:
    """Map a raw label to 0 (negative), 1 (positive) or None (neutral or unlabelled).

    Matching is exact, like the SQL CASE in ``stg_tweets``; values outside the contract
    also give None (ingestion rejects them before they get here).
    """
    if label_raw is None:
        return None
    return _LABELS.get(label_raw)
