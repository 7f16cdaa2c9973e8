"""What the synthetic source generates: its months, each month's drift knobs, the overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from sentiment_assets.lib.core.months import add_months, month_start, months_between


@dataclass(frozen=True)
class MonthDrift:
    """Drift knobs for one month; the defaults describe an undrifted month."""

    positive_rate: float = 0.5
    topic_shift: float = 0.0
    concept_drift: float = 0.0

    def __post_init__(self) -> None:
        for name in ("positive_rate", "topic_shift", "concept_drift"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"MonthDrift.{name} must be within [0, 1], got {value!r}")


NO_DRIFT = MonthDrift()
STRONG_DRIFT = MonthDrift(positive_rate=0.25, topic_shift=0.6, concept_drift=0.5)
DEFAULT_DRIFT_MONTH = 4


def _default_drift() -> dict[int, MonthDrift]:
    return {DEFAULT_DRIFT_MONTH: STRONG_DRIFT}


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. ``drift`` maps a month index (0 = start_month) to its knobs."""

    seed: int = 7
    start_month: date = date(2024, 1, 1)
    n_months: int = 6
    tweets_per_month: int = 1500
    bad_row_rate: float = 0.01
    drift: Mapping[int, MonthDrift] = field(default_factory=_default_drift)

    def __post_init__(self) -> None:
        # Partitions are keyed by the first day of the month, so normalise once here.
        object.__setattr__(self, "start_month", month_start(self.start_month))
        if self.n_months < 0:
            raise ValueError("n_months must be >= 0")
        if self.tweets_per_month < 0:
            raise ValueError("tweets_per_month must be >= 0")
        if not 0.0 <= self.bad_row_rate <= 1.0:
            raise ValueError("bad_row_rate must be within [0, 1]")

    def drift_for(self, month: date) -> MonthDrift:
        """Knobs for a calendar month; months outside the mapping (or the range) are undrifted."""
        return self.drift.get(month_index(self, month), NO_DRIFT)


def default_config() -> SyntheticConfig:
    return SyntheticConfig()


def month_index(config: SyntheticConfig, month: date) -> int:
    """Months since config.start_month (negative before it)."""
    return months_between(config.start_month, month)


def months(config: SyntheticConfig) -> list[date]:
    return [add_months(config.start_month, i) for i in range(config.n_months)]


def config_from_env(env: Mapping[str, str]) -> SyntheticConfig:
    """Build a config from SENTIMENT_SYNTHETIC_* variables; unset or empty ones keep defaults."""
    base = SyntheticConfig()

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    seed = get("SENTIMENT_SYNTHETIC_SEED")
    n_months = get("SENTIMENT_SYNTHETIC_MONTHS")
    per_month = get("SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH")
    start = get("SENTIMENT_SYNTHETIC_START")
    drift_month = get("SENTIMENT_SYNTHETIC_DRIFT_MONTH")
    drift: Mapping[int, MonthDrift] = base.drift
    if drift_month is not None:
        index = int(drift_month)
        drift = {} if index < 0 else {index: STRONG_DRIFT}
    return SyntheticConfig(
        seed=int(seed) if seed is not None else base.seed,
        start_month=date.fromisoformat(start) if start is not None else base.start_month,
        n_months=int(n_months) if n_months is not None else base.n_months,
        tweets_per_month=int(per_month) if per_month is not None else base.tweets_per_month,
        bad_row_rate=base.bad_row_rate,
        drift=drift,
    )
