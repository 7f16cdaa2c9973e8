"""Scoring a loaded version on warehouse rows: forward-chaining evaluation and the promotion
comparison both measure models this way."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from sentiment_assets.lib.core.months import previous_month
from sentiment_assets.lib.data.sampling import in_holdout
from sentiment_assets.lib.encoding.embedding_store import load_tweets
from sentiment_assets.lib.models.model_bundle import Predictor
from sentiment_assets.lib.stats.metrics import classification_metrics
from sentiment_assets.lib.stats.performance_estimation import (
    PerformanceEstimate,
    estimate_performance,
)
from sentiment_assets.lib.stats.slices import SliceScore, slice_scores
from sentiment_assets.lib.store.lake import Lake
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.registry import VersionInfo

# metrics.model_evaluations.eval_set of the forward-chaining rows (trained through M-1, scored
# on M): what model_evaluation writes and the app's history plots.
NEXT_MONTH_EVAL = "next_month"
# The serving champion scored on a month when it is not among the newest versions trained
# through the month before (the gate kept an older one): its realised row.
CHAMPION_EVAL = "champion"
# Accuracy and macro-F1 expected from calibrated probabilities, before labels (with an
# interval): one per version and month, beside whichever realised row the same version has.
ESTIMATED_EVAL = "estimated"


def score_version(
    predictor: Predictor,
    warehouse: Path | Lake,
    frame: pd.DataFrame,
    months: list[date],
    keep: np.ndarray | None = None,
) -> tuple[dict, float]:
    """Metrics of one loaded version on `frame` (the labelled rows of `months`, optionally
    masked by `keep`) and its milliseconds per tweet; embedding models read the stored
    vectors instead of encoding again."""
    embeddings = None
    if predictor.card.encoder_fingerprint:
        _, embeddings = load_tweets(warehouse, months, predictor.card.encoder_fingerprint)
        if keep is not None:
            embeddings = embeddings[keep]
    texts = frame["text"].tolist()
    started = time.perf_counter()
    scores = predictor.predict_proba_clean(texts, embeddings)
    ms_per_tweet = 1000 * (time.perf_counter() - started) / max(len(texts), 1)
    return classification_metrics(
        frame["label"].to_numpy(dtype=int), np.asarray(scores)
    ), ms_per_tweet


def holdout_rows(warehouse: Path | Lake, months: list[date]) -> tuple[pd.DataFrame, np.ndarray]:
    """The labelled holdout rows of `months` (no model ever trains on them) and the mask
    that picks them out of all labelled rows of those months."""
    labelled, _ = load_tweets(warehouse, months)
    keep = in_holdout(labelled["tweet_id"].tolist())
    return labelled[keep].reset_index(drop=True), keep


@dataclass(frozen=True)
class MonthEvaluation:
    """One version on one month: the estimate from all its tweets and, when some are
    labelled, the realised metrics and the slices on those."""

    estimate: PerformanceEstimate
    realised: dict | None
    slices: list[SliceScore]
    ms_per_tweet: float


def evaluate_month(
    predictor: Predictor,
    frame: pd.DataFrame,
    embeddings: np.ndarray | None,
    seed: int = 0,
) -> MonthEvaluation:
    """Score every tweet of `frame` (labelled or not; `embeddings` row-aligned, or None to let
    the predictor encode): estimate from the calibrated probabilities, measure on the rows
    with a label. The realised metrics use the raw scores; calibration does not move the 0.5
    decision, so they are the same either way."""
    texts = frame["text"].tolist()
    started = time.perf_counter()
    raw = np.asarray(predictor.predict_proba_clean(texts, embeddings))
    ms_per_tweet = 1000 * (time.perf_counter() - started) / max(len(texts), 1)
    estimate = estimate_performance(predictor.calibration.apply(raw), seed=seed)
    labelled = frame["label"].notna().to_numpy()
    if not labelled.any():
        return MonthEvaluation(estimate, None, [], ms_per_tweet)
    labels = frame.loc[labelled, "label"].to_numpy(dtype=int)
    realised = classification_metrics(labels, raw[labelled])
    kept_texts = [t for t, keep in zip(texts, labelled, strict=True) if keep]
    slices = slice_scores(kept_texts, labels, raw[labelled])
    return MonthEvaluation(estimate, realised, slices, ms_per_tweet)


def versions_to_score(
    client: MlflowClient, month: date
) -> tuple[list[VersionInfo], VersionInfo | None]:
    """The newest version of each family trained through the month before, and the serving
    champion when it is none of those and was trained before `month`."""
    versions = registry.latest_versions_trained_through(client, previous_month(month))
    champion = registry.champion(client)
    if (
        champion is None
        or champion.version in {v.version for v in versions}
        or champion.trained_through is None
        or champion.trained_through >= month
    ):
        return versions, None
    return versions, champion


def version_rows(
    info: VersionInfo,
    month: date,
    realised_set: str,
    evaluation: MonthEvaluation,
    dagster_run_id: str,
    now: pd.Timestamp,
) -> tuple[list[dict], list[dict]]:
    """The version's metrics.model_evaluations rows (estimated, and realised when labelled)
    and its metrics.slice_evaluations rows."""
    common = {
        "model_family": info.family,
        "model_version": info.version,
        "trained_through": info.trained_through,
        "eval_month": month,
    }
    estimate = evaluation.estimate.as_dict()
    estimate.pop("positive_share")
    evaluations = [
        {
            **common,
            "eval_set": ESTIMATED_EVAL,
            **estimate,
            "dagster_run_id": dagster_run_id,
            "created_at": now,
        }
    ]
    if evaluation.realised is not None:
        evaluations.append(
            {
                **common,
                "eval_set": realised_set,
                **evaluation.realised,
                "dagster_run_id": dagster_run_id,
                "created_at": now,
            }
        )
    slices = [
        {**common, **s.as_dict(), "dagster_run_id": dagster_run_id, "created_at": now}
        for s in evaluation.slices
    ]
    return evaluations, slices
