"""The promotion rule: when a challenger may replace the champion."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

PROMOTED = "promoted"
REJECTED = "rejected"
KEPT = "kept"
ROLLBACK = "rollback"


@dataclass(frozen=True)
class Decision:
    decision: str
    reason: str

    @property
    def passes(self) -> bool:
        return self.decision != REJECTED


def decide(
    challenger_version: str,
    challenger_score: float,
    champion_version: str | None,
    champion_score: float | None,
    margin: float,
) -> Decision:
    """Both scores come from the same evaluation rows; `margin` is how much worse is tolerated.

    A margin of 0 means the challenger must be at least as good. The first model has nothing
    to beat and becomes champion.
    """
    if margin < 0:
        raise ValueError("margin must be >= 0")
    if champion_version is None or champion_score is None:
        return Decision(PROMOTED, "no champion yet: the first model becomes champion")
    if champion_version == challenger_version:
        return Decision(KEPT, "the challenger already is the champion")
    gap = challenger_score - champion_score
    if gap < -margin:
        return Decision(
            REJECTED,
            f"challenger {challenger_score:.4f} is worse than champion {champion_score:.4f} "
            f"by {-gap:.4f}, more than the margin {margin:.4f}",
        )
    return Decision(
        PROMOTED,
        f"challenger {challenger_score:.4f} vs champion {champion_score:.4f} "
        f"(difference {gap:+.4f}, margin {margin:.4f})",
    )


def promotion_row(**values: object) -> pd.DataFrame:
    """One metrics.promotions row (columns by name; the ones not given stay NULL)."""
    return pd.DataFrame([{**values, "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None)}])
