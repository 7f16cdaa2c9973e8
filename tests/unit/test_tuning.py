"""Hyperparameter search: trials on training rows only, one nested MLflow run per trial,
the same seed giving the same trials, and per-epoch pruning of the fine-tuned family."""

import random
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import optuna
import pytest
import torch
from mlflow.tracking import MlflowClient

from sentiment_assets.defs.models.training import TrainConfig
from sentiment_assets.lib.data.sampling import in_holdout
from sentiment_assets.lib.models.families import TrainingRows, family
from sentiment_assets.lib.models.params import FinetuneParams, LogRegParams
from sentiment_assets.lib.models.training import (
    EMBEDDING_LOGREG,
    FINETUNED_TRANSFORMER,
    TFIDF_LOGREG,
)
from sentiment_assets.lib.models.tuning import (
    TUNING_METRIC,
    MlflowTrialLogger,
    TrialRecord,
    TuneSettings,
    search,
    tune,
    tuning_split,
)

POSITIVE = ["love", "great", "happy", "awesome", "fun", "nice"]
NEGATIVE = ["hate", "awful", "sad", "terrible", "boring", "bad"]
FILLER = ["the", "movie", "today", "my", "phone", "game", "really", "so", "this", "weather"]


def noisy_tweets(n: int, seed: int) -> tuple[list[str], list[str], np.ndarray]:
    """Ids, texts and labels where a quarter of the sentiment words contradict the label, so
    the regularisation strength changes the validation score."""
    rng = random.Random(seed)
    ids, texts, labels = [], [], []
    for i in range(n):
        label = i % 2
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
        for _ in range(rng.randint(1, 2)):
            agrees = rng.random() < 0.75
            pool = POSITIVE if (label == 1) == agrees else NEGATIVE
            words.insert(rng.randrange(len(words) + 1), rng.choice(pool))
        ids.append(f"tweet-{seed}-{i}")
        texts.append(" ".join(words))
        labels.append(label)
    return ids, texts, np.asarray(labels)


@pytest.fixture(scope="module")
def window() -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    ids, texts, labels = noisy_tweets(400, seed=3)
    return ids, texts, labels, in_holdout(ids)


@pytest.fixture
def tracking(tmp_path: Path) -> Iterator[MlflowClient]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield MlflowClient(uri)
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(previous)


def tune_tfidf(window, settings: TuneSettings, on_trial=None):
    ids, texts, labels, holdout = window
    train = ~holdout
    validation = tuning_split(ids, holdout, settings.validation_fraction, settings.seed)[train]
    rows = TrainingRows(texts, labels, holdout).training_part(validation)
    return tune(family(TFIDF_LOGREG), rows, LogRegParams(min_df=1), settings, on_trial)


def test_the_tuning_split_is_carved_from_training_rows_only(window) -> None:
    ids, _, _, holdout = window
    split = tuning_split(ids, holdout, 0.25, seed=0)
    assert holdout.any() and split.any()
    assert not (split & holdout).any()
    share = split.sum() / (~holdout).sum()
    assert 0.15 < share < 0.35
    # The tweets decide, not the order they were loaded in; the seed picks another split.
    order = np.random.default_rng(0).permutation(len(ids))
    shuffled = tuning_split([ids[i] for i in order], holdout[order], 0.25, seed=0)
    assert {ids[i] for i in order[shuffled]} == {ids[i] for i in np.flatnonzero(split)}
    assert not np.array_equal(split, tuning_split(ids, holdout, 0.25, seed=1))


def test_three_trials_log_three_nested_runs_under_the_family_run(
    window, tracking: MlflowClient
) -> None:
    experiment_id = tracking.create_experiment("tuning-test")
    with mlflow.start_run(experiment_id=experiment_id, run_name="tfidf_logreg 2024-03") as parent:
        logger = MlflowTrialLogger(tracking, parent.info.run_id)
        result = tune_tfidf(window, TuneSettings(n_trials=3, seed=0), logger)
    children = tracking.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == len(result.trials) == 3
    by_trial = {int(run.data.tags["tuning_trial"]): run for run in children}
    assert sorted(by_trial) == [0, 1, 2]
    for record in result.trials:
        run = by_trial[record.number]
        assert run.info.status == "FINISHED"
        assert run.data.tags["trial_state"] == "COMPLETE"
        assert run.data.params == {k: str(v) for k, v in record.params.items()}
        assert run.data.metrics[f"val_{TUNING_METRIC}"] == pytest.approx(record.value)
    # Trial 0 is the defaults the search starts from.
    assert result.trials[0].params == {"C": 1.0, "ngram_max": 2, "min_df": 1}
    assert result.default_value == result.trials[0].value
    assert result.best_value == max(r.value for r in result.trials) >= result.default_value


def test_the_same_seed_gives_the_same_trials_and_best_params(window) -> None:
    first = tune_tfidf(window, TuneSettings(n_trials=4, seed=5))
    again = tune_tfidf(window, TuneSettings(n_trials=4, seed=5))
    other = tune_tfidf(window, TuneSettings(n_trials=4, seed=6))
    assert [(r.params, r.value) for r in first.trials] == [
        (r.params, r.value) for r in again.trials
    ]
    assert (first.best_params, first.best_value) == (again.best_params, again.best_value)
    assert [r.params for r in first.trials[1:]] != [r.params for r in other.trials[1:]]


def test_embedding_search_tunes_c_and_beats_a_crippling_default(window) -> None:
    _, _, labels, _ = window
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(labels), 16)) + np.outer(labels - 0.5, np.ones(16))
    validation = np.arange(len(labels)) % 4 == 0
    # C so small that every prediction is the majority class: any real search beats it.
    # Being outside the search space, optuna runs it as trial 0 all the same, with a warning.
    with pytest.warns(UserWarning, match="out of range"):
        result = tune(
            family(EMBEDDING_LOGREG),
            TrainingRows([""] * len(labels), labels, validation, vectors),
            LogRegParams(C=1e-6),
            TuneSettings(n_trials=5, seed=0),
        )
    assert result.trials[0].params == {"C": 1e-6}
    assert set(result.best_params) == {"C"}
    assert result.best_value > result.default_value + 0.2
    assert (result.n_train, result.n_validation) == ((~validation).sum(), validation.sum())


def test_a_trial_trailing_the_median_at_an_epoch_is_pruned_and_logged_as_killed(
    tracking: MlflowClient,
) -> None:
    # The fine-tuned search space with a scripted learning curve: from the third trial on,
    # a trial whose first epoch falls below the earlier trials' median stops there.
    curve = {0: [0.70, 0.72], 1: [0.60, 0.65], 2: [0.30, 0.90], 3: [0.80, 0.81]}

    def objective(trial: optuna.Trial, params: dict) -> float:
        assert set(params) == {"learning_rate", "epochs", "freeze_layers"}
        for epoch, score in enumerate(curve[trial.number], start=1):
            trial.report(score, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return curve[trial.number][-1]

    experiment_id = tracking.create_experiment("pruning-test")
    defaults = {"learning_rate": 1e-4, "epochs": 2, "freeze_layers": 2}
    with mlflow.start_run(experiment_id=experiment_id) as parent:
        logger = MlflowTrialLogger(tracking, parent.info.run_id)
        result = search(family(FINETUNED_TRANSFORMER), objective, defaults, TuneSettings(4), logger)
    states = [r.state for r in result.trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE"]
    assert result.trials[2].intermediate == {1: 0.30}
    assert (result.best_trial, result.best_value) == (3, 0.81)
    runs = tracking.search_runs([experiment_id], filter_string="tags.trial_state = 'PRUNED'")
    assert [run.info.status for run in runs] == ["KILLED"]
    epochs = tracking.get_metric_history(runs[0].info.run_id, f"val_{TUNING_METRIC}_epoch")
    assert [(m.step, m.value) for m in epochs] == [(1, 0.30)]


def test_fine_tuning_trials_report_every_epoch() -> None:
    _, texts, labels = noisy_tweets(96, seed=1)
    validation = np.arange(len(labels)) % 3 == 0
    base = FinetuneParams(batch_size=16, max_length=16, max_train_samples=32, device="cpu")
    records: list[TrialRecord] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = TrainingRows(texts, labels, validation)
        settings = TuneSettings(n_trials=2, seed=0)
        result = tune(family(FINETUNED_TRANSFORMER), rows, base, settings, records.append)
    finally:
        torch.set_num_threads(threads)
    assert records == result.trials and len(records) == 2
    for record in records:
        assert record.state == "COMPLETE"
        assert sorted(record.intermediate) == list(range(1, record.params["epochs"] + 1))
        assert record.value == record.intermediate[record.params["epochs"]]


def test_the_tune_config_is_part_of_sentiment_models_run_config() -> None:
    seen: list[TrainConfig] = []

    @dg.asset
    def sentiment_model(config: TrainConfig) -> None:
        seen.append(config)

    tune = {"enabled": True, "n_trials": 3, "seed": 4, "families": [TFIDF_LOGREG]}
    result = dg.materialize(
        [sentiment_model], run_config={"ops": {"sentiment_model": {"config": {"tune": tune}}}}
    )
    assert result.success
    settings = seen[0].tune.settings()
    assert (seen[0].tune.enabled, settings.n_trials, settings.seed) == (True, 3, 4)
    assert TrainConfig().tune.enabled is False
