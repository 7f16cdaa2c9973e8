"""The warehouse's tables: one DDL that both implementations (lib/store/warehouse.py) are made
from."""

DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS features;
CREATE SCHEMA IF NOT EXISTS metrics;
CREATE TABLE IF NOT EXISTS raw.tweets (
    tweet_id VARCHAR, created_at TIMESTAMP, month DATE, text VARCHAR, label_raw VARCHAR,
    user_name VARCHAR, source VARCHAR, source_row BIGINT, ingested_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS raw.rejected_tweets (
    month DATE, source VARCHAR, source_row BIGINT, raw_record VARCHAR, reason VARCHAR,
    ingested_at TIMESTAMP
);
-- One row per (month, file) a raw_tweets load took rows from: rows = accepted + rejected,
-- status loaded / loaded_with_rejects / all_rejected, reason = rejects by reason. Replaced per
-- month with raw.tweets. fingerprint is NULL for the synthetic generator.
CREATE TABLE IF NOT EXISTS raw.ingested_files (
    month DATE, file VARCHAR, fingerprint VARCHAR, rows BIGINT, accepted BIGINT,
    rejected BIGINT, status VARCHAR, reason VARCHAR, ingested_at TIMESTAMP
);
-- One row per version (file name, fingerprint) of a landing file that new_data_sensor follows:
-- requested -> loaded -> built (its rows reached the month's clean tables), or failed (retried
-- with backoff) -> quarantined; superseded by a newer version, or removed. months is the
-- comma-separated list of the months it is built for; run_ids are its latest attempt's runs.
CREATE TABLE IF NOT EXISTS raw.landing_files (
    file VARCHAR, fingerprint VARCHAR, months VARCHAR, state VARCHAR, attempts INTEGER,
    max_attempts INTEGER, reason VARCHAR, run_ids VARCHAR, next_attempt_at TIMESTAMP,
    updated_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS features.embedding_cache (
    encoder VARCHAR, text_hash VARCHAR, embedding FLOAT[], created_at TIMESTAMP,
    PRIMARY KEY (encoder, text_hash)
);
CREATE TABLE IF NOT EXISTS features.tweet_embeddings (
    month DATE, tweet_id VARCHAR, encoder VARCHAR, text_hash VARCHAR
);
CREATE TABLE IF NOT EXISTS metrics.training_runs (
    model_family VARCHAR, model_version VARCHAR, trained_through DATE, window_start DATE,
    n_train BIGINT, n_validation BIGINT, val_accuracy DOUBLE, val_macro_f1 DOUBLE,
    train_seconds DOUBLE, inference_ms_per_tweet DOUBLE, model_uri VARCHAR,
    mlflow_run_id VARCHAR, bundle_version VARCHAR, dagster_run_id VARCHAR, created_at TIMESTAMP
);
-- The holdout calibration of each version (lib/stats/calibration.py): temperature, ECE before and
-- after, and the reliability diagram's bins as JSON ({"before": [...], "after": [...]}).
ALTER TABLE metrics.training_runs ADD COLUMN IF NOT EXISTS calibration_method VARCHAR;
ALTER TABLE metrics.training_runs ADD COLUMN IF NOT EXISTS temperature DOUBLE;
ALTER TABLE metrics.training_runs ADD COLUMN IF NOT EXISTS ece_before DOUBLE;
ALTER TABLE metrics.training_runs ADD COLUMN IF NOT EXISTS ece_after DOUBLE;
ALTER TABLE metrics.training_runs ADD COLUMN IF NOT EXISTS reliability VARCHAR;
CREATE TABLE IF NOT EXISTS metrics.model_evaluations (
    model_family VARCHAR, model_version VARCHAR, trained_through DATE, eval_month DATE,
    eval_set VARCHAR, n BIGINT, accuracy DOUBLE, macro_f1 DOUBLE,
    precision_negative DOUBLE, recall_negative DOUBLE,
    precision_positive DOUBLE, recall_positive DOUBLE,
    dagster_run_id VARCHAR, created_at TIMESTAMP
);
-- The 95% interval of eval_set 'estimated' rows (lib/stats/performance_estimation.py); NULL on
-- rows measured against labels.
ALTER TABLE metrics.model_evaluations ADD COLUMN IF NOT EXISTS accuracy_lower DOUBLE;
ALTER TABLE metrics.model_evaluations ADD COLUMN IF NOT EXISTS accuracy_upper DOUBLE;
ALTER TABLE metrics.model_evaluations ADD COLUMN IF NOT EXISTS macro_f1_lower DOUBLE;
ALTER TABLE metrics.model_evaluations ADD COLUMN IF NOT EXISTS macro_f1_upper DOUBLE;
-- One row per (version, month, slice) with n > 0 (lib/stats/slices.py); a tweet counts in every
-- slice it matches.
CREATE TABLE IF NOT EXISTS metrics.slice_evaluations (
    model_family VARCHAR, model_version VARCHAR, trained_through DATE, eval_month DATE,
    slice VARCHAR, n BIGINT, accuracy DOUBLE, macro_f1 DOUBLE, dagster_run_id VARCHAR,
    created_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS metrics.promotions (
    model_version VARCHAR, model_family VARCHAR, trained_through DATE, decision VARCHAR,
    champion_version VARCHAR, champion_score DOUBLE, challenger_score DOUBLE, metric VARCHAR,
    margin DOUBLE, eval_month DATE, n_eval BIGINT, reason VARCHAR, dagster_run_id VARCHAR,
    created_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS metrics.drift_reports (
    month DATE, reference VARCHAR, statistic VARCHAR, kind VARCHAR, value DOUBLE,
    threshold DOUBLE, p_value DOUBLE, drifted BOOLEAN, severity VARCHAR, detail VARCHAR,
    champion_version VARCHAR, dagster_run_id VARCHAR, created_at TIMESTAMP
);
-- One row per retraining decision, train or keep (lib/versions/training_decision.py): the
-- policy, its reasons, and the inputs it read (statistics as JSON, accuracies, the
-- champion's age); decision_key is the run key a training for it is requested under.
CREATE TABLE IF NOT EXISTS metrics.training_decisions (
    month DATE, policy VARCHAR, decision VARCHAR, reasons VARCHAR, families VARCHAR,
    follow_up_families VARCHAR, window_start DATE, window_months INTEGER,
    drifted_statistics VARCHAR, statistics VARCHAR, reference_accuracy DOUBLE,
    realised_accuracy DOUBLE, estimated_accuracy DOUBLE, champion_version VARCHAR,
    champion_age_months INTEGER, labelled_rows BIGINT, thresholds VARCHAR,
    decision_key VARCHAR, dagster_run_id VARCHAR, created_at TIMESTAMP
);
"""
