"""Training-data augmentation for the fine-tuned transformer.

Sentiment140 was labelled *by* emoticons and then had those emoticons stripped, so a model
trained on it never sees one, while the tweets it serves carry them. The emoticon that
produced a row's label is lost, but its polarity is not: it is the label. Appending one
emoticon of the label's polarity to a seeded share of the training rows gives that signal
back without touching the rest, so the model still has to learn sentiment from the words.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# The emoticons Go, Bhayani & Huang (2009) labelled Sentiment140 with, by polarity.
POSITIVE_EMOTICONS = (":)", ":-)", ": )", ":D", "=)")
NEGATIVE_EMOTICONS = (":(", ":-(", ": (")
_BY_LABEL = {0: NEGATIVE_EMOTICONS, 1: POSITIVE_EMOTICONS}


def restore_emoticons(
    texts: Sequence[str], labels: Sequence[int], rate: float, seed: int
) -> tuple[list[str], int]:
    """Append a label-consistent emoticon to a seeded ``rate`` share of the rows.

    Returns the new texts (input order, same length) and how many rows were changed.
    Deterministic for a given (texts, labels, rate, seed); ``rate`` 0 changes nothing.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"emoticon rate must be in [0, 1], got {rate}")
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    out = list(texts)
    if rate == 0.0 or not out:
        return out, 0
    rng = np.random.default_rng(seed)
    # Drawn for every row, chosen or not, so one row's emoticon does not depend on others.
    chosen = rng.random(len(out)) < rate
    picks = rng.random(len(out))
    for i in np.flatnonzero(chosen):
        label = int(labels[i])
        if label not in _BY_LABEL:
            raise ValueError(f"labels must be 0 or 1, got {label}")
        options = _BY_LABEL[label]
        out[i] = f"{out[i]} {options[int(picks[i] * len(options))]}"
    return out, int(chosen.sum())


def contains_emoticon(text: str) -> bool:
    """True when ``text`` holds one of the labelling emoticons (either polarity)."""
    return any(e in text for e in (*POSITIVE_EMOTICONS, *NEGATIVE_EMOTICONS))
