"""prior_adjusted_model: the cheap first answer to a label-prior shift, before any retrain.

drift_sensor requests `recalibrate_job` for a month whose drift report flags the prediction
or label balance but not the embeddings or vocabulary. The champion's calibrated scores on
the month's tweets, labelled or not, give EM its estimate of the month's positive share
(lib/prior_shift); a version with the same weights and its scores moved to that prior is
registered as the champion's child (tags kind=prior_adjusted, parent_version). It replaces
the champion only through the promotion rule, on the month's labelled holdout rows: without
labels it waits, registered but not served, until the month's labels arrive and drift is
measured again.
"""

from typing import Any

import dagster as dg
import numpy as np

from sentiment_assets.defs.embeddings.resources import EncoderResource
from sentiment_assets.defs.models.tracking import run_link, tracked_step
from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.lib.core.numbers import rounded, significant
from sentiment_assets.lib.data.sampling import in_holdout
from sentiment_assets.lib.encoding.embedding_store import load_tweets
from sentiment_assets.lib.models.model_bundle import Predictor
from sentiment_assets.lib.stats.prior_shift import PriorAdjustment, estimate_prior
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.evaluation import holdout_rows, score_version
from sentiment_assets.lib.versions.prior_adjusted import base_version, register_prior_adjusted
from sentiment_assets.lib.versions.promotion import PromotionRecord, decide, record_champion_change
from sentiment_assets.lib.versions.serving import load_version
from sentiment_assets.lineage import PRIOR_ADJUSTED_MODEL, TWEET_EMBEDDINGS
from sentiment_assets.partitions import (
    WAREHOUSE_WRITERS,
    monthly_asset,
    monthly_definitions,
    partition_month,
)

AWAITING_LABELS = "awaiting labels"
NO_PRIOR_SHIFT = "no prior shift"


class RecalibrateConfig(dg.Config):
    # A re-estimated prior closer than this to the training prior registers nothing: the
    # adjustment would move almost no decision and only lengthen the registry.
    min_prior_change: float = 0.02
    metric: str = "macro_f1"
    margin: float = 0.0
    # Fewer labelled holdout rows than this in the month: no verdict, the version waits.
    min_labelled_rows: int = 50


def _training_prior(warehouse: WarehouseResource, predictor: Predictor) -> float:
    """The positive share of the rows the version learned from (its window, holdout out)."""
    frame, _ = load_tweets(warehouse.location, predictor.card.window())
    train = frame.loc[~in_holdout(frame["tweet_id"].tolist()), "label"].to_numpy(dtype=float)
    if train.size == 0:
        raise dg.Failure(f"version {predictor.version}'s window has no labelled rows left")
    return float(train.mean())


@monthly_asset(
    deps=[TWEET_EMBEDDINGS],
    pool=WAREHOUSE_WRITERS,
    group_name="models",
    kinds={"mlflow"},
    description="The champion with its scores moved to the month's class prior, re-estimated "
    "by EM from unlabelled tweets; registered as a prior_adjusted child version and promoted "
    "only through the promotion rule on the month's labelled holdout rows. Requested by "
    "drift_sensor (recalibrate_job) on a label-prior shift; not part of a normal build.",
)
def prior_adjusted_model(
    context: dg.AssetExecutionContext,
    config: RecalibrateConfig,
    warehouse: WarehouseResource,
    encoder: EncoderResource,
    platform: PlatformResource,
    mlflow: dg.ResourceParam[Any],
) -> dg.MaterializeResult:
    month = partition_month(context)
    settings = platform.settings
    client = platform.mlflow_client()
    champion = registry.champion(client)
    if champion is None:
        raise dg.Failure("no champion yet: there is no model whose prior could be adjusted")
    base = base_version(client, champion)
    predictor = load_version(base, settings.registry_cache_dir, encoder=encoder.get())
    frame, vectors = load_tweets(
        warehouse.location, [month], predictor.card.encoder_fingerprint, labelled_only=False
    )
    if frame.empty:
        raise dg.Failure(f"no tweets in {month:%Y-%m}: materialize tweet_embeddings first")
    raw = np.asarray(predictor.predict_proba_clean(frame["text"].tolist(), vectors))
    estimate = estimate_prior(
        predictor.calibration.apply(raw), _training_prior(warehouse, predictor)
    )
    metadata: dict[str, object] = {
        "parent_version": base.version,
        "n_tweets": len(frame),
        "training_prior": significant(estimate.training_prior),
        "estimated_prior": significant(estimate.estimated_prior),
        "em_iterations": estimate.iterations,
    }
    if abs(estimate.estimated_prior - estimate.training_prior) < config.min_prior_change:
        return dg.MaterializeResult(metadata={**metadata, "decision": NO_PRIOR_SHIFT})

    adjustment = PriorAdjustment(
        parent_version=base.version,
        month=month.isoformat(),
        training_prior=estimate.training_prior,
        prior=estimate.estimated_prior,
        calibration=predictor.card.calibration,
    )
    with tracked_step(mlflow, context) as parent_run_id:
        metadata["mlflow_parent_run"] = run_link(settings.mlflow_ui_url, parent_run_id)
        child = register_prior_adjusted(predictor, adjustment, settings.registry_cache_dir, client)
    context.log.info(
        f"registered version {child.version}: v{adjustment.parent_version} moved to prior "
        f"{adjustment.prior:.3f} (trained under {adjustment.training_prior:.3f})"
    )
    metadata["version"] = child.version
    gate_rows, keep = holdout_rows(warehouse.location, [month])
    if len(gate_rows) < config.min_labelled_rows or gate_rows["label"].nunique() < 2:
        note = (
            f"{len(gate_rows)} labelled holdout rows in {month:%Y-%m} (fewer than "
            f"{config.min_labelled_rows}, or one class): registered, not served until labels arrive"
        )
        context.log.info(note)
        return dg.MaterializeResult(
            metadata={**metadata, "decision": AWAITING_LABELS, "reason": note}
        )

    def score(info: registry.VersionInfo) -> float:
        loaded = load_version(info, settings.registry_cache_dir, encoder=encoder.get())
        result, _ = score_version(loaded, warehouse.location, gate_rows, [month], keep)
        return result[config.metric]

    child_score, champion_score = score(child), score(champion)
    decision = decide(child.version, child_score, champion.version, champion_score, config.margin)
    record = PromotionRecord(
        model_version=child.version,
        model_family=child.family,
        trained_through=base.trained_through,
        decision=decision.decision,
        reason=f"prior re-estimated for {month:%Y-%m}: {decision.reason}",
        champion_version=champion.version,
        champion_score=champion_score,
        challenger_score=child_score,
        metric=config.metric,
        margin=config.margin,
        eval_month=month,
        n_eval=len(gate_rows),
        dagster_run_id=context.run_id,
    )
    with warehouse.connect() as con:
        record_champion_change(record, client, con, settings.published_dir)
    context.log.info(
        f"prior-adjusted version {child.version}: {decision.decision}: {decision.reason}"
    )
    return dg.MaterializeResult(
        metadata=rounded(
            {
                **metadata,
                "decision": decision.decision,
                "reason": record.reason,
                "challenger_score": child_score,
                "champion_score": champion_score,
                "n_eval": len(gate_rows),
            }
        )
    )


recalibrate_job = dg.define_asset_job(
    "recalibrate_job",
    selection=dg.AssetSelection.assets(PRIOR_ADJUSTED_MODEL),
    description="Re-estimate one month's class prior from its tweets and register the "
    "champion's prior-adjusted child (promoted only through the gate on labelled rows). "
    "Started by drift_sensor on a prior-only drift.",
    tags={"sentiment/job": "recalibrate"},
)


@dg.definitions
def defs() -> dg.Definitions:
    return monthly_definitions(prior_adjusted_model, jobs=[recalibrate_job])
