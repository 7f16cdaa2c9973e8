from dataclasses import replace

import pytest

from sentiment_assets.lib.models.finetune_budget import (
    CPU_BUDGET,
    FIXED,
    WHOLE_WINDOW,
    TrainingSize,
    training_size,
)
from sentiment_assets.lib.models.params import FinetuneParams

# 60 s at 10 tweets/s: 600 sample passes.
BUDGET = FinetuneParams(cpu_budget_seconds=60.0, cpu_passes_per_second=10.0, budget_max_epochs=3)


def test_without_a_budget_the_fixed_sample_cap_applies_on_any_device():
    for device in ("cpu", "cuda"):
        assert training_size(5000, FinetuneParams(), device) == TrainingSize(800, 1, FIXED)


def test_cuda_trains_the_whole_window():
    assert training_size(50_000, BUDGET, "cuda") == TrainingSize(None, 1, WHOLE_WINDOW)


def test_a_window_larger_than_the_budget_is_subsampled_and_trained_once():
    assert training_size(5000, BUDGET, "cpu") == TrainingSize(600, 1, CPU_BUDGET, 60.0)


def test_a_small_window_is_trained_whole_for_as_many_epochs_as_fit():
    assert training_size(250, BUDGET, "cpu") == TrainingSize(250, 2, CPU_BUDGET, 50.0)
    assert training_size(100, BUDGET, "cpu").epochs == 3  # capped at budget_max_epochs
    assert training_size(600, BUDGET, "cpu").epochs == 1


def test_the_size_depends_on_the_inputs_alone():
    assert training_size(5000, BUDGET, "cpu") == training_size(5000, BUDGET, "cpu")
    doubled = replace(BUDGET, cpu_budget_seconds=120.0)
    assert training_size(5000, doubled, "cpu").samples == 1200


def test_bad_budgets_are_refused():
    with pytest.raises(ValueError, match="cpu_budget_seconds must be > 0"):
        FinetuneParams(cpu_budget_seconds=0)
    with pytest.raises(ValueError, match="cpu_passes_per_second"):
        FinetuneParams(cpu_passes_per_second=0)
    with pytest.raises(ValueError, match="no training data"):
        training_size(0, BUDGET, "cpu")


def budgeted_fit(per_class: int, budget_seconds: float, passes_per_second: float) -> dict:
    """The train_stats of a small CPU fit of `per_class` tweets of each label under a budget."""
    from sentiment_assets.lib.models.finetune import FinetunedClassifier

    texts = [f"what a lovely day number {i}" for i in range(per_class)]
    texts += [f"what an awful day number {i}" for i in range(per_class)]
    labels = [1] * per_class + [0] * per_class
    params = FinetuneParams(
        cpu_budget_seconds=budget_seconds,
        cpu_passes_per_second=passes_per_second,
        batch_size=16,
        max_length=16,
        freeze_layers=5,
        device="cpu",
    )
    return FinetunedClassifier(device="cpu").fit(texts, labels, params)


def test_fit_trains_on_the_budgeted_size_and_records_it():
    # 60 s at 0.8 tweets/s: 48 of the 120 tweets, once (far quicker in fact, so no stop).
    stats = budgeted_fit(60, budget_seconds=60.0, passes_per_second=0.8)
    assert stats["samples"] == 48 and stats["steps"] == 3
    assert stats["size"] == {
        "samples": 48,
        "epochs": 1,
        "basis": CPU_BUDGET,
        "predicted_seconds": 60.0,
    }
    assert stats["measured_passes_per_second"] is None  # 3 steps: too short to time
    assert stats["stopped_at_budget"] is False


def test_a_machine_slower_than_the_calibration_stops_when_the_budget_is_spent():
    from sentiment_assets.lib.models.training import size_note

    # The calibration claims 1,800 passes (600 tweets, 3 epochs) in 0.3 s: no CPU does that.
    stats = budgeted_fit(300, budget_seconds=0.3, passes_per_second=6000.0)
    planned_steps = 3 * -(-600 // 16)  # 3 epochs of 38 batches
    assert stats["size"]["samples"] == 600 and stats["size"]["epochs"] == 3
    assert stats["stopped_at_budget"] is True
    assert stats["steps"] < planned_steps
    assert size_note(stats).startswith("600 of 600 tweets x 3 epoch(s), cpu budget; stopped at")
