"""Named jobs over one month, to launch or backfill by name (the UI, GraphQL, `prod up`).

month_data_job is the month's data side: it depends on no other month, so the runs of
different months can run side by side (in the prod profile, on different Celery workers).
month_build_job adds the monitoring that reads the champion and the months before (drift,
evaluation, the training decision), so it is meant for months taken in order. Neither
trains: a month trains when its training_decision says so (defs/models/decision.py).
"""

import dagster as dg

from sentiment_assets.lineage import (
    MODEL_CHALLENGER,
    MODEL_CHAMPION,
    PRIOR_ADJUSTED_MODEL,
    RAW_TWEETS,
    SENTIMENT_MODEL,
    STG_TWEETS,
    TWEET_EMBEDDINGS,
    TWEETS_CLEAN,
    TWEETS_DROPPED,
)

MONTH_DATA_SELECTION = dg.AssetSelection.assets(
    RAW_TWEETS, STG_TWEETS, TWEETS_CLEAN, TWEETS_DROPPED, TWEET_EMBEDDINGS
)

# Training and the promotion gate: retrain_job and follow_up_job, after a `train` decision.
RETRAIN_SELECTION = dg.AssetSelection.assets(SENTIMENT_MODEL, MODEL_CHALLENGER, MODEL_CHAMPION)
# What answers an event and never runs with a month: training (a decision's) and the prior
# adjustment (drift_sensor's).
EVENT_ANSWERS = RETRAIN_SELECTION | dg.AssetSelection.assets(PRIOR_ADJUSTED_MODEL)
# A month's build: its data and monitoring, up to the training decision.
MONTH_BUILD = dg.AssetSelection.all() - EVENT_ANSWERS

month_data_job = dg.define_asset_job(
    "month_data_job",
    selection=MONTH_DATA_SELECTION,
    description="One month's data side: raw_tweets, the dbt models and their tests, "
    "tweet_embeddings. Months are independent here: launch several at once.",
    tags={"sentiment/job": "month-data"},
)

month_build_job = dg.define_asset_job(
    "month_build_job",
    selection=MONTH_BUILD,
    description="One month's data and monitoring, as `sentiment pipeline` builds it: data, "
    "drift_report, model_evaluation, training_decision (training follows a `train` "
    "decision). A month is judged against the months before it: launch months oldest first.",
    tags={"sentiment/job": "month-build"},
)
