"""Which rows a model may learn from: the platform's hash holdout and label-stratified caps.

The holdout depends on the tweet id alone, so every model, window and seed agrees on it; the
quotas keep a capped sample's label shares (a million-tweet month is cut before any vector
is read)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Share of tweets (chosen by id hash) that no model trains on: validation, the promotion
# comparison and the drift reference's out-of-sample scores all use these rows.
HOLDOUT_FRACTION = 0.2


def holdout_mask(tweet_ids: Sequence[str], fraction: float) -> np.ndarray:
    """Rows held out of every model's training, chosen by a hash of the tweet id.

    The choice depends on the tweet alone, not on the window or the seed, so a challenger and
    the champion it is compared with have both never seen these rows, whatever months each
    was trained on.
    """
    cutoff = round(fraction * 10_000)
    return np.fromiter(
        (int(hashlib.md5(t.encode()).hexdigest()[:8], 16) % 10_000 < cutoff for t in tweet_ids),
        dtype=bool,
        count=len(tweet_ids),
    )


def in_holdout(tweet_ids: Sequence[str]) -> np.ndarray:
    """The platform's holdout: HOLDOUT_FRACTION of the tweets, the same ones everywhere."""
    return holdout_mask(tweet_ids, HOLDOUT_FRACTION)


def stratified_quotas(counts: Mapping[Any, int], cap: int) -> dict[Any, int]:
    """Rows to keep per label so that at most ``cap`` rows keep the labels' shares.

    Each label gets the floor of its share and the rows left over go to the largest
    remainders (ties by label order), so the quotas sum to exactly min(cap, total) and a label
    with any rows keeps at least one when the cap allows.
    """
    if cap < 1:
        raise ValueError("cap must be >= 1")
    total = sum(counts.values())
    if total <= cap:
        return dict(counts)
    labels = sorted(counts, key=str)
    exact = {label: cap * counts[label] / total for label in labels}
    quotas = {label: int(exact[label]) for label in labels}
    left = cap - sum(quotas.values())
    by_remainder = sorted(labels, key=lambda label: -(exact[label] - quotas[label]))
    for label in by_remainder[:left]:
        quotas[label] += 1
    for label in labels:
        if counts[label] and not quotas[label]:
            donor = max(labels, key=lambda other: quotas[other])
            if quotas[donor] > 1:
                quotas[donor] -= 1
                quotas[label] = 1
    return quotas
