"""Fine-tuned transformer family: learns, round-trips through safetensors, is reproducible.

Everything runs on CPU with a tiny budget (few steps, short sequences, most layers frozen)
so the whole file stays well under a minute on two busy cores.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from sentiment_assets.lib.models.finetune import FinetunedClassifier, stratified_subsample
from sentiment_assets.lib.models.params import FinetuneParams

THINGS = [
    "phone", "movie", "song", "pizza", "game", "book", "weather", "coffee", "show",
    "album", "car", "hotel", "team", "app", "update", "concert", "burger", "class",
]  # fmt: skip
POSITIVE = [
    "i love this {t}",
    "this {t} is amazing",
    "best {t} ever, so happy",
    "what a wonderful {t} :)",
    "really enjoying the new {t}",
    "the {t} made my day, great stuff",
    "so good! loving this {t}",
]
NEGATIVE = [
    "i hate this {t}",
    "this {t} is terrible",
    "worst {t} ever, so sad",
    "what an awful {t} :(",
    "really annoyed by the new {t}",
    "the {t} ruined my day, horrible stuff",
    "so bad! hating this {t}",
]

# Small enough to be quick, large enough that a 4-layer-frozen MiniLM clearly learns.
FAST = FinetuneParams(
    epochs=3,  # 13 batches an epoch: max_steps must stop training mid-epoch
    max_steps=12,
    batch_size=16,
    learning_rate=3e-4,
    max_length=32,
    freeze_layers=4,
    warmup_ratio=0.1,
    seed=0,
    device="cpu",
)


def templated(n_per_class: int, seed: int) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    rows = [(rng.choice(POSITIVE).format(t=rng.choice(THINGS)), 1) for _ in range(n_per_class)]
    rows += [(rng.choice(NEGATIVE).format(t=rng.choice(THINGS)), 0) for _ in range(n_per_class)]
    rng.shuffle(rows)
    return [t for t, _ in rows], [y for _, y in rows]


@pytest.fixture(scope="module", autouse=True)
def single_thread() -> Iterator[None]:
    # These runs are tiny; on a small shared CI box, OpenMP threads fighting other processes
    # made this file ~5x slower than one thread does. Restored so other modules are unaffected.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def train_data() -> tuple[list[str], list[int]]:
    return templated(100, seed=1)


@pytest.fixture(scope="module")
def heldout_data() -> tuple[list[str], list[int]]:
    return templated(50, seed=2)


@pytest.fixture(scope="module")
def trained(train_data: tuple[list[str], list[int]]) -> tuple[FinetunedClassifier, dict]:
    model = FinetunedClassifier(device="cpu")
    events: list[dict] = []
    stats = model.fit(*train_data, params=FAST, progress=events.append)
    stats["_events"] = events
    return model, stats


def test_training_learns_and_reports(trained, train_data, heldout_data) -> None:
    model, stats = trained
    assert stats["steps"] == FAST.max_steps
    assert stats["samples"] == len(train_data[0])
    assert stats["device"] == "cpu" and stats["precision"] == "float32"
    assert stats["seconds"] > 0 and np.isfinite(stats["final_loss"])
    # Frozen layers must really be out of the optimizer: far fewer than all ~22.7M params.
    assert 0 < stats["trainable_params"] < 5_000_000

    events = stats["_events"]
    assert [e["step"] for e in events] == list(range(1, FAST.max_steps + 1))
    # Learning happened: late losses well below the ~0.69 of a coin flip at the start.
    assert np.mean([e["loss"] for e in events[-4:]]) < np.mean([e["loss"] for e in events[:4]])

    texts, labels = heldout_data
    proba = model.predict_proba(texts)
    assert proba.shape == (len(texts),)
    assert np.all((proba >= 0) & (proba <= 1))
    accuracy = float(np.mean((proba >= 0.5) == np.asarray(labels)))
    assert accuracy > 0.8, accuracy
    train_acc = float(np.mean(model.predict(train_data[0]) == np.asarray(train_data[1])))
    assert train_acc > 0.8, train_acc


def test_predict_proba_is_order_independent(trained, heldout_data) -> None:
    # Length-sorted batching must map results back to the caller's order.
    model, _ = trained
    texts = heldout_data[0][:40]
    forward = model.predict_proba(texts, batch_size=7)
    backward = model.predict_proba(texts[::-1], batch_size=64)[::-1]
    assert np.allclose(forward, backward, atol=1e-5)
    assert model.predict_proba([]).shape == (0,)


def test_save_load_round_trip(trained, heldout_data, tmp_path: Path) -> None:
    model, _ = trained
    out = model.save(tmp_path / "ft")
    names = {p.name for p in out.rglob("*")}
    assert "model.safetensors" in names and "finetune.json" in names and "config.json" in names
    assert not [n for n in names if n.endswith((".pkl", ".pickle", ".bin", ".pt", ".pth"))]

    meta = json.loads((out / "finetune.json").read_text())
    assert meta["params"]["seed"] == FAST.seed and meta["max_length"] == FAST.max_length
    assert meta["train_stats"]["steps"] == FAST.max_steps

    loaded = FinetunedClassifier.load(out, device="cpu")
    assert loaded.params == FAST
    texts = heldout_data[0]
    assert np.allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-6)


def test_load_rejects_mismatched_weights(trained, tmp_path: Path) -> None:
    model, _ = trained
    out = model.save(tmp_path / "ft")
    meta = json.loads((out / "finetune.json").read_text())
    meta["hidden_size"] = 7  # head no longer matches the stored tensors
    (out / "finetune.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match=r"(?i)size|shape|mismatch"):
        FinetunedClassifier.load(out, device="cpu")


def _head_weights(model: FinetunedClassifier) -> np.ndarray:
    return model.network.head.weight.detach().cpu().numpy().copy()


def test_same_seed_same_model_different_seed_different_model(trained, train_data) -> None:
    texts, labels = train_data
    # A shorter run than the fixture keeps this cheap; determinism does not need accuracy.
    quick = replace(FAST, max_steps=3)
    first = FinetunedClassifier(device="cpu")
    first.fit(texts, labels, quick)
    second = FinetunedClassifier(device="cpu")
    second.fit(texts, labels, quick)
    other = FinetunedClassifier(device="cpu")
    other.fit(texts, labels, replace(quick, seed=1))

    probe = texts[:16]
    assert np.array_equal(first.predict_proba(probe), second.predict_proba(probe))
    assert np.array_equal(_head_weights(first), _head_weights(second))
    assert not np.allclose(_head_weights(first), _head_weights(other))
    assert not np.allclose(first.predict_proba(probe), other.predict_proba(probe))


def test_stratified_subsample_is_deterministic_and_keeps_class_shares() -> None:
    labels = np.array([1] * 900 + [0] * 100)
    idx = stratified_subsample(labels, 200, seed=3)
    assert len(idx) == 200 and len(set(idx.tolist())) == 200
    assert int((labels[idx] == 0).sum()) == 20
    assert np.array_equal(idx, stratified_subsample(labels, 200, seed=3))
    assert not np.array_equal(idx, stratified_subsample(labels, 200, seed=4))
    assert np.array_equal(stratified_subsample(labels, None, seed=0), np.arange(1000))
    # A rare class keeps at least one row.
    rare = np.array([1] * 999 + [0])
    assert 0 in rare[stratified_subsample(rare, 10, seed=0)]


def test_fit_subsamples_to_max_train_samples(train_data) -> None:
    texts, labels = train_data
    model = FinetunedClassifier(device="cpu")
    # Only the head trains (all 6 layers frozen): cheap, and 2 epochs of 3 batches each.
    params = replace(FAST, epochs=2, max_steps=None, max_train_samples=40, freeze_layers=6)
    stats = model.fit(texts, labels, params)
    assert stats["steps"] == 6 and stats["epochs"] == pytest.approx(2.0)
    assert stats["trainable_params"] == 384 * 2 + 2
    assert stats["samples"] == 40 and stats["samples_offered"] == len(texts)
    assert stats["positive_rate"] == pytest.approx(0.5)


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError):
        FinetuneParams(epochs=0)
    with pytest.raises(ValueError):
        FinetuneParams(warmup_ratio=1.0)
    model = FinetunedClassifier(device="cpu")
    with pytest.raises(ValueError, match="labels"):
        model.fit(["a", "b"], [0, 2], FAST)
    with pytest.raises(ValueError):
        model.fit(["a"], [0, 1], FAST)
    with pytest.raises(ValueError, match="freeze_layers"):
        model.fit(["a", "b"], [0, 1], FinetuneParams(freeze_layers=99, device="cpu"))
