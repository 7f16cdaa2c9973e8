"""model_challenger (scored against the champion, behind a blocking check) and model_champion.

The challenger is the month's best version on validation among those that clear the
minimum-functionality floor (lib/models/behaviour.py), or the best outright when none does. It and
the champion are scored on the same rows: the fixed hash holdout of the challenger's training
window (from its card), which no model ever trains on. If the challenger is worse by more
than the margin, ties the champion, or misreads the plain tweets of the floor while the
champion does not, it is rejected. A rejection is a decision, not a failure: the gate check
warns (WARN severity does not block), the run stays green, and model_champion records that the
champion stays, with the reason in its metadata. The challenger writes its decision once, as
a PromotionRecord in its metadata; model_champion acts on that record. Every decision is a
row in metrics.promotions.
"""

import dataclasses

import dagster as dg
from mlflow.tracking import MlflowClient

from sentiment_assets.defs.embeddings.resources import EncoderResource
from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.lib.core.months import iso_or_empty
from sentiment_assets.lib.core.numbers import rounded
from sentiment_assets.lib.models.behaviour import DEFAULT_MIN_PASS_RATE, SuiteResult, run_suite
from sentiment_assets.lib.models.families import family_names
from sentiment_assets.lib.models.model_bundle import Predictor
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.cache_pruning import prune_caches_safely
from sentiment_assets.lib.versions.evaluation import holdout_rows, score_version
from sentiment_assets.lib.versions.promotion import (
    Decision,
    NoChallenger,
    PromotionRecord,
    behaviour_veto,
    decide,
    pick_challenger,
    record_champion_change,
)
from sentiment_assets.lib.versions.publish import champion_file
from sentiment_assets.lib.versions.serving import load_version
from sentiment_assets.lineage import DRIFT_REPORT, MODEL_CHALLENGER, SENTIMENT_MODEL
from sentiment_assets.partitions import (
    WAREHOUSE_WRITERS,
    monthly_asset,
    monthly_definitions,
    partition_month,
)

GATE_CHECK = "challenger_not_worse_than_champion"


class PromotionConfig(dg.Config):
    # None: the family whose validation macro-F1 is best this month.
    family: str | None = None
    metric: str = "macro_f1"
    margin: float = 0.0
    # Share of the minimum-functionality tweets a challenger must get right (0 turns the
    # floor off): it steers the choice of challenger and vetoes one below a champion above.
    min_behaviour_pass_rate: float = DEFAULT_MIN_PASS_RATE


class VersionCache:
    """Each version the step looks at, loaded once (a fine-tuned network is ~90 MB)."""

    def __init__(self, cache_dir, text_encoder) -> None:
        self._cache_dir = cache_dir
        self._encoder = text_encoder
        self._loaded: dict[str, Predictor] = {}

    def get(self, info: registry.VersionInfo) -> Predictor:
        if info.version not in self._loaded:
            self._loaded[info.version] = load_version(info, self._cache_dir, encoder=self._encoder)
        return self._loaded[info.version]

    def keep_only(self, *versions: str) -> None:
        for version in [v for v in self._loaded if v not in versions]:
            del self._loaded[version]


def _decision_metadata(
    record: PromotionRecord,
    validation: dict[str, float],
    suites: dict[str, SuiteResult],
    challenger_suite: SuiteResult,
    champion_suite: SuiteResult | None,
    min_pass_rate: float,
) -> dict[str, object]:
    metadata: dict[str, object] = {
        "decision_record": dg.MetadataValue.json(record.as_json()),
        "challenger_version": record.model_version,
        "challenger_family": record.model_family,
        "challenger_score": record.challenger_score,
        "decision": record.decision,
        "reason": record.reason,
        "metric": record.metric,
        "margin": record.margin,
        "n_eval": record.n_eval,
        "validation_macro_f1_by_version": dg.MetadataValue.json(rounded(validation)),
        "challenger_minimum_functionality": challenger_suite.summary(),
        "minimum_functionality_by_version": dg.MetadataValue.json(
            {version: f"{r.correct}/{r.total}" for version, r in suites.items()}
        ),
        "min_behaviour_pass_rate": min_pass_rate,
    }
    if record.champion_version is not None:
        metadata["champion_version"] = record.champion_version
        metadata["champion_score"] = record.champion_score
        metadata["champion_minimum_functionality"] = champion_suite.summary()
    return metadata


def _gate_result(decision: Decision, metadata: dict[str, object]) -> dg.AssetCheckResult:
    shown = ("challenger_score", "champion_score", "margin", "challenger_minimum_functionality")
    return dg.AssetCheckResult(
        check_name=GATE_CHECK,
        passed=decision.passes,
        # A rejected challenger is an expected outcome: a warning, never a red check.
        severity=dg.AssetCheckSeverity.WARN,
        metadata={k: metadata[k] for k in shown if k in metadata},
        description=decision.reason,
    )


@monthly_asset(
    # After drift_report: the month's drift is judged against the champion it had before
    # this month's promotion, not against a champion trained on the month itself.
    deps=[SENTIMENT_MODEL, DRIFT_REPORT],
    pool=WAREHOUSE_WRITERS,
    group_name="models",
    kinds={"mlflow"},
    check_specs=[
        dg.AssetCheckSpec(
            GATE_CHECK,
            asset=MODEL_CHALLENGER,
            blocking=True,
            description="The promotion gate: the challenger must beat the champion on the same "
            "holdout rows (a tie keeps the champion) and read plain tweets. A rejection warns "
            "and model_champion records that the champion stays.",
        )
    ],
    description="The month's best new version, scored against the current champion on the "
    "same holdout rows; its check is the promotion gate (a rejection warns, the run goes on).",
)
def model_challenger(
    context: dg.AssetExecutionContext,
    config: PromotionConfig,
    warehouse: WarehouseResource,
    encoder: EncoderResource,
    platform: PlatformResource,
) -> dg.MaterializeResult:
    month = partition_month(context)
    if config.family is not None and config.family not in family_names():
        raise dg.Failure(f"family must be one of {family_names()}, got {config.family!r}")
    if not 0.0 <= config.min_behaviour_pass_rate <= 1.0:
        raise dg.Failure(
            f"min_behaviour_pass_rate must be in [0, 1], got {config.min_behaviour_pass_rate}"
        )
    settings = platform.settings
    versions = VersionCache(settings.registry_cache_dir, encoder.get())

    def behaviour(info: registry.VersionInfo) -> SuiteResult:
        return run_suite(versions.get(info).predict_proba)

    client = platform.mlflow_client()
    try:
        challenger, validation, suites = pick_challenger(
            client, month, config.family, behaviour, config.min_behaviour_pass_rate
        )
    except NoChallenger as missing:
        raise dg.Failure(str(missing)) from None
    current = registry.champion(client)
    versions.keep_only(challenger.version, *([current.version] if current else []))

    window = versions.get(challenger).card.window()
    frame, keep = holdout_rows(warehouse.location, window)
    if len(frame) < 10 or frame["label"].nunique() < 2:
        raise dg.Failure(
            f"only {len(frame)} holdout rows in {[str(m) for m in window]}: too few to compare "
            "models; train on a wider window or ingest more data"
        )

    def score(info: registry.VersionInfo) -> float:
        result, _ = score_version(versions.get(info), warehouse.location, frame, window, keep)
        return result[config.metric]

    challenger_score = score(challenger)
    champion_score = score(current) if current else None
    challenger_suite = suites[challenger.version]
    champion_suite = behaviour(current) if current else None
    veto = behaviour_veto(challenger_suite, champion_suite, config.min_behaviour_pass_rate)
    decision = decide(
        challenger.version,
        challenger_score,
        current.version if current else None,
        champion_score,
        config.margin,
        veto,
    )
    context.log.info(
        f"promotion of version {challenger.version}: {decision.decision}: {decision.reason}"
    )
    record = PromotionRecord(
        model_version=challenger.version,
        model_family=challenger.family,
        trained_through=month,
        decision=decision.decision,
        reason=decision.reason,
        champion_version=current.version if current else None,
        champion_score=champion_score,
        challenger_score=challenger_score,
        metric=config.metric,
        margin=config.margin,
        eval_month=month,
        n_eval=len(frame),
        dagster_run_id=context.run_id,
    )
    metadata = _decision_metadata(
        record, validation, suites, challenger_suite, champion_suite, config.min_behaviour_pass_rate
    )
    metadata = rounded(metadata)
    return dg.MaterializeResult(metadata=metadata, check_results=[_gate_result(decision, metadata)])


@monthly_asset(
    deps=[MODEL_CHALLENGER],
    pool=WAREHOUSE_WRITERS,
    group_name="models",
    kinds={"mlflow"},
    description="Moves the registry alias `champion` to the challenger that passed the gate, "
    "or keeps the champion when the gate rejected it (the reason in the metadata); records "
    "the decision in metrics.promotions.",
)
def model_champion(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    platform: PlatformResource,
) -> dg.MaterializeResult:
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(MODEL_CHALLENGER), asset_partitions=[context.partition_key]
        ),
        limit=1,
    ).records
    if not records:
        raise dg.Failure(f"model_challenger has no materialization for {context.partition_key}")
    metadata = records[0].asset_materialization.metadata
    if "decision_record" not in metadata:
        raise dg.Failure(
            f"the latest model_challenger of {context.partition_key} carries no decision record "
            "(it predates the record): materialize model_challenger again"
        )
    record = dataclasses.replace(
        PromotionRecord.from_json(metadata["decision_record"].value), dagster_run_id=context.run_id
    )
    client = platform.mlflow_client()
    if not record.moves_champion:
        return _champion_stays(context, record, client, warehouse, platform)
    with warehouse.connect() as con:
        info = record_champion_change(record, client, con, platform.settings.published_dir)
        # After the alias moved, so the new champion and the one it replaced are both kept;
        # housekeeping only: a failure is logged, never fails the step.
        pruned = prune_caches_safely(platform.settings, client, con, context.log.warning)
    context.log.info(
        f"champion is now version {info.version} ({info.family}, {info.trained_through})"
    )
    if pruned is not None:
        context.log.info(pruned.summary())
    return dg.MaterializeResult(
        metadata={
            "champion_version": info.version,
            "family": info.family,
            "trained_through": iso_or_empty(info.trained_through),
            "decision": record.decision,
            "published": dg.MetadataValue.path(str(champion_file(platform.settings.published_dir))),
        }
    )


def _champion_stays(
    context: dg.AssetExecutionContext,
    record: PromotionRecord,
    client: MlflowClient,
    warehouse: WarehouseResource,
    platform: PlatformResource,
) -> dg.MaterializeResult:
    """Record a rejected challenger (the alias does not move) and show why on the asset."""
    with warehouse.connect() as con:
        record_champion_change(record, client, con, platform.settings.published_dir)
    context.log.info(
        f"champion stays version {record.champion_version}: challenger "
        f"{record.model_version} rejected ({record.reason})"
    )
    return dg.MaterializeResult(
        metadata={
            "decision": record.decision,
            "reason": record.reason,
            "champion_version": record.champion_version or "",
            "challenger_version": record.model_version,
        }
    )


@dg.definitions
def defs() -> dg.Definitions:
    return monthly_definitions(model_challenger, model_champion)
