"""Which graph and number format produced an embedding, and when int8 is good enough.

An encoder fingerprint names the weights, the pooling and the truncation, and what runs
them: `<base>|<runtime>-<precision>`, e.g. `...|max_length=128|onnx-int8`. In code it is an
`EncoderSpec`; the string exists only on model cards and in the warehouse. The
embedding cache is keyed by the whole fingerprint, so vectors from two graphs never share a
cache row, and a model card records the one its vectors came from.

Two fingerprints produce the *same vectors* when their base and precision agree: an fp32
ONNX graph is parity-checked against torch fp32 to 1e-4 at export, so a model trained on
either is served by either. int8 and fp16 vectors are only ever served by their own kind.
Fingerprints written before runtimes were named (no suffix) are torch fp32.

The int8 quality gate: a quantised graph is used only when, on a fixed probe set, its vectors
stay close to fp32 (mean cosine) and a logistic regression trained on fp32 vectors labels
held-out probe texts the same from either kind of vector. The probe is the pipeline's own
data where it has enough labelled tweets (`source_probe`: the first ones of SENTIMENT_SOURCE),
else a seeded synthetic set. The synthetic set alone is too kind: int8 passed it (agreement
0.9917) while on real Sentiment140 tweets it agreed on 96.9% of labels, and near the decision
boundary, where real tweets crowd, a small shift flips a label.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np

# SENTIMENT_ENCODER_PRECISION. auto: int8 on the CPU when it passes the gate (else fp32),
# fp32 on CUDA; fp16 is torch autocast on CUDA only; int8 is an ONNX Runtime (CPU) graph.
PRECISIONS = ("auto", "fp32", "fp16", "int8")
FP32, FP16, INT8 = "fp32", "fp16", "int8"
TORCH, ONNX = "torch", "onnx"
_RUNTIMES = (TORCH, ONNX)

# The probe set: drift-free synthetic tweets, fixed by size, seed and month, so every export
# of the same graph is judged on the same texts. The generator keeps 1,484 of the 1,500 it is
# asked for (unlabelled and duplicate rows go): the first 1,000 train the probe model, the
# other 484 are the held-out texts whose labels must agree (one disagreement is 0.2 points).
PROBE_SIZE = 1500
PROBE_TRAIN = 1000
PROBE_SEED = 20240
PROBE_MONTH = date(2024, 1, 1)
# A source probe takes the first PROBE_SIZE labelled tweets of the source and trains on two
# thirds; a source with fewer than MIN_SOURCE_PROBE cannot judge (under ~330 held out, one
# disagreement moves agreement by 0.3 points) and the synthetic set judges instead.
MIN_SOURCE_PROBE = 1000


@dataclass(frozen=True)
class QualityGate:
    """Thresholds an int8 graph must meet (both) against its own fp32 graph."""

    min_mean_cosine: float = 0.99
    min_label_agreement: float = 0.99

    def verdict(self, measured: GateMeasurement) -> str | None:
        """None when `measured` passes; otherwise why not, in words."""
        failures = []
        if not measured.mean_cosine >= self.min_mean_cosine:
            failures.append(
                f"mean cosine to fp32 {measured.mean_cosine:.4f} < {self.min_mean_cosine}"
            )
        if not measured.label_agreement >= self.min_label_agreement:
            failures.append(
                f"label agreement {measured.label_agreement:.4f} < {self.min_label_agreement}"
            )
        return "; ".join(failures) or None


DEFAULT_GATE = QualityGate()


@dataclass(frozen=True)
class GateMeasurement:
    """What the gate measured once, at export time (stored in the graph's manifest)."""

    probe_texts: int
    heldout_texts: int
    mean_cosine: float
    min_cosine: float
    label_agreement: float
    probe: str

    def as_dict(self) -> dict:
        return asdict(self)


class PrecisionRefused(RuntimeError):
    """An int8 graph measured worse than the quality gate allows: it is never used."""


_PRECISIONS = (FP32, FP16, INT8)
# The weights ("<name>[@version]|<folder>"), pooling and truncation, then the recipe of a
# graph made from them (the int8 one) where there is one.
_BASE = re.compile(
    r"(?P<weights>.+)\|(?P<pooling>[^|]+)\|max_length=(?P<max_length>[1-9][0-9]*)"
    r"(?:\|(?P<recipe>.+))?"
)


@dataclass(frozen=True)
class EncoderSpec:
    """What produces an embedding. A string only on a model card and in the warehouse:
    `str(spec)` is the fingerprint, `EncoderSpec.parse(fingerprint)` reads it back.

    `weights` is the encoder's name (with its package's version) and the folder it loads,
    `recipe` how a quantised graph was made from them. A fingerprint of another shape (a
    test's, a foreign card's) keeps its base whole in `weights`, with no pooling or
    max_length. `runtime_named` is False for fingerprints written before runtimes were named
    (no suffix: torch fp32).
    """

    weights: str
    pooling: str | None = None
    max_length: int | None = None
    recipe: str | None = None
    runtime: str = TORCH
    precision: str = FP32
    runtime_named: bool = True

    def __post_init__(self) -> None:
        if self.runtime not in _RUNTIMES or self.precision not in _PRECISIONS:
            raise ValueError(f"unknown runtime/precision {self.runtime!r}/{self.precision!r}")

    @property
    def base(self) -> str:
        """The weights, pooling and truncation alone: what every runtime shares."""
        if self.max_length is None:
            return self.weights
        return f"{self.weights}|{self.pooling}|max_length={self.max_length}"

    @property
    def graph(self) -> str:
        """The base and the recipe of the graph made from it: what the vectors come from."""
        return self.base if self.recipe is None else f"{self.base}|{self.recipe}"

    def __str__(self) -> str:
        if not self.runtime_named:
            return self.graph
        return f"{self.graph}|{self.runtime}-{self.precision}"

    @classmethod
    def parse(cls, fingerprint: str) -> EncoderSpec:
        rest, _, suffix = fingerprint.rpartition("|")
        runtime, _, precision = suffix.partition("-")
        named = bool(rest) and runtime in _RUNTIMES and precision in _PRECISIONS
        if not named:
            rest, runtime, precision = fingerprint, TORCH, FP32
        run = {"runtime": runtime, "precision": precision, "runtime_named": named}
        match = _BASE.fullmatch(rest)
        if match is None:
            return cls(rest, **run)
        max_length = int(match["max_length"])
        return cls(match["weights"], match["pooling"], max_length, match["recipe"], **run)

    def gives_same_vectors_as(self, other: EncoderSpec) -> bool:
        """An fp32 ONNX graph is parity-checked against torch fp32 at export, so the runtime
        does not matter; the graph and the number format do."""
        return self.graph == other.graph and self.precision == other.precision


def same_vectors(a: str | None, b: str | None) -> bool:
    """Whether encoders with fingerprints `a` and `b` (as a card records them) give
    interchangeable vectors."""
    if a is None or b is None:
        return a == b
    return EncoderSpec.parse(a).gives_same_vectors_as(EncoderSpec.parse(b))


def check_precision(value: str) -> str:
    if value not in PRECISIONS:
        raise ValueError(f"encoder precision must be one of {PRECISIONS}, got {value!r}")
    return value


@dataclass(frozen=True)
class GateProbe:
    """Labelled texts (cleaned like tweets_clean) that judge an int8 graph: a logistic
    regression is fitted on the first `train` and the rest are held out."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]
    train: int
    name: str
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels) or not 0 < self.train < len(self.texts):
            raise ValueError("a probe needs one label per text and held-out texts")
        pairs = zip(self.texts, self.labels, strict=True)
        content = f"train={self.train}\x1d" + "\x1f".join(f"{y}\x1e{t}" for t, y in pairs)
        object.__setattr__(self, "digest", hashlib.sha256(content.encode()).hexdigest())


def probe_set() -> tuple[list[str], np.ndarray]:
    """The gate's fixed synthetic probe texts and labels (cleaned like tweets_clean)."""
    from sentiment_assets.lib.data.synthetic import labelled_sample

    frame = labelled_sample(PROBE_SIZE, PROBE_SEED, PROBE_MONTH).head(PROBE_SIZE)
    return frame["text"].tolist(), frame["label"].to_numpy(dtype=int)


def source_probe(source: str, size: int = PROBE_SIZE) -> GateProbe | None:
    """The first `size` distinct labelled tweets that ingestion would accept from `source`
    (files in their listed order), or None when it has fewer than MIN_SOURCE_PROBE."""
    from sentiment_assets.lib.data.sources import labelled_texts

    texts, labels = labelled_texts(source, size)
    if len(texts) < MIN_SOURCE_PROBE:
        return None
    return GateProbe(
        tuple(texts),
        tuple(labels),
        train=len(texts) * 2 // 3,
        name=f"source {source} (first {len(texts)} labelled tweets)",
    )


def measure_gate(
    reference: Callable[[Sequence[str]], np.ndarray],
    candidate: Callable[[Sequence[str]], np.ndarray],
    texts: Sequence[str],
    labels: np.ndarray,
    train: int = PROBE_TRAIN,
    probe: str = "synthetic",
) -> GateMeasurement:
    """Compare `candidate` vectors with `reference` (fp32) vectors on the probe texts.

    Cosine over every probe text; label agreement of a logistic regression fitted on the
    reference vectors of the first `train` texts, predicting the rest from either kind.
    """
    from sklearn.linear_model import LogisticRegression

    if not 0 < train < len(texts):
        raise ValueError(f"need held-out texts: train={train}, probe texts={len(texts)}")
    expected = np.asarray(reference(texts), dtype=np.float64)
    measured = np.asarray(candidate(texts), dtype=np.float64)
    cosine = (expected * measured).sum(axis=1) / (
        np.linalg.norm(expected, axis=1) * np.linalg.norm(measured, axis=1) + 1e-12
    )
    model = LogisticRegression(max_iter=1000, random_state=0)
    model.fit(expected[:train], labels[:train])
    agreement = model.predict(expected[train:]) == model.predict(measured[train:])
    return GateMeasurement(
        probe_texts=len(texts),
        heldout_texts=len(texts) - train,
        mean_cosine=round(float(cosine.mean()), 6),
        min_cosine=round(float(cosine.min()), 6),
        label_agreement=round(float(agreement.mean()), 6),
        probe=probe,
    )
