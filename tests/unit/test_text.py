"""Cleaning rules of sentiment_assets.lib.data.text on hand-written tweets.

Parity with the SQL implementation (dbt stg_tweets) is checked in tests/dbt.
"""

from __future__ import annotations

import hashlib

import pytest

from sentiment_assets.lib.data.text import clean_text, decode_entities, map_label, text_hash


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("fish &amp; chips", "fish & chips"),
        ("i &lt;3 u &gt;:(", "i <3 u >:("),
        ("&quot;quoted&quot; it&#39;s it&apos;s", "\"quoted\" it's it's"),
        ("&#65;&#0066;&#x43;&#X44;", "ABCD"),
        ("smile &#128512;", "smile \U0001f600"),
        # One pass only: the '&' produced by &amp; does not start a new entity.
        ("&amp;lt;3", "&lt;3"),
        ("&#38;amp;", "&amp;"),
        ("&&amp;", "&&"),
        # Unsupported or malformed entities stay as written.
        ("&nbsp; &copy; &AMP; &amp &#; &#x; &#xZZ;", "&nbsp; &copy; &AMP; &amp &#; &#x; &#xZZ;"),
        # Invalid code points and over-long numbers are not decoded.
        (
            "&#0; &#55296; &#xD800; &#1114112; &#12345678;",
            "&#0; &#55296; &#xD800; &#1114112; &#12345678;",
        ),
    ],
)
def test_html_entities(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("look http://bit.ly/abc123 now", "look http now"),
        ("secure https://example.com/a?b=1&amp;c=2.", "secure http"),
        ("upper HTTP://EXAMPLE.COM and HtTpS://x.y", "upper http and http"),
        ("visit www.example.org/page!", "visit http"),
        ("trailing http://", "trailing http"),
        ("glued:http://t.co/x,", "glued:http"),
        ("xhttp://foo.bar", "xhttp"),
        # Not URLs: no scheme separator, 'www' inside a word, 'www.' without a host.
        ("http is a protocol", "http is a protocol"),
        ("http:/broken", "http:/broken"),
        ("awwww.. so cute", "awwww.. so cute"),
        ("wwww.foo.com", "wwww.foo.com"),
        ("www... what", "www... what"),
        ("ftp://files.example.com", "ftp://files.example.com"),
        # A mention inside a URL belongs to the URL.
        ("http://x.com/@foo bar", "http bar"),
    ],
)
def test_urls(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("@bob hi", "@user hi"),
        ("@Alice_99: thanks @b0b!", "@user: thanks @user!"),
        ("RT @foo_bar: wow", "RT @user: wow"),
        ("(@bob)", "(@user)"),
        ("&#64;bob decoded first", "@user decoded first"),
        # E-mail addresses and lone '@' are not mentions.
        ("mail me at a@b.com", "mail me at a@b.com"),
        ("meet @ 5pm", "meet @ 5pm"),
        ("@@double", "@@user"),
        ("@a@b", "@user@b"),
        # Non-ASCII letters are not word characters for the boundary, as in RE2.
        ("café@bob", "café@user"),
    ],
)
def test_mentions(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  padded   text  ", "padded text"),
        ("tab\tnew\nline\r\nvt\x0bff\x0c", "tab new line vt ff"),
        ("nbsp\xa0em\u2003ideo\u3000nel\x85sep\u2028end", "nbsp em ideo nel sep end"),
        ("decoded&#160;&#160;nbsp&#10;newline", "decoded nbsp newline"),
        # Zero-width space is not whitespace for str.isspace(): kept.
        ("zero\u200bwidth", "zero\u200bwidth"),
        ("", ""),
        (" \t\n ", ""),
        ("&#32;&#9;", ""),
    ],
)
def test_whitespace(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_unicode_and_emoji_are_kept() -> None:
    raw = "so happy \U0001f600\U0001f389 caf\u00e9 \u0645\u0631\u062d\u0628\u0627 e\u0301 \u2764\ufe0f"
    assert clean_text(raw) == raw


def test_all_rules_together() -> None:
    raw = "  @jane_doe I &lt;3 this!!\n\nsee http://tinyurl.com/x &amp; www.foo.com  &#128512; "
    assert clean_text(raw) == "@user I <3 this!! see http & http \U0001f600"


def test_clean_text_is_idempotent_on_typical_tweets() -> None:
    # Cleaning cleaned text again must not change it (no double decoding of plain text).
    for raw in ["@bob &amp; http://x.y  ok", "i &lt;3 &#128512;", "plain text"]:
        once = clean_text(raw)
        assert clean_text(once) == once


def test_decode_entities_fast_path_returns_input() -> None:
    text = "no entities here"
    assert decode_entities(text) is text


def test_text_hash_is_md5_of_utf8() -> None:
    assert text_hash("") == "d41d8cd98f00b204e9800998ecf8427e"
    assert text_hash("hello") == "5d41402abc4b2a76b9719d911017c592"
    assert (
        text_hash("caf\u00e9 \U0001f600")
        == hashlib.md5("caf\u00e9 \U0001f600".encode()).hexdigest()
    )
    assert text_hash("a") != text_hash("a ")


@pytest.mark.parametrize(
    ("label_raw", "expected"),
    [
        ("0", 0),
        ("negative", 0),
        ("1", 1),
        ("4", 1),
        ("positive", 1),
        ("2", None),
        ("neutral", None),
        (None, None),
        # Matching is exact, like the SQL CASE.
        ("Positive", None),
        (" 4", None),
        ("3", None),
    ],
)
def test_map_label(label_raw: str | None, expected: int | None) -> None:
    assert map_label(label_raw) == expected
