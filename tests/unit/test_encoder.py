"""TextEncoder against the real bundled all-MiniLM-L6-v2 (loaded once per module, CPU only)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from sentiment_assets.lib.encoding.encoder import (
    DEFAULT_ENCODER,
    TextEncoder,
    _read_pooling,
    pick_device,
    resolve_encoder,
)

# Deliberately varied lengths (1 word to well past 40 tokens) so length bucketing reorders them.
TEXTS = [
    "ok",
    "I love this so much!!!",
    "worst monday ever, my bus was late again and it is raining",
    "@friend lol same",
    "http://t.co/abc123 check this out",
    "can't complain tbh",
    "not good. not good at all. the update broke everything on my phone and support never answers",
    "&quot;as usual&quot; &amp; it's only monday",
    "sooo happy for you ❤️",
    "meh",
    "the movie was fine I guess, a bit long in the middle but the ending made up for it",
    "tired",
    "omg the concert tonight was insane, best night of the year, thank you all for coming!!",
    "why does my coffee always go cold before I drink it",
    "gr8 game 2nite",
    "I hate waiting",
    "Just finished a 10k run :) feeling great",
    "rain rain go away",
    "a " * 60 + "very long repetitive tweet that gets truncated",
    "good morning",
]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def embeddings(encoder: TextEncoder) -> np.ndarray:
    return encoder.encode(TEXTS)


def test_shape_dtype_and_unit_norm(encoder: TextEncoder, embeddings: np.ndarray) -> None:
    assert encoder.dim == 384
    assert embeddings.shape == (len(TEXTS), 384)
    assert embeddings.dtype == np.float32
    assert np.all(np.isfinite(embeddings))
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    # Different texts must give different vectors (a constant output would pass the above).
    assert float(embeddings[1] @ embeddings[2]) < 0.9


def test_order_preserved_under_bucketing(encoder: TextEncoder, embeddings: np.ndarray) -> None:
    shuffled = list(range(len(TEXTS)))
    random.Random(3).shuffle(shuffled)
    batched = encoder.encode([TEXTS[i] for i in shuffled])
    one_by_one = np.vstack([encoder.encode([TEXTS[i]]) for i in shuffled])
    cos = (batched * one_by_one).sum(axis=1)
    assert cos.min() > 0.9999
    # And the shuffled run maps back onto the unshuffled one row for row.
    np.testing.assert_allclose(batched, embeddings[shuffled], atol=1e-5)


def test_agrees_with_sentence_transformers(encoder: TextEncoder, embeddings: np.ndarray) -> None:
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(encoder.path, device="cpu")
    # Same truncation as ours; the model's own limit (256) only matters for the long text.
    reference.max_seq_length = encoder.max_length
    expected = reference.encode(
        TEXTS, batch_size=7, normalize_embeddings=True, show_progress_bar=False
    )
    cos = (embeddings * expected).sum(axis=1)
    assert cos.min() > 0.999, cos


def test_empty_input(encoder: TextEncoder) -> None:
    calls: list[tuple[int, int]] = []
    out = encoder.encode([], progress=lambda done, total: calls.append((done, total)))
    assert out.shape == (0, 384)
    assert out.dtype == np.float32
    assert calls == []


def test_progress_reports_every_batch(encoder: TextEncoder) -> None:
    calls: list[tuple[int, int]] = []
    short = [f"tweet number {i}" for i in range(10)]
    encoder.encode(short, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 10), (8, 10), (10, 10)]


def test_fingerprint_tracks_what_changes_embeddings(encoder: TextEncoder) -> None:
    assert DEFAULT_ENCODER in encoder.fingerprint
    assert "max_length=128" in encoder.fingerprint
    assert encoder.fingerprint == encoder.fingerprint  # cheap and stable, no model access


def test_resolve_encoder(tmp_path: Path) -> None:
    bundled = resolve_encoder(DEFAULT_ENCODER)
    assert (Path(bundled) / "model.safetensors").is_file()
    assert resolve_encoder("sentence-transformers/all-MiniLM-L6-v2") == bundled
    assert resolve_encoder(str(tmp_path)) == str(tmp_path.resolve())
    assert resolve_encoder("someone/some-model") == "someone/some-model"


def test_pooling_config_is_followed(tmp_path: Path) -> None:
    assert _read_pooling(resolve_encoder(DEFAULT_ENCODER)) == ("mean", True)
    # A CLS-pooled model without a Normalize module must be read as such, not as the default.
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    modules = [
        {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    assert _read_pooling(str(tmp_path)) == ("cls", False)
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_mean_sqrt_len_tokens": True})
    )
    with pytest.raises(ValueError, match="unsupported pooling"):
        _read_pooling(str(tmp_path))


def test_pick_device() -> None:
    import torch

    assert pick_device("cpu") == "cpu"
    assert pick_device("cuda:0") == "cuda:0"
    assert pick_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device(None) == pick_device("")
