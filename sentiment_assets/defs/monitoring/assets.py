"""drift_report: one month's tweets against the data the current champion was trained on."""

import json
from datetime import date

import dagster as dg
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from sentiment_assets.lib import drift, registry
from sentiment_assets.lib.embedding_store import load_tweets
from sentiment_assets.lib.model_bundle import load_predictor
from sentiment_assets.lib.months import parse_month_range
from sentiment_assets.lib.publish import publish_history
from sentiment_assets.lib.training import HOLDOUT_FRACTION, holdout_mask
from sentiment_assets.lib.warehouse import replace_rows
from sentiment_assets.partitions import DUCKDB_POOL, monthly_partitions, partition_month
from sentiment_assets.resources import EncoderResource, PlatformResource, WarehouseResource

DRIFT_CHECKS = [f"drift_{name}" for name in drift.STATISTICS]


class DriftConfig(dg.Config):
    """Thresholds of the drift tests (defaults measured by `make drift-power`)."""

    alpha: float = 0.01
    permutations: int = 1000
    max_subsample: int = 1000
    accuracy_tolerance: float = 0.03
    min_samples: int = 200
    # The reference is subsampled to keep a report to seconds; it is the champion's window.
    max_reference_rows: int = 4000
    seed: int = 0

    def thresholds(self) -> drift.DriftThresholds:
        return drift.DriftThresholds(
            alpha=self.alpha,
            permutations=self.permutations,
            max_subsample=self.max_subsample,
            accuracy_tolerance=self.accuracy_tolerance,
            min_samples=self.min_samples,
            seed=self.seed,
        )


def reference_months(window_start: str, trained_through: str) -> list[date]:
    return parse_month_range(f"{window_start}..{trained_through}")


def _check_results(results: list[drift.StatResult], note: str | None = None):
    by_name = {r.statistic: r for r in results}
    for check_name, statistic in zip(DRIFT_CHECKS, drift.STATISTICS, strict=True):
        result = by_name.get(statistic)
        if result is None:
            yield dg.AssetCheckResult(
                check_name=check_name, passed=True, metadata={"note": note or "not computed"}
            )
            continue
        yield dg.AssetCheckResult(
            check_name=check_name,
            passed=result.drifted is not True,
            severity=dg.AssetCheckSeverity.ERROR
            if result.severity == "error"
            else dg.AssetCheckSeverity.WARN,
            metadata={
                "value": float(result.value),
                "threshold": float(result.threshold),
                "p_value": float(result.p_value) if result.p_value is not None else float("nan"),
                "verdict": {True: "drift", False: "no drift", None: "not judged"}[result.drifted],
                "reason": str(result.detail.get("reason", "")),
            },
        )


@dg.asset(
    partitions_def=monthly_partitions,
    deps=["tweets_clean", "tweet_embeddings"],
    pool=DUCKDB_POOL,
    group_name="monitoring",
    kinds={"duckdb"},
    check_specs=[dg.AssetCheckSpec(name, asset="drift_report") for name in DRIFT_CHECKS],
    description="The month against the champion's training window: embedding drift "
    "(mean distance, MMD), prediction drift (KS, PSI, positive rate), label-prior drift, "
    "accuracy drop and vocabulary drift, each with value, threshold and verdict, in "
    "metrics.drift_reports. `drifted` in the metadata is what drift_sensor reads.",
)
def drift_report(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    warehouse: WarehouseResource,
    encoder: EncoderResource,
    platform: PlatformResource,
):
    month = partition_month(context)
    champion = registry.champion(MlflowClient())
    if champion is None:
        yield dg.MaterializeResult(metadata={"drifted": False, "note": "no champion yet"})
        yield from _check_results([], note="no champion yet")
        return
    predictor = load_predictor(
        registry.download_bundle(champion, platform.registry_cache_dir), encoder=encoder.get()
    )
    card = predictor.card
    window = reference_months(card.window_start, card.trained_through)
    if month in window:
        note = f"{month:%Y-%m} is part of the champion's training window: nothing to compare"
        yield dg.MaterializeResult(
            metadata={"drifted": False, "note": note, "champion_version": champion.version}
        )
        yield from _check_results([], note=note)
        return

    fingerprint = encoder.get().fingerprint
    reference, ref_vectors = load_tweets(warehouse.path, window, fingerprint, labelled_only=False)
    if len(reference) > config.max_reference_rows:
        keep = np.sort(
            np.random.default_rng(config.seed).choice(
                len(reference), config.max_reference_rows, replace=False
            )
        )
        reference, ref_vectors = reference.iloc[keep].reset_index(drop=True), ref_vectors[keep]
    current, cur_vectors = load_tweets(warehouse.path, [month], fingerprint, labelled_only=False)

    def champion_scores(frame: pd.DataFrame, vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
        scores = np.full(len(frame), np.nan)
        if rows.any():
            embeddings = vectors[rows] if card.encoder_fingerprint == fingerprint else None
            scores[rows] = predictor.predict_proba_clean(
                frame.loc[rows, "text"].tolist(), embeddings
            )
        return scores

    # The champion trained on the reference rows outside the holdout: only its holdout scores
    # are out of sample, so only those describe its reference behaviour honestly.
    reference_holdout = holdout_mask(reference["tweet_id"].tolist(), HOLDOUT_FRACTION)
    results = drift.drift_report(
        drift.DriftSample(
            ref_vectors,
            champion_scores(reference, ref_vectors, reference_holdout),
            reference["text"].tolist(),
            reference["label"].to_numpy(dtype=float),
        ),
        drift.DriftSample(
            cur_vectors,
            champion_scores(current, cur_vectors, np.ones(len(current), dtype=bool)),
            current["text"].tolist(),
            current["label"].to_numpy(dtype=float),
        ),
        config.thresholds(),
    )
    combined = results[-1]
    reference_name = f"champion v{champion.version} window {window[0]:%Y-%m}..{window[-1]:%Y-%m}"
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    rows = pd.DataFrame(
        [
            {
                "month": month,
                "reference": reference_name,
                "statistic": r.statistic,
                "kind": r.kind,
                "value": r.value,
                "threshold": r.threshold,
                "p_value": r.p_value,
                "drifted": r.drifted,
                "severity": r.severity,
                "detail": json.dumps(r.detail, default=str),
                "champion_version": champion.version,
                "dagster_run_id": context.run_id,
                "created_at": now,
            }
            for r in results
        ]
    )
    with warehouse.connect() as con:
        replace_rows(
            con,
            "metrics.drift_reports",
            rows,
            "month = ? AND champion_version = ?",
            [month, champion.version],
        )
        publish_history(con, platform.published_dir)

    vocabulary = next(r for r in results if r.statistic == drift.VOCABULARY_OOV)
    keywords = vocabulary.detail.get("new_keywords") or []
    summary = rows[["statistic", "value", "threshold", "p_value", "drifted", "severity"]]
    context.log.info(f"{month:%Y-%m} vs {reference_name}: drifted={combined.drifted}")
    yield dg.MaterializeResult(
        metadata={
            "drifted": bool(combined.drifted),
            "reference": reference_name,
            "champion_version": champion.version,
            "n_reference": len(reference),
            "n_current": len(current),
            "statistics": dg.MetadataValue.md(summary.to_markdown(index=False)),
            "new_keywords": dg.MetadataValue.json(keywords),
        }
    )
    yield from _check_results(results)
