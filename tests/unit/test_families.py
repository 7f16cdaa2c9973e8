"""The family registry: the built-in three in training order, one name per family, a clear
error for an unknown one, and each family's parameters from the same run knobs."""

import pytest

from sentiment_assets.lib.models.families import family, family_names, register_family
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
