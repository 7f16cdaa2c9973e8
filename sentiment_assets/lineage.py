"""The asset keys of the lineage, named once: deps, selections, sensors and records use these.

raw_tweets -dbt-> stg_tweets -> tweets_clean (+ tweets_dropped) -> tweet_embeddings -> drift_report ->
sentiment_model -> model_challenger -> model_champion; model_evaluation scores month M+1;
drift_report + model_evaluation -> training_decision (train or keep: retrain_job follows a train);
prior_adjusted_model (on request only) adjusts the champion to a month's class prior.
Each constant is the name of the asset function that defines it (a test checks).
"""

RAW_TWEETS = "raw_tweets"
STG_TWEETS = "stg_tweets"
TWEETS_CLEAN = "tweets_clean"
TWEETS_DROPPED = "tweets_dropped"
TWEET_EMBEDDINGS = "tweet_embeddings"
USER_FEEDBACK = "user_feedback"
DRIFT_REPORT = "drift_report"
SENTIMENT_MODEL = "sentiment_model"
MODEL_EVALUATION = "model_evaluation"
MODEL_CHALLENGER = "model_challenger"
MODEL_CHAMPION = "model_champion"
PRIOR_ADJUSTED_MODEL = "prior_adjusted_model"
TRAINING_DECISION = "training_decision"
