"""tweet_embeddings: sentence embeddings of one month's cleaned tweets, cached by text."""

import time

import dagster as dg

from sentiment_assets.defs.embeddings.resources import EncoderResource
from sentiment_assets.defs.platform.resources import WarehouseResource
from sentiment_assets.lib.core.numbers import rounded
from sentiment_assets.lib.encoding.embedding_store import embed_month
from sentiment_assets.lib.encoding.encoder import TextEncoder
from sentiment_assets.lineage import TWEETS_CLEAN
from sentiment_assets.partitions import (
    WAREHOUSE_WRITERS,
    monthly_asset,
    monthly_definitions,
    partition_month,
)


@monthly_asset(
    deps=[TWEETS_CLEAN],
    pool=WAREHOUSE_WRITERS,
    group_name="embeddings",
    kinds={"onnx", "duckdb"},
    description="Embeddings of tweets_clean for the month (features.tweet_embeddings), "
    "computed only for texts not already in features.embedding_cache for this encoder.",
)
def tweet_embeddings(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    encoder: EncoderResource,
) -> dg.MaterializeResult:
    month = partition_month(context)
    text_encoder = encoder.get()
    if text_encoder.precision_note:
        context.log.warning(f"encoder {text_encoder.fingerprint}: {text_encoder.precision_note}")
    started = time.perf_counter()
    next_report = [0.0]

    def report(done: int, total: int) -> None:
        # A log line per ~10% keeps long months visible in the UI without flooding it.
        if total and (done / total >= next_report[0] or done == total):
            context.log.info(f"embedded {done}/{total} new texts on {text_encoder.device}")
            next_report[0] = done / total + 0.1

    stats = embed_month(warehouse.location, month, text_encoder, progress=report)
    seconds = time.perf_counter() - started
    return dg.MaterializeResult(
        metadata=rounded(
            {
                "rows": stats.rows,
                "unique_texts": stats.unique_texts,
                "encoded": stats.encoded,
                "from_cache": stats.from_cache,
                "encoder": text_encoder.fingerprint,
                "device": str(text_encoder.device),
                # Why the encoder is not the precision asked for (an int8 graph refused by the
                # quality gate, a failed export), when it is not.
                "encoder_note": text_encoder.precision_note or "",
                # What the int8 graph was judged on, and how it measured (int8 only).
                "encoder_gate": _gate_summary(text_encoder),
                "seconds": round(seconds, 3),
                "texts_per_second": round(stats.encoded / seconds, 1) if stats.encoded else 0.0,
            }
        )
    )


def _gate_summary(text_encoder: TextEncoder) -> str:
    measured = getattr(text_encoder, "gate_measurement", None)
    if measured is None:
        return ""
    return (
        f"{measured.probe}: mean cosine {measured.mean_cosine:.4f}, label agreement "
        f"{measured.label_agreement:.4f} on {measured.heldout_texts} held-out texts"
    )


@dg.definitions
def defs() -> dg.Definitions:
    return monthly_definitions(tweet_embeddings)
