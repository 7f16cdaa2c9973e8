"""user_feedback: corrections given in the app become labelled tweets of a training month.

The app appends corrections to SENTIMENT_HOME/feedback/feedback.jsonl (never to the
warehouse). Materialising user_feedback for month M writes them, de-duplicated, as one
landing file dated in M: new_data_sensor then rebuilds M, raw_tweets ingests the file with
the other sources, and the next model trained through M learns from the corrections. The
landing file has a fixed name, so feedback belongs to one month at a time and is never
counted twice.
"""

import json
from datetime import datetime, time

import dagster as dg

from sentiment_assets.defs.platform.resources import PlatformResource
from sentiment_assets.lib.core.atomic import write_text
from sentiment_assets.lib.data.feedback import latest_corrections
from sentiment_assets.lib.settings import FEEDBACK_FILE
from sentiment_assets.partitions import monthly_asset, monthly_definitions, partition_month

FEEDBACK_LANDING_FILE = "user_feedback.jsonl"


@monthly_asset(
    group_name="ingest",
    kinds={"python"},
    description="Corrections from the app's feedback (SENTIMENT_HOME/feedback/feedback.jsonl) "
    "written as a landing file dated in this month, so they join its training data.",
)
def user_feedback(
    context: dg.AssetExecutionContext, platform: PlatformResource
) -> dg.MaterializeResult:
    month = partition_month(context)
    settings = platform.settings
    records = latest_corrections(settings.feedback_dir / FEEDBACK_FILE)
    target = settings.landing_dir / FEEDBACK_LANDING_FILE
    if not records:
        return dg.MaterializeResult(metadata={"feedback_rows": 0})
    created_at = datetime.combine(month.replace(day=15), time(12, 0)).isoformat(sep=" ")
    lines = [
        json.dumps(
            {
                "id": f"feedback-{r['feedback_id']}",
                "text": r["text"],
                "created_at": created_at,
                "label": "positive" if r["label"] == 1 else "negative",
            },
            ensure_ascii=False,
        )
        for r in records
    ]
    # Atomic: new_data_sensor may fingerprint the landing folder at any moment.
    write_text(target, "\n".join(lines) + "\n")
    context.log.info(f"{len(records)} corrections written to {target} for {month:%Y-%m}")
    return dg.MaterializeResult(
        metadata={"feedback_rows": len(records), "landing_file": dg.MetadataValue.path(str(target))}
    )


@dg.definitions
def defs() -> dg.Definitions:
    return monthly_definitions(user_feedback)
