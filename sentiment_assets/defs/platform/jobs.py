"""Named jobs over one month, to launch or backfill by name (the UI, GraphQL, `prod up`).

month_data_job is the month's data side: it depends on no other month, so the runs of
different months can run side by side (in the prod profile, on different Celery workers).
The models that follow it read a trailing window of months and score the next one, so
month_build_job, the whole month as `sentiment pipeline` builds it, is meant for months
taken in order.
"""

import dagster as dg

from sentiment_assets.lineage import (
    PRIOR_ADJUSTED_MODEL,
    RAW_TWEETS,
    STG_TWEETS,
    TWEET_EMBEDDINGS,
    TWEETS_CLEAN,
    TWEETS_DROPPED,
)
from sentiment_assets.partitions import monthly_partitions

MONTH_DATA_SELECTION = dg.AssetSelection.assets(
    RAW_TWEETS, STG_TWEETS, TWEETS_CLEAN, TWEETS_DROPPED, TWEET_EMBEDDINGS
)

# A month's build: everything but the assets that answer an event (drift_sensor's requests).
MONTH_BUILD = dg.AssetSelection.all() - dg.AssetSelection.assets(PRIOR_ADJUSTED_MODEL)

month_data_job = dg.define_asset_job(
    "month_data_job",
    selection=MONTH_DATA_SELECTION,
    partitions_def=monthly_partitions,
    description="One month's data side: raw_tweets, the dbt models and their tests, "
    "tweet_embeddings. Months are independent here: launch several at once.",
    tags={"sentiment/job": "month-data"},
)

month_build_job = dg.define_asset_job(
    "month_build_job",
    selection=MONTH_BUILD,
    partitions_def=monthly_partitions,
    description="Everything `sentiment pipeline` builds for one month, data to champion. "
    "A month's models read the months before it: launch months oldest first.",
    tags={"sentiment/job": "month-build"},
)
