"""Validation: each record accepted for its month or rejected with its reason."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pandas as pd

from sentiment_assets.lib.data.sources.records import _Records, normalise_label, parse_created_at

# --- validation -------------------------------------------------------------------------------


def _validate(records: _Records, max_text_chars: int, source: str) -> pd.DataFrame:
    """One row per record: parsed fields, month (None if undated) and reason (None if accepted).

    ``date_out_of_range`` is not decided here (the window is the caller's, the parse is
    cached); it comes right after ``unparseable_date`` in the order of checks.
    """
    created = parse_created_at(records.created_at)
    # Structurally broken rows are not trusted for their date either.
    structural = [r is not None for r in records.pre_reason]
    created[structural] = pd.NaT
    is_nat = created.isna().to_list()

    reasons: list[str | None] = []
    labels: list[str | None] = []
    for i, pre in enumerate(records.pre_reason):
        label = normalise_label(records.label[i])
        labels.append(label)
        if pre is not None:
            reasons.append(pre)
            continue
        raw_date, text, raw_label = records.created_at[i], records.text[i], records.label[i]
        # First failing check wins, in the contract's order.
        if raw_date is None or not raw_date.strip():
            reasons.append("missing_date")
        elif is_nat[i]:
            reasons.append("unparseable_date")
        elif records.bad_text[i]:
            reasons.append("bad_text_type")
        elif text is None or not text.strip():
            reasons.append("empty_text")
        elif label is None and (records.label_required or (raw_label or "").strip()):
            reasons.append("bad_label")
        elif len(text) > max_text_chars:
            reasons.append("text_too_long")
        else:
            reasons.append(None)

    month_start = created.to_numpy(dtype="datetime64[ns]").astype("datetime64[M]")
    tweet_ids = [
        tid.strip() if tid and tid.strip() else _content_id(text, when)
        for tid, text, when in zip(records.tweet_id, records.text, records.created_at, strict=True)
    ]
    users = [(u.strip() or None) if u is not None else None for u in records.user_name]
    return pd.DataFrame(
        {
            "tweet_id": pd.Series(tweet_ids, dtype=object),
            "created_at": created,
            # datetime64[M] -> object gives datetime.date (first of month) and None for NaT.
            "month": pd.Series(month_start.astype(object), dtype=object),
            "text": pd.Series(records.text, dtype=object),
            "label_raw": pd.Series(labels, dtype=object),
            "user_name": pd.Series(users, dtype=object),
            "source": source,
            "source_row": pd.Series(records.source_row, dtype="int64"),
            # CSV rows stay field lists here; only rejected ones are rendered (in _split).
            "raw": pd.Series(records.raw, dtype=object),
            "reason": pd.Series(reasons, dtype=object),
        }
    )


def _content_id(text: str | None, created_at: str | None) -> str:
    # Stable across runs and machines (unlike hash()), so re-ingesting yields the same ids.
    key = f"{text or ''}\x1f{(created_at or '').strip()}".encode("utf-8", "surrogateescape")
    return "h" + hashlib.sha1(key).hexdigest()[:16]


def _raw_record(raw: Any, names: tuple[str, ...]) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        raw = dict(zip(names, raw, strict=False))
    return json.dumps(raw, ensure_ascii=False, default=str)
