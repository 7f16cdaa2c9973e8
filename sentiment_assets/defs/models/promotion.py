"""model_challenger (scored against the champion, behind a blocking check) and model_champion.

The challenger is the month's best version on validation among those that clear the
minimum-functionality floor (lib/behaviour.py), or the best outright when none does. It and
the champion are scored on the same rows: the fixed hash holdout of the challenger's training
window, which no model ever trains on. If the challenger is worse by more than the margin, or
misreads the plain tweets of the floor while the champion does not, the blocking check
fails, the run stops there and model_champion is not materialized, so the `champion` alias
cannot move. Every decision is a row in metrics.promotions.
"""

from collections.abc import Callable
from datetime import date

import dagster as dg
import pandas as pd
from mlflow.tracking import MlflowClient

from sentiment_assets.defs.models.assets import load_version, score_version
from sentiment_assets.lib import registry
from sentiment_assets.lib.behaviour import DEFAULT_MIN_PASS_RATE, SuiteResult, run_suite
from sentiment_assets.lib.embedding_store import load_tweets
from sentiment_assets.lib.model_bundle import Predictor
from sentiment_assets.lib.months import trailing_window
from sentiment_assets.lib.promotion import REJECTED, behaviour_veto, decide, promotion_row
from sentiment_assets.lib.publish import publish_champion, publish_history
from sentiment_assets.lib.training import HOLDOUT_FRACTION, holdout_mask
from sentiment_assets.lib.warehouse import append_rows
from sentiment_assets.partitions import DUCKDB_POOL, MONTHS, monthly_partitions, partition_month
from sentiment_assets.resources import EncoderResource, PlatformResource, WarehouseResource

GATE_CHECK = "challenger_not_worse_than_champion"


class PromotionConfig(dg.Config):
    # None: the family whose validation macro-F1 is best this month.
    family: str | None = None
    metric: str = "macro_f1"
    margin: float = 0.0
    window_months: int = 3
    # Share of the minimum-functionality tweets a challenger must get right (0 turns the
    # floor off): it steers the choice of challenger and vetoes one below a champion above.
    min_behaviour_pass_rate: float = DEFAULT_MIN_PASS_RATE


def pick_challenger(
    client: MlflowClient,
    month: date,
    family: str | None,
    behaviour: Callable[[registry.VersionInfo], SuiteResult],
    min_pass_rate: float,
) -> tuple[registry.VersionInfo, dict[str, float], dict[str, SuiteResult]]:
    """The best version on validation macro-F1 among those that clear the floor.

    When none clears it, the best one outright: the gate then decides whether it may
    replace the champion. Ties go to the older version.
    """
    candidates = registry.latest_versions_trained_through(client, month.isoformat())
    if family:
        candidates = [c for c in candidates if c.family == family]
    if not candidates:
        raise dg.Failure(
            f"no registered model{' of family ' + family if family else ''} trained through "
            f"{month:%Y-%m}: materialize sentiment_model for {month.isoformat()} first"
        )
    validation = {
        c.version: client.get_run(c.run_id).data.metrics.get("val_macro_f1", float("-inf"))
        for c in candidates
    }
    suites = {c.version: behaviour(c) for c in candidates}
    eligible = [c for c in candidates if suites[c.version].passes(min_pass_rate)]
    best = max(eligible or candidates, key=lambda c: (validation[c.version], -int(c.version)))
    return best, validation, suites


@dg.asset(
    partitions_def=monthly_partitions,
    # After drift_report: the month's drift is judged against the champion it had before
    # this month's promotion, not against a champion trained on the month itself.
    deps=["sentiment_model", "drift_report"],
    pool=DUCKDB_POOL,
    group_name="models",
    kinds={"mlflow"},
    check_specs=[dg.AssetCheckSpec(GATE_CHECK, asset="model_challenger", blocking=True)],
    description="The month's best new version, scored against the current champion on the "
    "same holdout rows; the blocking check is the promotion gate.",
)
def model_challenger(
    context: dg.AssetExecutionContext,
    config: PromotionConfig,
    warehouse: WarehouseResource,
    encoder: EncoderResource,
    platform: PlatformResource,
) -> dg.MaterializeResult:
    month = partition_month(context)
    if not 0.0 <= config.min_behaviour_pass_rate <= 1.0:
        raise dg.Failure(
            f"min_behaviour_pass_rate must be in [0, 1], got {config.min_behaviour_pass_rate}"
        )
    text_encoder = encoder.get()
    predictors: dict[str, Predictor] = {}

    def predictor(info: registry.VersionInfo) -> Predictor:
        if info.version not in predictors:
            predictors[info.version] = load_version(info, platform.registry_cache_dir, text_encoder)
        return predictors[info.version]

    def behaviour(info: registry.VersionInfo) -> SuiteResult:
        return run_suite(predictor(info).predict_proba)

    client = MlflowClient()
    challenger, validation, suites = pick_challenger(
        client, month, config.family, behaviour, config.min_behaviour_pass_rate
    )
    current = registry.champion(client)
    # Only the challenger and the champion are scored from here: free the other candidates
    # (a fine-tuned network is ~90 MB).
    for version in [v for v in predictors if v != challenger.version]:
        del predictors[version]

    window = trailing_window(month, config.window_months, earliest=MONTHS[0])
    labelled, _ = load_tweets(warehouse.path, window)
    keep = holdout_mask(labelled["tweet_id"].tolist(), HOLDOUT_FRACTION)
    frame = labelled[keep].reset_index(drop=True)
    if len(frame) < 10 or frame["label"].nunique() < 2:
        raise dg.Failure(
            f"only {len(frame)} holdout rows in {[str(m) for m in window]}: too few to compare "
            "models; widen window_months or ingest more data"
        )

    def score(info: registry.VersionInfo) -> float:
        result, _ = score_version(predictor(info), warehouse.path, frame, window, keep)
        return result[config.metric]

    challenger_score = score(challenger)
    champion_score = score(current) if current else None
    challenger_suite = suites[challenger.version]
    champion_suite = behaviour(current) if current else None
    decision = decide(
        challenger.version,
        challenger_score,
        current.version if current else None,
        champion_score,
        config.margin,
        behaviour_veto(challenger_suite, champion_suite, config.min_behaviour_pass_rate),
    )
    context.log.info(
        f"promotion of version {challenger.version}: {decision.decision}: {decision.reason}"
    )
    details = {
        "model_version": challenger.version,
        "model_family": challenger.family,
        "trained_through": month,
        "decision": decision.decision,
        "champion_version": current.version if current else None,
        "champion_score": champion_score,
        "challenger_score": challenger_score,
        "metric": config.metric,
        "margin": config.margin,
        "eval_month": month,
        "n_eval": len(frame),
        "reason": decision.reason,
        "dagster_run_id": context.run_id,
    }
    if decision.decision == REJECTED:
        # The gate stops the run before model_champion, so the rejection is recorded here.
        with warehouse.connect() as con:
            append_rows(con, "metrics.promotions", promotion_row(**details))
            publish_history(con, platform.published_dir)
    metadata = {
        "challenger_version": challenger.version,
        "challenger_family": challenger.family,
        "challenger_score": challenger_score,
        "champion_version": current.version if current else "none",
        "champion_score": champion_score if champion_score is not None else float("nan"),
        "decision": decision.decision,
        "reason": decision.reason,
        "metric": config.metric,
        "margin": config.margin,
        "n_eval": len(frame),
        "validation_macro_f1_by_version": dg.MetadataValue.json(validation),
        "challenger_minimum_functionality": challenger_suite.summary(),
        "champion_minimum_functionality": champion_suite.summary() if champion_suite else "none",
        "minimum_functionality_by_version": dg.MetadataValue.json(
            {version: f"{r.correct}/{r.total}" for version, r in suites.items()}
        ),
        "min_behaviour_pass_rate": config.min_behaviour_pass_rate,
    }
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=GATE_CHECK,
                passed=decision.passes,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    k: metadata[k]
                    for k in (
                        "challenger_score",
                        "champion_score",
                        "margin",
                        "challenger_minimum_functionality",
                    )
                },
                description=decision.reason,
            )
        ],
    )


@dg.asset(
    partitions_def=monthly_partitions,
    deps=["model_challenger"],
    pool=DUCKDB_POOL,
    group_name="models",
    kinds={"mlflow"},
    description="Moves the registry alias `champion` to the challenger that passed the gate "
    "and records the decision in metrics.promotions.",
)
def model_champion(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    platform: PlatformResource,
) -> dg.MaterializeResult:
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("model_challenger"), asset_partitions=[context.partition_key]
        ),
        limit=1,
    ).records
    if not records:
        raise dg.Failure(f"model_challenger has no materialization for {context.partition_key}")
    meta = {k: v.value for k, v in records[0].asset_materialization.metadata.items()}
    if meta["decision"] == REJECTED:
        raise dg.Failure(f"the latest challenger was rejected: {meta['reason']}")
    client = MlflowClient()
    info = registry.set_champion(client, str(meta["challenger_version"]))
    champion_score = meta["champion_score"]
    with warehouse.connect() as con:
        append_rows(
            con,
            "metrics.promotions",
            promotion_row(
                model_version=info.version,
                model_family=info.family,
                trained_through=date.fromisoformat(info.trained_through),
                decision=meta["decision"],
                champion_version=None
                if meta["champion_version"] == "none"
                else meta["champion_version"],
                champion_score=None if pd.isna(champion_score) else champion_score,
                challenger_score=meta["challenger_score"],
                metric=meta["metric"],
                margin=meta["margin"],
                eval_month=partition_month(context),
                n_eval=meta["n_eval"],
                reason=meta["reason"],
                dagster_run_id=context.run_id,
            ),
        )
        publish_history(con, platform.published_dir)
    published = publish_champion(platform.published_dir, info, meta["decision"])
    context.log.info(
        f"champion is now version {info.version} ({info.family}, {info.trained_through})"
    )
    return dg.MaterializeResult(
        metadata={
            "champion_version": info.version,
            "family": info.family,
            "trained_through": info.trained_through,
            "decision": meta["decision"],
            "published": dg.MetadataValue.path(str(published)),
        }
    )
