"""model_evaluation: forward chaining, the model trained through month M scored on M+1.

For each version it scores on a month it writes three kinds of rows: the accuracy and
macro-F1 expected from its calibrated probabilities (eval_set 'estimated', from every tweet
of the month, labelled or not), the realised ones when labels exist ('next_month', or
'champion' for a serving champion older than the month before), and the realised ones per
slice of tweets (metrics.slice_evaluations). A slice far below the whole month is a WARN
check: worth a look, never a reason to stop the run.
"""

import dagster as dg
import numpy as np
import pandas as pd

from sentiment_assets.defs.embeddings.resources import EncoderResource
from sentiment_assets.defs.platform.resources import PlatformResource, WarehouseResource
from sentiment_assets.lib.core.clock import utc_now
from sentiment_assets.lib.core.months import previous_month
from sentiment_assets.lib.core.numbers import rounded
from sentiment_assets.lib.encoding.embedding_store import load_tweets
from sentiment_assets.lib.stats.slices import (
    DEFAULT_MIN_SLICE_ROWS,
    DEFAULT_SLICE_MARGIN,
    SliceScore,
    weak_slices,
)
from sentiment_assets.lib.versions.evaluation import (
    CHAMPION_EVAL,
    ESTIMATED_EVAL,
    NEXT_MONTH_EVAL,
    evaluate_month,
    version_rows,
    versions_to_score,
)
from sentiment_assets.lib.versions.publish import HistoryRows, record_history
from sentiment_assets.lib.versions.serving import load_version
from sentiment_assets.lineage import (
    MODEL_EVALUATION,
    SENTIMENT_MODEL,
    TWEET_EMBEDDINGS,
    TWEETS_CLEAN,
)
from sentiment_assets.partitions import (
    WAREHOUSE_WRITERS,
    first_partition_month,
    monthly_asset,
    monthly_definitions,
    partition_month,
)

PREVIOUS_MONTH_MAPPING = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
)
SLICE_CHECK = "slices_within_margin"
RESULT_COLUMNS = [
    "model_family",
    "model_version",
    "eval_set",
    "n",
    "accuracy",
    "macro_f1",
    "accuracy_lower",
    "accuracy_upper",
]


class EvaluationConfig(dg.Config):
    # A slice whose accuracy is more than slice_margin below the whole month's, on at least
    # min_slice_rows labelled tweets, fails the WARN check (lib/stats/slices.py says why 100).
    slice_margin: float = DEFAULT_SLICE_MARGIN
    min_slice_rows: int = DEFAULT_MIN_SLICE_ROWS


SLICE_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("version", "string"),
        dg.TableColumn("slice", "string"),
        dg.TableColumn("n", "int", description="labelled tweets of the month in the slice"),
        dg.TableColumn("accuracy", "float"),
        dg.TableColumn("macro_f1", "float"),
        dg.TableColumn("gap", "float", description="the month's accuracy minus the slice's"),
    ]
)


def _slice_table(
    slices: dict[str, list[SliceScore]], overall: dict[str, float]
) -> dg.MetadataValue:
    return dg.MetadataValue.table(
        [
            dg.TableRecord(
                {
                    "version": version,
                    "slice": s.slice,
                    "n": s.n,
                    "accuracy": round(s.accuracy, 4),
                    "macro_f1": round(s.macro_f1, 4),
                    "gap": round(overall[version] - s.accuracy, 4),
                }
            )
            for version, scores in slices.items()
            for s in scores
        ],
        schema=SLICE_SCHEMA,
    )


def _slice_check(
    slices: dict[str, list[SliceScore]], overall: dict[str, float], config: EvaluationConfig
) -> dg.AssetCheckResult:
    weak = {
        version: weak_slices(scores, overall[version], config.slice_margin, config.min_slice_rows)
        for version, scores in slices.items()
    }
    found = [
        f"v{version} {s.slice}: {s.accuracy:.3f} on {s.n} tweets vs {overall[version]:.3f}"
        for version, scores in weak.items()
        for s in scores
    ]
    return dg.AssetCheckResult(
        check_name=SLICE_CHECK,
        passed=not found,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=rounded(
            {
                "margin": config.slice_margin,
                "min_slice_rows": config.min_slice_rows,
                "weak_slices": len(found),
                "detail": "; ".join(found) if found else "no slice below the margin",
                "versions_judged": len(slices),
            }
        ),
    )


def _not_judged(note: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(check_name=SLICE_CHECK, passed=True, metadata={"note": note})


@monthly_asset(
    deps=[
        dg.AssetDep(SENTIMENT_MODEL, partition_mapping=PREVIOUS_MONTH_MAPPING),
        TWEETS_CLEAN,
        TWEET_EMBEDDINGS,
    ],
    pool=WAREHOUSE_WRITERS,
    group_name="models",
    kinds={"duckdb", "mlflow"},
    check_specs=[
        dg.AssetCheckSpec(
            SLICE_CHECK,
            asset=MODEL_EVALUATION,
            blocking=False,
            description="No slice of tweets (short, long, url, mention, hashtag, negation, "
            "emoticon, all_caps) scores more than the configured margin below the month.",
        )
    ],
    description="Forward chaining: the newest version of each family trained through the "
    "previous month, if it trained, and the serving champion, if older, are scored on this "
    "month. "
    "metrics.model_evaluations gets the accuracy and macro-F1 expected from calibrated "
    "probabilities (eval_set 'estimated', labelled or not) and, when labels exist, the "
    "realised ones; metrics.slice_evaluations the realised ones per slice of tweets.",
)
def model_evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    warehouse: WarehouseResource,
    encoder: EncoderResource,
    platform: PlatformResource,
) -> dg.MaterializeResult:
    month = partition_month(context)
    if month == first_partition_month(context):
        note = "first month: no model was trained before it"
        return dg.MaterializeResult(
            metadata={"evaluated": 0, "note": note}, check_results=[_not_judged(note)]
        )
    client = platform.mlflow_client()
    versions, champion = versions_to_score(client, month)
    if not versions and champion is None:
        # A month only trains when its decision says so: the month before may have kept
        # its champion, and with no champion yet there is nothing to score.
        note = f"no model trained through {previous_month(month):%Y-%m} and no champion yet"
        return dg.MaterializeResult(
            metadata={"evaluated": 0, "note": note}, check_results=[_not_judged(note)]
        )
    frame, _ = load_tweets(warehouse.location, [month], labelled_only=False)
    if frame.empty:
        raise dg.Failure(f"{month:%Y-%m} has no tweets to evaluate on")

    settings = platform.settings
    text_encoder = encoder.get()
    vectors: dict[str, np.ndarray] = {}
    now = utc_now()
    evaluation_rows: list[dict] = []
    slice_rows: list[dict] = []
    slices: dict[str, list[SliceScore]] = {}
    overall: dict[str, float] = {}
    scored = [(info, NEXT_MONTH_EVAL) for info in versions]
    if champion is not None:
        scored.append((champion, CHAMPION_EVAL))
    for info, realised_set in scored:
        predictor = load_version(info, settings.registry_cache_dir, encoder=text_encoder)
        fingerprint = predictor.card.encoder_fingerprint
        if fingerprint and fingerprint not in vectors:
            _, vectors[fingerprint] = load_tweets(
                warehouse.location, [month], fingerprint, labelled_only=False
            )
        evaluation = evaluate_month(predictor, frame, vectors.get(fingerprint or ""))
        rows, version_slices = version_rows(
            info, month, realised_set, evaluation, context.run_id, now
        )
        evaluation_rows.extend(rows)
        slice_rows.extend(version_slices)
        if info.run_id and realised_set == NEXT_MONTH_EVAL:
            client.log_metric(
                info.run_id, "next_month_estimated_accuracy", evaluation.estimate.accuracy
            )
            if evaluation.realised is not None:
                for name in ("accuracy", "macro_f1"):
                    client.log_metric(info.run_id, f"next_month_{name}", evaluation.realised[name])
            client.log_metric(
                info.run_id, "next_month_inference_ms_per_tweet", evaluation.ms_per_tweet
            )
        if evaluation.realised is not None:
            slices[info.version] = evaluation.slices
            overall[info.version] = evaluation.realised["accuracy"]

    evaluations = pd.DataFrame(evaluation_rows)
    slice_frame = pd.DataFrame(slice_rows)
    version_ids = [info.version for info, _ in scored]
    with warehouse.connect() as con:
        record_history(
            con,
            settings.published_dir,
            HistoryRows(
                "metrics.model_evaluations",
                evaluations,
                "eval_month = ? AND eval_set IN (?, ?, ?) "
                "AND model_version IN (SELECT unnest(?::VARCHAR[]))",
                (month, ESTIMATED_EVAL, NEXT_MONTH_EVAL, CHAMPION_EVAL, version_ids),
            ),
            HistoryRows(
                "metrics.slice_evaluations",
                slice_frame,
                "eval_month = ? AND model_version IN (SELECT unnest(?::VARCHAR[]))",
                (month, version_ids),
            ),
        )

    labelled = int(frame["label"].notna().sum())
    metadata: dict[str, object] = {
        "eval_month": month.isoformat(),
        "n": len(frame),
        "n_labelled": labelled,
        "evaluated": len(scored),
    }
    for info, realised_set in scored:
        mine = evaluations[evaluations["model_version"] == info.version]
        estimated = mine[mine["eval_set"] == ESTIMATED_EVAL].iloc[0]
        key = info.family if realised_set == NEXT_MONTH_EVAL else "champion"
        metadata[f"{key}/version"] = info.version
        metadata[f"{key}/estimated_accuracy"] = float(estimated["accuracy"])
        realised = mine[mine["eval_set"] == realised_set]
        if len(realised):
            metadata[f"{key}/accuracy"] = float(realised["accuracy"].iloc[0])
            metadata[f"{key}/macro_f1"] = float(realised["macro_f1"].iloc[0])
    metadata["results"] = dg.MetadataValue.md(evaluations[RESULT_COLUMNS].to_markdown(index=False))
    if slices:
        metadata["slices"] = _slice_table(slices, overall)
        check = _slice_check(slices, overall, config)
    else:
        check = _not_judged(f"{month:%Y-%m} has no labelled tweets yet: only estimates")
    return dg.MaterializeResult(metadata=rounded(metadata), check_results=[check])


@dg.definitions
def defs() -> dg.Definitions:
    return monthly_definitions(model_evaluation)
