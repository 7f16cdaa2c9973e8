"""Tiny real champions for the app tests: TF-IDF models in a throwaway MLflow registry.

The models go through the same path as the pipeline's (save_bundle, an MLflow run's `model/`
artifact, a registered version with family and month tags), just trained on a few hundred
synthetic tweets so that a version costs well under a second.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from sentiment_assets.lib.data.sampling import holdout_mask
from sentiment_assets.lib.data.synthetic import labelled_sample
from sentiment_assets.lib.encoding.encoder import TextEncoder
from sentiment_assets.lib.models.model_bundle import (
    ModelCard,
    data_fingerprint,
    save_bundle,
    write_card,
)
from sentiment_assets.lib.models.params import LogRegParams
from sentiment_assets.lib.models.training import (
    EMBEDDING_LOGREG,
    TFIDF_LOGREG,
    FitResult,
    fit_embedding_logreg,
    fit_tfidf_logreg,
)
from sentiment_assets.lib.settings import Settings, load_settings
from sentiment_assets.lib.versions import registry

MONTH = date(2024, 1, 1)


@dataclass
class Corpus:
    tweet_ids: list[str]
    texts: list[str]
    labels: np.ndarray


def synthetic_corpus(n: int = 400, seed: int = 11) -> Corpus:
    frame = labelled_sample(n, seed, MONTH)
    return Corpus(
        frame["tweet_id"].tolist(), frame["text"].tolist(), frame["label"].to_numpy(dtype=int)
    )


def home_settings(home: Path) -> Settings:
    return load_settings(
        {
            "SENTIMENT_HOME": str(home),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
            "SENTIMENT_DEVICE": "cpu",
        }
    )


def register_tfidf(
    settings: Settings, corpus: Corpus, C: float, month: date = MONTH
) -> registry.VersionInfo:
    """Train, bundle, log and register one TF-IDF version (not made champion)."""
    params = LogRegParams(C=C, seed=0, min_df=1)
    holdout = holdout_mask(corpus.tweet_ids, 0.1)
    fit = fit_tfidf_logreg(corpus.texts, corpus.labels, holdout, params)
    return _bundle_and_register(settings, corpus, month, TFIDF_LOGREG, params, fit)


def register_embedding(
    settings: Settings, corpus: Corpus, encoder: TextEncoder, month: date = MONTH
) -> registry.VersionInfo:
    """Train, bundle, log and register one embedding + logistic-regression version."""
    params = LogRegParams(C=1.0, seed=0)
    holdout = holdout_mask(corpus.tweet_ids, 0.1)
    fit = fit_embedding_logreg(encoder.encode(corpus.texts), corpus.labels, holdout, params)
    return _bundle_and_register(
        settings, corpus, month, EMBEDDING_LOGREG, params, fit, encoder=encoder
    )


def _bundle_and_register(
    settings: Settings,
    corpus: Corpus,
    month: date,
    family: str,
    params: LogRegParams,
    fit: FitResult,
    encoder: TextEncoder | None = None,
) -> registry.VersionInfo:
    card = ModelCard(
        family=family,
        trained_through=month,
        window_start=month,
        params=params.as_dict(),
        data_fingerprint=data_fingerprint(corpus.tweet_ids, corpus.labels),
        encoder=encoder.name if encoder else None,
        encoder_fingerprint=encoder.fingerprint if encoder else None,
        metrics={"validation": fit.validation},
    )
    with tempfile.TemporaryDirectory() as tmp:
        bundle = save_bundle(Path(tmp) / "bundle", card, fit.estimator)
        return _log_and_register(settings, bundle, card)


def register_broken(settings: Settings, month: date = MONTH) -> registry.VersionInfo:
    """A version whose weights file is garbage: loading it must fail, serving must not."""
    card = ModelCard(
        family=TFIDF_LOGREG,
        trained_through=month,
        window_start=month,
        params={},
        data_fingerprint="broken",
    )
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        bundle.mkdir()
        write_card(bundle, card)
        (bundle / "model.skops").write_bytes(b"this is not a zip file")
        return _log_and_register(settings, bundle, card)


def _log_and_register(settings: Settings, bundle: Path, card: ModelCard) -> registry.VersionInfo:
    # configure() points mlflow's process-wide tracking URI at this registry: put it back
    # afterwards, so tests that run later in the session log where they expect to.
    previous = mlflow.get_tracking_uri()
    try:
        experiment_id = registry.configure(
            settings.mlflow_tracking_uri, settings.mlflow_artifacts_dir
        )
        client = MlflowClient(settings.mlflow_tracking_uri)
        with mlflow.start_run(experiment_id=experiment_id, run_name=card.version) as run:
            return registry.register_bundle(
                client, run.info.run_id, run.info.artifact_uri, bundle, card
            )
    finally:
        mlflow.set_tracking_uri(previous)


def set_champion(settings: Settings, version: str) -> registry.VersionInfo:
    return registry.set_champion(MlflowClient(settings.mlflow_tracking_uri), version)
