"""The family registry: the built-in three in training order, one name per family, a clear
error for an unknown one, and each family's parameters from the same run knobs."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sentiment_assets.lib.models.families import family, family_names, register_family
from sentiment_assets.lib.models.families.logreg import TFIDF_ONLY_KNOBS
from sentiment_assets.lib.models.fitting import TrainingData, fit_family
from sentiment_assets.lib.models.params import FinetuneParams, LogRegParams
from sentiment_assets.lib.models.training import (
    EMBEDDING_LOGREG,
    FINETUNED_TRANSFORMER,
    TFIDF_LOGREG,
)


def test_the_built_in_families_in_training_order() -> None:
    assert family_names() == [TFIDF_LOGREG, EMBEDDING_LOGREG, FINETUNED_TRANSFORMER]
    assert family_names(fast=True) == [TFIDF_LOGREG, EMBEDDING_LOGREG]
    assert family_names(fast=False) == [FINETUNED_TRANSFORMER]
    assert [family(n).needs_vectors for n in family_names()] == [False, True, False]
    assert [family(n).uses_encoder for n in family_names()] == [False, True, True]


def test_a_name_is_registered_once_and_an_unknown_one_is_named() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_family(family(TFIDF_LOGREG))
    with pytest.raises(KeyError, match="unknown model family 'nope'; known: "):
        family("nope")


def test_each_family_takes_its_own_knobs_from_the_run() -> None:
    knobs = {"seed": 4, "device": "cpu", "C": 0.5, "finetune_epochs": 2, "finetune_batch_size": 8}
    assert family(TFIDF_LOGREG).params(knobs) == LogRegParams(C=0.5, seed=4)
    finetune = family(FINETUNED_TRANSFORMER).params(knobs)
    assert finetune == FinetuneParams(epochs=2, batch_size=8, seed=4, device="cpu")


def test_the_embedding_family_logs_no_tf_idf_parameters_but_keeps_its_card() -> None:
    params = LogRegParams()
    embedding, tfidf = family(EMBEDDING_LOGREG), family(TFIDF_LOGREG)
    assert set(embedding.mlflow_params(params)) == {"C", "max_iter", "seed"}
    assert set(tfidf.mlflow_params(params)) == set(params.as_dict())
    # The card, and so the version id, is what it always was.
    assert embedding.card_params(params) == params.as_dict()


def test_an_embedding_fit_logs_to_mlflow_no_tf_idf_parameter(tmp_path) -> None:
    """The parameters training logs (FamilyFit.mlflow_params), through a real fit and a real
    MLflow run: none of the TF-IDF-only knobs, whatever the run's knobs say."""
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1], 40)
    frame = pd.DataFrame(
        {"tweet_id": [f"t{i}" for i in range(80)], "text": ["x"] * 80, "label": labels}
    )
    vectors = rng.normal(size=(80, 8)).astype(np.float32) + labels[:, None]
    data = TrainingData(
        month=date(2024, 1, 1),
        window=[date(2024, 1, 1)],
        frame=frame,
        vectors=vectors,
        holdout=np.arange(80) % 5 == 0,
    )
    fitted = fit_family(family(EMBEDDING_LOGREG), data, {"seed": 1, "ngram_max": 3})
    # A client of its own store: the fluent API would reuse whichever experiment an earlier
    # test of this process made active, in another store.
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("families"))
    for name, value in fitted.mlflow_params.items():
        client.log_param(run.info.run_id, name, value)
    logged = client.get_run(run.info.run_id).data.params
    assert set(logged) == {"C", "max_iter", "seed"}
    assert not set(TFIDF_ONLY_KNOBS) & set(logged)
