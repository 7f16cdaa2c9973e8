"""The fine-tuned transformer family: the text encoder with a two-way head, trained end to
end on the raw texts; safetensors weights, served on ONNX Runtime where the runtime says so.

torch (and optuna) are imported only where a model is built, read or tuned: loading the
Dagster code location or the app must not pay for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sentiment_assets.lib.models.families.base import Objective, Progress, TrainingRows
from sentiment_assets.lib.models.params import FinetuneParams
from sentiment_assets.lib.models.training import (
    FINETUNED_TRANSFORMER,
    FitResult,
    fit_finetuned_transformer,
)
from sentiment_assets.lib.stats.metrics import classification_metrics

if TYPE_CHECKING:
    import optuna

    from sentiment_assets.lib.encoding.encoder_choice import ServingRuntime

# A run's knobs `finetune_<name>` set FinetuneParams' <name>.
FINETUNE_KNOBS = (
    "epochs",
    "max_train_samples",
    "max_length",
    "learning_rate",
    "freeze_layers",
    "batch_size",
    "cpu_budget_seconds",
)
# Freezing more layers than the smallest supported encoder (MiniLM-L6) has would fail.
MAX_FROZEN_LAYERS = 4


class FinetunedTransformer:
    name = FINETUNED_TRANSFORMER
    short_name = "finetuned"
    needs_vectors = False
    uses_encoder = True
    # 25 s on a quiet 2-core CPU in bench_retrain_latency, minutes under load: a drift
    # retrain serves the fast families' champion first and trains this one after.
    fast = False
    searched_knobs = ("learning_rate", "epochs", "freeze_layers")

    def params(self, knobs: Mapping[str, Any]) -> FinetuneParams:
        chosen = {n: knobs[f"finetune_{n}"] for n in FINETUNE_KNOBS if f"finetune_{n}" in knobs}
        return FinetuneParams(
            **chosen, seed=knobs.get("seed", FinetuneParams.seed), device=knobs.get("device")
        )

    def card_params(self, params: FinetuneParams) -> dict[str, Any]:
        return {k: v for k, v in params.__dict__.items() if v is not None}

    def mlflow_params(self, params: FinetuneParams) -> dict[str, Any]:
        return self.card_params(params)

    def search_space(self, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 1e-5, 5e-4, log=True),
            "epochs": trial.suggest_int("epochs", 1, 3),
            "freeze_layers": trial.suggest_int("freeze_layers", 0, MAX_FROZEN_LAYERS),
        }

    def objective(self, train: TrainingRows, base: FinetuneParams, metric: str) -> Objective:
        """Each epoch's validation score goes to the pruner, which stops a trial trailing
        the median of earlier trials at the same epoch."""
        # Only a search needs these; serving and plain training never import them.
        import optuna

        from sentiment_assets.lib.models.finetune import FinetunedClassifier

        texts = np.asarray(train.texts, dtype=object)
        labels = np.asarray(train.labels, dtype=int)
        validation = train.holdout
        train_texts, val_texts = texts[~validation].tolist(), texts[validation].tolist()

        def score(trial: optuna.Trial, params: dict[str, Any]) -> float:
            finetune = replace(base, **params)
            model = FinetunedClassifier(train.encoder_dir, device=finetune.device)
            scores: list[float] = []

            def epoch_end(epoch: int) -> None:
                proba = model.predict_proba(val_texts)
                scores.append(classification_metrics(labels[validation], proba)[metric])
                trial.report(scores[-1], epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"epoch {epoch}: {scores[-1]:.4f} below the median")

            model.fit(train_texts, labels[~validation], finetune, on_epoch_end=epoch_end)
            return scores[-1]

        return score

    def fit(
        self, rows: TrainingRows, params: FinetuneParams, progress: Progress | None
    ) -> FitResult:
        return fit_finetuned_transformer(
            rows.texts, rows.labels, rows.holdout, params, rows.encoder_dir, progress=progress
        )

    def save(self, estimator: Any, directory: Path) -> None:
        estimator.save(directory)

    def load(self, directory: Path, device: str | None, runtime: ServingRuntime | None) -> Any:
        from sentiment_assets.lib.models.finetune import WEIGHTS_FILE, FinetunedClassifier

        model = FinetunedClassifier.load(directory, device=device)
        if runtime is None:
            return model
        from sentiment_assets.lib.models.onnx_finetuned import serving_finetuned

        return serving_finetuned(model, directory / WEIGHTS_FILE, runtime)

    def predict_proba(
        self, model: Any, cleaned_texts: list[str], vectors: np.ndarray | None
    ) -> np.ndarray:
        return model.predict_proba(cleaned_texts)

    def runtime(self, model: Any, encoder: Any) -> str:
        return getattr(model, "runtime", "torch")
