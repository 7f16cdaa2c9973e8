"""Fixtures for the behavioural model tests: models trained the way `sentiment_model` does it.

The pipeline reads labelled rows from `clean.tweets_clean`; here the same rows are rebuilt in
memory from the pure modules (generator -> ingestion -> cleaning -> de-duplication) so the
tests need no warehouse, Dagster or MLflow, yet exercise the real training code and the real
bundle round-trip (`save_bundle` -> `load_predictor`) that the CLI and the app serve from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentiment_assets.lib import synthetic
from sentiment_assets.lib.encoder import TextEncoder
from sentiment_assets.lib.model_bundle import (
    ModelCard,
    Predictor,
    data_fingerprint,
    load_predictor,
    save_bundle,
)
from sentiment_assets.lib.sources import load_month
from sentiment_assets.lib.text import clean_text, map_label
from sentiment_assets.lib.training import (
    EMBEDDING_LOGREG,
    TFIDF_LOGREG,
    FitResult,
    LogRegParams,
    fit_embedding_logreg,
    fit_tfidf_logreg,
    holdout_mask,
)

# The asset's defaults (sentiment_assets.defs.models.assets): same holdout share, same C/seed.
HOLDOUT_FRACTION = 0.1
PARAMS = LogRegParams(C=1.0, seed=0)
# Two undrifted months of the default generator: the demo champion's situation before the
# drift month. 1,500 tweets a month is the generator's (and the demo's) default size.
N_MONTHS = 2
TWEETS_PER_MONTH = 1500


@dataclass(frozen=True)
class TrainingSet:
    """Labelled, de-duplicated, cleaned rows in the pipeline's order (month, tweet_id)."""

    tweet_ids: list[str]
    months: list[date]
    texts: list[str]
    labels: np.ndarray
    embeddings: np.ndarray

    def subset(self, keep: np.ndarray) -> TrainingSet:
        index = np.flatnonzero(keep)
        return TrainingSet(
            tweet_ids=[self.tweet_ids[i] for i in index],
            months=[self.months[i] for i in index],
            texts=[self.texts[i] for i in index],
            labels=self.labels[index],
            embeddings=self.embeddings[index],
        )


@dataclass(frozen=True)
class TrainedModel:
    fit: FitResult
    predictor: Predictor


def training_config() -> synthetic.SyntheticConfig:
    base = synthetic.default_config()
    config = dataclasses.replace(base, tweets_per_month=TWEETS_PER_MONTH)
    # Guard the premise: if the default drift month ever moves into the first months, these
    # tests would silently train on drifted data and test something else.
    for month in synthetic.months(config)[:N_MONTHS]:
        assert config.drift_for(month) == synthetic.NO_DRIFT, f"{month} is drifted"
    return config


def labelled_rows(config: synthetic.SyntheticConfig, months: list[date]) -> pd.DataFrame:
    """Accepted rows -> label -> drop contradictory ids -> one copy per id -> cleaned text.

    Mirrors dbt's stg_tweets/tweets_clean: ids with two different labels lose every copy,
    exact duplicates keep the earliest copy, empty cleaned texts are dropped.
    """
    accepted = pd.concat(
        [load_month("synthetic", m, synthetic=config).accepted for m in months],
        ignore_index=True,
    )
    frame = accepted.assign(
        label=[map_label(v) for v in accepted["label_raw"]],
        text=[clean_text(t) for t in accepted["text"]],
    )
    frame = frame[frame["label"].notna() & frame["tweet_id"].notna()]
    n_labels = frame.groupby("tweet_id")["label"].nunique()
    contradictory = set(n_labels[n_labels > 1].index)
    frame = frame[~frame["tweet_id"].isin(contradictory) & (frame["text"] != "")]
    frame = frame.sort_values(["tweet_id", "created_at", "source_row"], kind="stable")
    frame = frame.drop_duplicates("tweet_id", keep="first")
    frame = frame.sort_values(["month", "tweet_id"], kind="stable").reset_index(drop=True)
    return frame.assign(label=frame["label"].astype(int))


def train_embedding_model(
    data: TrainingSet, encoder: TextEncoder, directory: Path, params: LogRegParams = PARAMS
) -> TrainedModel:
    holdout = holdout_mask(data.tweet_ids, HOLDOUT_FRACTION)
    fit = fit_embedding_logreg(data.embeddings, data.labels, holdout, params)
    card = _card(EMBEDDING_LOGREG, data, params, encoder)
    save_bundle(directory, card, fit.estimator)
    # Passing the encoder is what the asset does too; the predictor only accepts it when its
    # fingerprint matches the card's, so the bundle is still what decides the encoder.
    return TrainedModel(fit, load_predictor(directory, encoder=encoder))


def train_tfidf_model(
    data: TrainingSet, directory: Path, params: LogRegParams = PARAMS
) -> TrainedModel:
    holdout = holdout_mask(data.tweet_ids, HOLDOUT_FRACTION)
    fit = fit_tfidf_logreg(data.texts, data.labels, holdout, params)
    save_bundle(directory, _card(TFIDF_LOGREG, data, params, None), fit.estimator)
    return TrainedModel(fit, load_predictor(directory))


def _card(
    family: str, data: TrainingSet, params: LogRegParams, encoder: TextEncoder | None
) -> ModelCard:
    return ModelCard(
        family=family,
        trained_through=max(data.months).isoformat(),
        window_start=min(data.months).isoformat(),
        params=params.as_dict(),
        data_fingerprint=data_fingerprint(data.tweet_ids, data.labels),
        encoder=encoder.name if encoder is not None else None,
        encoder_fingerprint=encoder.fingerprint if encoder is not None else None,
    )


@pytest.fixture(scope="session")
def encoder() -> TextEncoder:
    # CPU pinned: the thresholds were checked on CPU embeddings, and fp16 autocast on a GPU
    # would change the numbers the reproducibility test compares.
    return TextEncoder(device="cpu")


@pytest.fixture(scope="module")
def training_set(encoder: TextEncoder) -> TrainingSet:
    config = training_config()
    frame = labelled_rows(config, synthetic.months(config)[:N_MONTHS])
    texts = frame["text"].tolist()
    return TrainingSet(
        tweet_ids=frame["tweet_id"].tolist(),
        months=frame["month"].tolist(),
        texts=texts,
        labels=frame["label"].to_numpy(dtype=int),
        embeddings=encoder.encode(texts),
    )


@pytest.fixture(scope="module")
def champion(
    training_set: TrainingSet, encoder: TextEncoder, tmp_path_factory: pytest.TempPathFactory
) -> TrainedModel:
    directory = tmp_path_factory.mktemp("models") / EMBEDDING_LOGREG
    return train_embedding_model(training_set, encoder, directory)


@pytest.fixture(scope="module")
def baseline(
    training_set: TrainingSet, tmp_path_factory: pytest.TempPathFactory
) -> TrainedModel:
    directory = tmp_path_factory.mktemp("models") / TFIDF_LOGREG
    return train_tfidf_model(training_set, directory)
