"""Whether a month trains: the retraining policy, a pure function of recorded inputs.

Every month gets one decision, train or keep, whatever the policy. The inputs are what the
month's monitoring already measured (the drift report's statistics, the champion's accuracy
realised on the month's labels or estimated without them, its age) plus the month's
labelled rows and when it was last trained; the output is a frozen record that says why, and
is a row of `metrics.training_decisions` so a month that was not trained reads as a
decision, never as a missing model.

Policies (lib/settings.py RETRAIN_POLICIES):
- `always`: train every month on the default window (the behaviour before the policy);
- `on_drift`: train on content drift (see `content_drift`: the tweets talk about something
  else), on an accuracy drop beyond a threshold (realised when the month has
  labels, else estimated), or when the champion is older than a maximum age;
- `never`: keep the first champion (the control).
Under every policy a month with no champion trains, and one with too few labelled rows
keeps: there is nothing to serve in the first case and nothing to learn from in the second.

A shift of the class balance alone is not content drift: it is answered by re-estimating the
prior (lib/stats/prior_shift.py) and retrains only when the accuracy it costs crosses the
threshold. Sentiment is part of what sentence embeddings encode, so a change of the balance
alone moves the mean embedding too (bench/bench_policy.py: the synthetic prior-only month
flags both embedding tests); `content_drift` therefore asks for new vocabulary as well when
the balance moved, and a model retrained on that one month would only learn its skew.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from sentiment_assets.lib.core.clock import utc_now
from sentiment_assets.lib.core.months import add_months, months_between
from sentiment_assets.lib.models.families import family_names
from sentiment_assets.lib.models.training import DEFAULT_WINDOW_MONTHS
from sentiment_assets.lib.settings import (
    DEFAULT_MAX_CHAMPION_AGE_MONTHS,
    DEFAULT_MIN_LABELLED_ROWS,
    DEFAULT_RETRAIN_ACCURACY_DROP,
    DEFAULT_RETRAIN_COOLDOWN_SECONDS,
    DEFAULT_RETRAIN_WINDOW_MONTHS,
    RETRAIN_ALWAYS,
    RETRAIN_NEVER,
    RETRAIN_ON_DRIFT,
    RETRAIN_POLICIES,
    Settings,
)
from sentiment_assets.lib.stats.drift import (
    COMBINED,
    PERFORMANCE_DROP,
    VOCABULARY_OOV,
    registered,
)
from sentiment_assets.lib.stats.prior_shift import CONTENT_STATISTICS, PRIOR_STATISTICS
from sentiment_assets.lib.versions.publish import HistoryRows, record_history

TRAIN = "train"
KEEP = "keep"
TABLE = "metrics.training_decisions"


def error_statistics() -> set[str]:
    """The registered statistics whose verdict can trigger a retrain (severity "error")."""
    return {stat.name for stat in registered() if stat.severity == "error"}


@dataclass(frozen=True)
class PolicyThresholds:
    """The policy's knobs; `from_settings` reads them from SENTIMENT_* variables."""

    accuracy_drop: float = DEFAULT_RETRAIN_ACCURACY_DROP
    max_age_months: int = DEFAULT_MAX_CHAMPION_AGE_MONTHS
    min_labelled_rows: int = DEFAULT_MIN_LABELLED_ROWS
    cooldown_seconds: float = DEFAULT_RETRAIN_COOLDOWN_SECONDS
    # The window of a month trained because the world moved (drift, a drop): the months
    # before it describe a world that has just changed. An old champion on quiet data is
    # retrained on the default, wider window.
    drift_window_months: int = DEFAULT_RETRAIN_WINDOW_MONTHS
    window_months: int = DEFAULT_WINDOW_MONTHS

    def __post_init__(self) -> None:
        if not 0.0 <= self.accuracy_drop < 1.0:
            raise ValueError(f"accuracy_drop must be within [0, 1), got {self.accuracy_drop}")
        if self.max_age_months < 1 or self.drift_window_months < 1 or self.window_months < 1:
            raise ValueError("max_age_months and the windows must be >= 1 month")
        if self.min_labelled_rows < 0 or self.cooldown_seconds < 0:
            raise ValueError("min_labelled_rows and cooldown_seconds must be >= 0")

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicyThresholds:
        return cls(
            accuracy_drop=settings.retrain_accuracy_drop,
            max_age_months=settings.max_champion_age_months,
            min_labelled_rows=settings.min_labelled_rows,
            cooldown_seconds=settings.retrain_cooldown_seconds,
            drift_window_months=settings.retrain_window_months,
        )


@dataclass(frozen=True)
class StatisticMove:
    """One drift statistic of the month's report: how far it moved against its threshold."""

    statistic: str
    value: float
    threshold: float
    drifted: bool | None

    @property
    def is_embedding_drift(self) -> bool:
        """An error-severity content statistic (the embedding tests) beyond its threshold."""
        return (
            bool(self.drifted)
            and self.statistic in CONTENT_STATISTICS
            and self.statistic in error_statistics()
        )

    def describe(self) -> str:
        return f"{self.statistic} {self.value:.4g} beyond {self.threshold:.4g}"


def statistic_moves(drift_rows: Iterable[Mapping[str, object]]) -> tuple[StatisticMove, ...]:
    """The statistics of a drift report, from rows shaped like metrics.drift_reports (or
    StatResult.as_dict()); the combined verdict is left out, it only counts the others."""
    moves = []
    for row in drift_rows:
        if row["statistic"] == COMBINED:
            continue
        drifted = row.get("drifted")
        moves.append(
            StatisticMove(
                str(row["statistic"]),
                _number(row.get("value")),
                _number(row.get("threshold")),
                None if drifted is None or pd.isna(drifted) else bool(drifted),
            )
        )
    return tuple(sorted(moves, key=lambda move: move.statistic))


def report_accuracies(
    drift_rows: Iterable[Mapping[str, object]],
) -> tuple[float | None, float | None]:
    """(reference, realised) accuracy of the champion from the report's performance_drop
    row (its detail, a dict or the JSON string metrics.drift_reports stores); Nones where
    the check could not run (no labels, too few rows)."""
    for row in drift_rows:
        if row["statistic"] != PERFORMANCE_DROP:
            continue
        detail = row.get("detail") or {}
        if isinstance(detail, str):
            detail = json.loads(detail)
        reference = detail.get("accuracy_reference")  # type: ignore[union-attr]
        realised = detail.get("accuracy_current")  # type: ignore[union-attr]
        return (
            None if reference is None else float(reference),
            None if realised is None else float(realised),
        )
    return None, None


def content_drift(moves: Iterable[StatisticMove]) -> list[StatisticMove]:
    """The statistics that show the tweets' content moved: the embedding tests, and, when the
    class balance moved as well, only together with new vocabulary (a balance shift alone
    moves the embeddings and leaves the words)."""
    moves = list(moves)
    drifted = {move.statistic for move in moves if move.drifted}
    embedding = [move for move in moves if move.is_embedding_drift]
    if drifted & set(PRIOR_STATISTICS) and VOCABULARY_OOV not in drifted:
        return []
    new_words = [move for move in moves if move.statistic == VOCABULARY_OOV and move.drifted]
    return [*embedding, *new_words] if embedding else []


def _number(value: object) -> float:
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DecisionInputs:
    """Everything a decision reads, recorded beside it (a decision is reproducible from
    its row). Accuracies are shares in [0, 1]; None where not measured."""

    month: date
    labelled_rows: int
    statistics: tuple[StatisticMove, ...] = ()
    champion_version: str | None = None
    champion_trained_through: date | None = None
    # The champion's accuracy on its own holdout rows: what a drop is measured from.
    reference_accuracy: float | None = None
    # On the month's labels, when they exist; else the label-free estimate.
    realised_accuracy: float | None = None
    estimated_accuracy: float | None = None
    # Seconds since this month last trained; None when it never did.
    seconds_since_trained: float | None = None

    @property
    def champion_age_months(self) -> int | None:
        if self.champion_trained_through is None:
            return None
        return months_between(self.champion_trained_through, self.month)

    @property
    def accuracy_drop(self) -> tuple[str, float] | None:
        """(which accuracy, reference minus it): realised when labels exist, else estimated."""
        if self.reference_accuracy is None:
            return None
        for kind, accuracy in (
            ("realised", self.realised_accuracy),
            ("estimated", self.estimated_accuracy),
        ):
            if accuracy is not None:
                # Rounded so a drop equal to the threshold compares as equal, not as
                # 0.04999999 or 0.05000001 depending on the floats it came from.
                return kind, round(self.reference_accuracy - accuracy, 9)
        return None


@dataclass(frozen=True)
class TrainingDecision:
    """One month's decision: a row of metrics.training_decisions."""

    month: date
    policy: str
    decision: str
    reasons: tuple[str, ...]
    inputs: DecisionInputs
    # Trained first, served within minutes; then the follow-up family in a run of its own.
    families: tuple[str, ...] = ()
    follow_up_families: tuple[str, ...] = ()
    window_months: int | None = None
    thresholds: PolicyThresholds = field(default_factory=PolicyThresholds)

    @property
    def trains(self) -> bool:
        return self.decision == TRAIN

    @property
    def window_start(self) -> date | None:
        if self.window_months is None:
            return None
        return add_months(self.month, 1 - self.window_months)

    @property
    def key(self) -> str:
        """Stable for the same inputs and outcome: a run key that requests the training at
        most once per decision, and a new one when the month's inputs change."""
        payload = json.dumps(
            [self.decision, asdict(self.inputs), asdict(self.thresholds), self.window_months],
            sort_keys=True,
            default=str,
        )
        digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
        return f"{self.decision}-{self.month:%Y-%m}-{self.policy}-{digest}"

    def row(self) -> dict[str, object]:
        inputs = self.inputs
        return {
            "month": self.month,
            "policy": self.policy,
            "decision": self.decision,
            "reasons": "; ".join(self.reasons),
            "families": ",".join(self.families),
            "follow_up_families": ",".join(self.follow_up_families),
            "window_start": self.window_start,
            "window_months": self.window_months,
            "drifted_statistics": ",".join(m.statistic for m in inputs.statistics if m.drifted),
            "statistics": json.dumps(
                [asdict(m) for m in inputs.statistics], allow_nan=True, sort_keys=True
            ),
            "reference_accuracy": inputs.reference_accuracy,
            "realised_accuracy": inputs.realised_accuracy,
            "estimated_accuracy": inputs.estimated_accuracy,
            "champion_version": inputs.champion_version,
            "champion_age_months": inputs.champion_age_months,
            "labelled_rows": inputs.labelled_rows,
            "thresholds": json.dumps(asdict(self.thresholds), sort_keys=True),
            "decision_key": self.key,
        }


def decide_training(
    inputs: DecisionInputs, policy: str, thresholds: PolicyThresholds | None = None
) -> TrainingDecision:
    """The month's decision under `policy` (see the module docstring for the rules)."""
    if policy not in RETRAIN_POLICIES:
        raise ValueError(f"unknown retrain policy {policy!r}: expected one of {RETRAIN_POLICIES}")
    th = thresholds or PolicyThresholds()
    if inputs.champion_version is None:
        return _train(inputs, policy, th, ("no champion yet: the first model is trained",))
    if inputs.labelled_rows < th.min_labelled_rows:
        return _keep(
            inputs,
            policy,
            th,
            f"only {inputs.labelled_rows} labelled rows, fewer than {th.min_labelled_rows}",
        )
    if policy == RETRAIN_NEVER:
        return _keep(inputs, policy, th, "policy never: the first champion is kept")
    if policy == RETRAIN_ALWAYS:
        return _train(inputs, policy, th, ("policy always: every month trains",))
    return _decide_on_drift(inputs, th)


def _decide_on_drift(inputs: DecisionInputs, th: PolicyThresholds) -> TrainingDecision:
    since = inputs.seconds_since_trained
    if since is not None and since < th.cooldown_seconds:
        return _keep(
            inputs,
            RETRAIN_ON_DRIFT,
            th,
            f"cooldown: the month trained {since:.0f}s ago (< {th.cooldown_seconds:.0f}s)",
        )
    moved = [f"content drift: {move.describe()}" for move in content_drift(inputs.statistics)]
    drop = inputs.accuracy_drop
    if drop is not None and drop[1] > th.accuracy_drop:
        moved.append(
            f"{drop[0]} accuracy {inputs.reference_accuracy - drop[1]:.3f} is {drop[1]:.3f} "
            f"below the champion's reference {inputs.reference_accuracy:.3f} "
            f"(threshold {th.accuracy_drop:.3f})"
        )
    age = inputs.champion_age_months
    if age is not None and age >= th.max_age_months:
        aged = f"champion is {age} months old (maximum {th.max_age_months})"
        # Age alone retrains on the default window; with drift, the drift window wins.
        window = th.drift_window_months if moved else th.window_months
        return _train(inputs, RETRAIN_ON_DRIFT, th, (*moved, aged), window)
    if moved:
        return _train(inputs, RETRAIN_ON_DRIFT, th, tuple(moved), th.drift_window_months)
    return _keep(inputs, RETRAIN_ON_DRIFT, th, _quiet(inputs, th))


def _quiet(inputs: DecisionInputs, th: PolicyThresholds) -> str:
    drop = inputs.accuracy_drop
    accuracy = (
        f"{drop[0]} accuracy within {th.accuracy_drop:.3f} of the reference"
        if drop is not None
        else "no accuracy to compare"
    )
    return (
        f"no content drift, {accuracy}, champion {inputs.champion_age_months} months old "
        f"(maximum {th.max_age_months})"
    )


def _train(
    inputs: DecisionInputs,
    policy: str,
    th: PolicyThresholds,
    reasons: tuple[str, ...],
    window_months: int | None = None,
) -> TrainingDecision:
    return TrainingDecision(
        month=inputs.month,
        policy=policy,
        decision=TRAIN,
        reasons=reasons,
        inputs=inputs,
        families=tuple(family_names(fast=True)),
        follow_up_families=tuple(family_names(fast=False)),
        window_months=window_months or th.window_months,
        thresholds=th,
    )


def _keep(
    inputs: DecisionInputs, policy: str, th: PolicyThresholds, reason: str
) -> TrainingDecision:
    return TrainingDecision(inputs.month, policy, KEEP, (reason,), inputs, thresholds=th)


def record_decision(
    decision: TrainingDecision,
    con: duckdb.DuckDBPyConnection,
    published_dir: Path,
    dagster_run_id: str | None = None,
) -> None:
    """Append the decision to metrics.training_decisions (decisions are history: a month
    decided twice keeps both rows) and publish the history for the app and `sentiment sql`."""
    created_at = utc_now()
    frame = pd.DataFrame(
        [{**decision.row(), "dagster_run_id": dagster_run_id, "created_at": created_at}]
    )
    record_history(con, published_dir, HistoryRows(TABLE, frame))
