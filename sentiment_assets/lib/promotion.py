"""The promotion rule: when a challenger may replace the champion."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sentiment_assets.lib.behaviour import SuiteResult

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
    behaviour_veto: str | None = None,
) -> Decision:
    """Both scores come from the same evaluation rows; `margin` is how much worse is tolerated.

    A margin of 0 means the challenger must be at least as good. The first model has nothing
    to beat and becomes champion. `behaviour_veto` (see `behaviour_veto`) rejects a
    challenger whatever its score.
    """
    if margin < 0:
        raise ValueError("margin must be >= 0")
    if champion_version is None or champion_score is None:
        return Decision(PROMOTED, "no champion yet: the first model becomes champion")
    if champion_version == challenger_version:
        return Decision(KEPT, "the challenger already is the champion")
    if behaviour_veto:
        return Decision(REJECTED, behaviour_veto)
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


def behaviour_veto(
    challenger: SuiteResult, champion: SuiteResult | None, min_pass_rate: float
) -> str | None:
    """Why a challenger below the minimum-functionality floor may not replace the champion.

    Only a champion that clears the floor itself is protected: a champion that misreads
    plain tweets too must stay replaceable by a better-scoring model.
    """
    if challenger.passes(min_pass_rate) or champion is None or not champion.passes(min_pass_rate):
        return None
    return (
        f"challenger misreads plain tweets: {challenger.summary()}, below the floor of "
        f"{min_pass_rate:.0%}; the champion gets {champion.correct}/{champion.total} right"
    )


def promotion_row(**values: object) -> pd.DataFrame:
    """One metrics.promotions row (columns by name; the ones not given stay NULL)."""
    return pd.DataFrame([{**values, "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None)}])
