"""Hyperparameter search for the model families (optuna), on the training rows only.

Trials are scored on a *tuning split*: a seeded share of the window's training rows, chosen
by a hash of the tweet id salted with the seed. The platform's hash holdout (what the
promotion gate, calibration and evaluation use) is never in it, and nothing of the next
month is seen, so a tuned model's holdout score is as honest as an untuned one's.

The first trial is always the family's current defaults, so the search can only match or
beat them on the tuning split, and the gain over the defaults is read off the same study.
The sampler is TPE with a fixed seed and the objectives are deterministic, so the same seed
and data give the same trials and the same best parameters (a timeout can cut a study short,
which is the one thing that makes it depend on the machine).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

if TYPE_CHECKING:
    from sentiment_assets.lib.models.families import Family, TrainingRows

# What a trial maximises: the score the challenger choice and the promotion gate compare.
TUNING_METRIC = "macro_f1"
# The fine-tuned family is pruned once this many trials have finished: few trials are
# affordable on a CPU, so waiting for optuna's default of five would prune nothing.
PRUNER_STARTUP_TRIALS = 2


@dataclass(frozen=True)
class TuneSettings:
    n_trials: int = 20
    # None: no limit. A timeout ends the study after the running trial.
    timeout_seconds: float | None = None
    seed: int = 0
    # Share of the training rows (outside the holdout) that trials are scored on.
    validation_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ValueError("n_trials must be >= 1")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be in (0, 1)")


@dataclass(frozen=True)
class TrialRecord:
    family: str
    number: int
    params: dict[str, Any]
    # optuna's state name: COMPLETE, PRUNED or FAIL.
    state: str
    value: float | None
    # Validation score per epoch (the fine-tuned family only), as reported to the pruner.
    intermediate: dict[int, float]
    started_ms: int
    finished_ms: int


@dataclass(frozen=True)
class TuningResult:
    family: str
    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    # Trial 0: the defaults the search started from, scored on the same split.
    default_value: float
    trials: list[TrialRecord] = field(default_factory=list)
    n_train: int = 0
    n_validation: int = 0

    def card_params(self, settings: TuneSettings) -> dict[str, Any]:
        """What a tuned model's card records next to the parameters it was trained with."""
        return {
            "tuned_by": "optuna-tpe",
            "tune_seed": settings.seed,
            "tune_trials": len(self.trials),
            "tune_best_trial": self.best_trial,
            f"tune_val_{TUNING_METRIC}": round(self.best_value, 6),
            f"tune_default_val_{TUNING_METRIC}": round(self.default_value, 6),
        }


def tuning_split(
    tweet_ids: list[str], holdout: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """Rows trials are scored on: about ``fraction`` of the rows outside ``holdout``.

    Chosen by a hash of (seed, tweet id), so the split depends on the tweets and the seed
    alone, not on the order rows were loaded in; holdout rows are never part of it.
    """
    cutoff = round(fraction * 10_000)
    salt = f"tune:{seed}:"
    picked = np.fromiter(
        (
            int(hashlib.md5((salt + t).encode()).hexdigest()[:8], 16) % 10_000 < cutoff
            for t in tweet_ids
        ),
        dtype=bool,
        count=len(tweet_ids),
    )
    return picked & ~np.asarray(holdout, dtype=bool)


def searched_defaults(family: Family, params: object) -> dict[str, Any]:
    """The searched knobs' current values: what trial 0 runs."""
    values = asdict(params)
    return {name: values[name] for name in family.searched_knobs}


def _record(family: str, trial: optuna.trial.FrozenTrial) -> TrialRecord:
    started = trial.datetime_start.timestamp() if trial.datetime_start else time.time()
    finished = trial.datetime_complete.timestamp() if trial.datetime_complete else time.time()
    return TrialRecord(
        family=family,
        number=trial.number,
        params=dict(trial.params),
        state=trial.state.name,
        value=trial.value,
        intermediate=dict(trial.intermediate_values),
        started_ms=int(started * 1000),
        finished_ms=int(finished * 1000),
    )


def search(
    family: Family,
    objective: Callable[[optuna.Trial, dict[str, Any]], float],
    defaults: Mapping[str, Any],
    settings: TuneSettings,
    on_trial: Callable[[TrialRecord], None] | None = None,
) -> TuningResult:
    """Run the study: trial 0 is ``defaults``, then TPE (seeded) proposes the rest.

    ``objective(trial, params)`` returns the validation score of a model trained with
    ``params`` (it may report per-epoch scores and raise optuna.TrialPruned).
    ``on_trial`` sees every finished trial, pruned ones included.
    """
    # Our own log lines and MLflow runs say what each trial did; optuna's INFO lines repeat it.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=settings.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS),
    )
    study.enqueue_trial(dict(defaults))
    records: list[TrialRecord] = []

    def run_trial(trial: optuna.Trial) -> float:
        return objective(trial, family.search_space(trial))

    def finished(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        record = _record(family.name, trial)
        records.append(record)
        if on_trial is not None:
            on_trial(record)

    study.optimize(
        run_trial,
        n_trials=settings.n_trials,
        timeout=settings.timeout_seconds,
        callbacks=[finished],
    )
    complete = [r for r in records if r.state == "COMPLETE"]
    if not complete:
        raise RuntimeError(f"no {family.name} trial completed")
    # The earliest of equal scores wins, so the defaults are kept unless something beats them.
    best = max(complete, key=lambda r: (r.value, -r.number))
    return TuningResult(
        family=family.name,
        best_params=best.params,
        best_value=float(best.value),
        best_trial=best.number,
        default_value=float(records[0].value) if records[0].state == "COMPLETE" else float("nan"),
        trials=records,
    )


def tune(
    family: Family,
    train: TrainingRows,
    base: object,
    settings: TuneSettings,
    on_trial: Callable[[TrialRecord], None] | None = None,
) -> TuningResult:
    """Search ``family``'s space from ``base``: trials fit on ``train``'s rows outside its
    holdout and are scored on its holdout (the tuning split, never the platform's)."""
    defaults = searched_defaults(family, base)
    result = search(
        family, family.objective(train, base, TUNING_METRIC), defaults, settings, on_trial
    )
    validation = np.asarray(train.holdout, dtype=bool)
    return replace(result, n_train=int((~validation).sum()), n_validation=int(validation.sum()))


class MlflowTrialLogger:
    """Logs each trial as an MLflow run nested under ``parent_run_id`` (the family's
    training run): its parameters, validation score (per epoch too), state and duration."""

    def __init__(self, client: MlflowClient, parent_run_id: str) -> None:
        self.client = client
        self.parent_run_id = parent_run_id
        self.experiment_id = client.get_run(parent_run_id).info.experiment_id

    def __call__(self, record: TrialRecord) -> None:
        run = self.client.create_run(
            self.experiment_id,
            start_time=record.started_ms,
            tags={
                MLFLOW_PARENT_RUN_ID: self.parent_run_id,
                MLFLOW_RUN_NAME: f"{record.family} trial {record.number}",
                "family": record.family,
                "tuning_trial": str(record.number),
                "trial_state": record.state,
            },
        )
        run_id = run.info.run_id
        for name, value in record.params.items():
            self.client.log_param(run_id, name, value)
        for epoch, value in sorted(record.intermediate.items()):
            self.client.log_metric(
                run_id,
                f"val_{TUNING_METRIC}_epoch",
                value,
                step=epoch,
                timestamp=record.finished_ms,
            )
        if record.value is not None:
            self.client.log_metric(
                run_id, f"val_{TUNING_METRIC}", record.value, timestamp=record.finished_ms
            )
        self.client.log_metric(
            run_id, "trial_seconds", (record.finished_ms - record.started_ms) / 1000
        )
        status = {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}.get(record.state, "FAILED")
        self.client.set_terminated(run_id, status=status, end_time=record.finished_ms)
