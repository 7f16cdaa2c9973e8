"""Warehouse access: schema, short-lived connections, idempotent month writes.

The warehouse is a DuckDB file (the embedded profile) or a lake of Parquet files
(lib/store/lake.py); `connect` opens either, and the write helpers here work on both.

DuckDB lets one process hold a file read-write at a time. Connections here are opened per
unit of work and closed at once, and opening retries for a while when another process (dbt,
a second run) holds the lock, instead of failing a run on a brief overlap.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from sentiment_assets.lib.store.damage import is_duckdb_damage, warehouse_damaged
from sentiment_assets.lib.store.lake import Lake, LakeConnection, connect_lake

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

LOCK_RETRY_SECONDS = 120.0
# DuckDB's buffer pool keeps the pages a process reads and writes up to 80% of the
# machine's memory by default, so a process grew with the data it touched: embedding a
# million-tweet month peaked at 2.8 GB, reading 200,000 of its vectors back at 2.6 GB. Past
# this cap DuckDB evicts and spills to disk instead (measured: 0.9 GB and 1.6 GB).
MEMORY_LIMIT = "1GB"


def is_lake(con: object) -> bool:
    return isinstance(con, LakeConnection)


def scratch_parent(location: Path | Lake) -> Path:
    """A folder on the warehouse's own disk for a writer's staging files."""
    return location.scratch_dir if isinstance(location, Lake) else Path(location).parent


@contextmanager
def connect(
    location: Path | str | Lake,
    read_only: bool = False,
    lock_wait_seconds: float = LOCK_RETRY_SECONDS,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection to the warehouse: the DuckDB file (waiting up to
    `lock_wait_seconds` for another writer's lock), or a lake connection, which never waits
    (see lib/store/lake.py).

    A damaged file (on opening, or on the first damaged block a query reads) raises
    lib.store.damage.StoreDamaged, naming the file and the next step.
    """
    root = location.root if isinstance(location, Lake) else Path(location)
    try:
        if isinstance(location, Lake):
            with connect_lake(location, DDL) as con:
                yield con  # type: ignore[misc]  # LakeConnection answers like a DuckDB one
            return
        with _duckdb_connection(root, read_only, lock_wait_seconds) as con:
            yield con
    except duckdb.Error as error:
        if is_duckdb_damage(error):
            raise warehouse_damaged(root, error) from error
        raise


@contextmanager
def _duckdb_connection(
    path: Path, read_only: bool, lock_wait_seconds: float
) -> Iterator[duckdb.DuckDBPyConnection]:
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_wait_seconds
    delay = 0.1
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        yield con
    finally:
        con.close()


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    if not is_lake(con):  # a lake connection is made from the DDL
        con.execute(DDL)


def replace_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    where: str,
    params: Sequence[object],
) -> None:
    """Delete the rows matching `where`, then insert `frame`, in one transaction.

    Re-materialising a month must replace it, never append to it: counts may not double.
    """
    if isinstance(con, LakeConnection):
        con.replace_rows(table, frame, where, params)
        return
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {table} WHERE {where}", list(params))
        if len(frame):
            con.register("incoming_rows", frame)
            columns = ", ".join(f'"{c}"' for c in frame.columns)
            con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming_rows")
            con.unregister("incoming_rows")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def append_rows(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Insert `frame` by column name (for append-only history such as promotions)."""
    replace_rows(con, table, frame, "false", [])


def replace_month(
    con: duckdb.DuckDBPyConnection, table: str, month: date, frame: pd.DataFrame
) -> None:
    replace_rows(con, table, frame, "month = ?", [month])


def vectors_to_arrow(vectors: np.ndarray) -> pa.Array:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    offsets = np.arange(0, (n + 1) * dim, dim, dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(vectors.reshape(-1)))


def arrow_to_vectors(column: pa.ChunkedArray | pa.Array, dim: int | None = None) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column) == 0:
        return np.zeros((0, dim or 0), dtype=np.float32)
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(len(column), -1)
