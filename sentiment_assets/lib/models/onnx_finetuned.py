"""The fine-tuned classifier on ONNX Runtime: the same tokenisation and batching as torch,
its network and softmax exported once per weights file and verified against torch (the
graph machinery lives with the encoder's graphs in lib/encoding/onnx_encoder.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sentiment_assets.lib.encoding.encoder_choice import ServingRuntime
from sentiment_assets.lib.encoding.onnx_encoder import (
    PROBE_TEXTS,
    OnnxExportError,
    export_verified,
    graph_cache_dir,
    graph_path,
    is_cached,
    open_session,
    sha256_of,
    use_onnx,
)
from sentiment_assets.lib.models.finetune import FinetunedClassifier


class OnnxFinetunedClassifier:
    """A loaded `FinetunedClassifier` scored on ONNX Runtime (same tokenisation and batching).

    `batch_workers` scores that many batches of one call side by side, each exactly as
    alone (see `OnnxTextEncoder`)."""

    runtime = "onnxruntime"

    def __init__(
        self,
        classifier: FinetunedClassifier,
        weights_file: Path,
        cache_dir: Path | str | None = None,
        threads: int | None = None,
        batch_workers: int = 1,
    ) -> None:
        if batch_workers < 1:
            raise ValueError("batch_workers must be >= 1")
        self.classifier = classifier
        self.batch_workers = batch_workers
        # The weights' hash names the graph: every fine-tuned version has weights of its own.
        identity = f"finetuned:{sha256_of(weights_file)}:max_length={classifier.max_length}"
        path = graph_path(graph_cache_dir(cache_dir), "finetuned", identity)
        if not is_cached(path):
            export_finetuned(classifier, path, identity, weights_file)
        self._session = open_session(path, threads)
        self.model_path = path

    def _batch_proba(self, input_ids, mask) -> np.ndarray:  # torch tensors on the CPU
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": mask.numpy()}
        return self._session.run(None, feeds)[0].astype(np.float64)

    def predict_proba(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """P(positive) for each (already cleaned) text, in input order."""
        return self.classifier.predict_proba_with(
            self._batch_proba, texts, batch_size, self.batch_workers
        )


def export_finetuned(
    classifier: FinetunedClassifier,
    path: Path,
    identity: str,
    weights_file: Path | None = None,
) -> dict:
    """Export the classifier's network with its softmax to `path`, verified against torch.

    `weights_file` (where the weights were loaded from) goes into the manifest: the graph's
    owner, so that pruning the registry cache can drop the graphs of pruned versions too.
    """
    import torch

    network = classifier.network

    class PositiveProbability(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, input_ids, attention_mask):
            return torch.softmax(self.network(input_ids, attention_mask), dim=-1)[:, 1]

    if classifier.device.type != "cpu":
        raise OnnxExportError("only a classifier loaded on the CPU can be exported")
    inputs = classifier._collate(classifier._encode(list(PROBE_TEXTS)))
    owner: dict[str, str] = {"kind": "finetuned"}
    if weights_file is not None:
        owner["weights"] = str(Path(weights_file).resolve())
    return export_verified(PositiveProbability().eval(), inputs, path, identity, owner)


def serving_finetuned(
    classifier: FinetunedClassifier, weights_file: Path, runtime: ServingRuntime
) -> FinetunedClassifier | OnnxFinetunedClassifier:
    """A loaded fine-tuned classifier, moved onto ONNX Runtime where `runtime` says so."""
    if use_onnx(runtime.name, str(classifier.device)):
        try:
            return OnnxFinetunedClassifier(
                classifier, weights_file, runtime.cache_dir, runtime.threads, runtime.batch_workers
            )
        except OnnxExportError as error:
            runtime.fallback(error)
    return classifier
